"""Routes of the v1 API."""

from rest_framework.routers import DefaultRouter

from benchmark.api import runs, views

router = DefaultRouter()
router.register("tasks", views.TaskViewSet, basename="task")
router.register("versions", views.VersionViewSet, basename="version")
router.register("items", views.ItemViewSet, basename="item")
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("transcripts", views.TranscriptViewSet, basename="transcript")
router.register("item-distributions", views.ItemDistributionViewSet, basename="item-distribution")
router.register("endpoints", runs.EndpointViewSet, basename="endpoint")
router.register("runs", runs.RunViewSet, basename="run")
urlpatterns = router.urls
