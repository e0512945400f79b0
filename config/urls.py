"""URL routes: the start page, admin, the v1 API and its OpenAPI schema, participants."""

from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.views import home


def api_not_found(request):
    """Any address under /api/ that no route takes: a JSON 404, whatever the method."""
    return JsonResponse({"detail": "Not found."}, status=404)


urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("benchmark.api.urls")),
    path("api/v1/", include("scoring.api.urls")),
    path("s/", include("participants.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/schema/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="schema-docs"),
    # Any other API address: a JSON 404 like the API's own, not the HTML page.
    re_path(r"^api/", csrf_exempt(api_not_found)),
]
