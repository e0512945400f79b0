"""Participant-facing routes (the task player); every session URL carries its opaque token."""

from django.urls import path

from participants import views

app_name = "participants"
urlpatterns = [
    path("preview/<int:pk>/", views.preview, name="preview"),
    path("preview/<int:pk>/feedback", views.preview_feedback, name="preview_feedback"),
    path("p/<str:token>/", views.page, name="page"),
    path("p/<str:token>/consent", views.consent, name="consent"),
    path("p/<str:token>/demographics", views.demographics, name="demographics"),
    path("p/<str:token>/instructions", views.instructions, name="instructions"),
    path("p/<str:token>/answer", views.answer, name="answer"),
    path("p/<str:token>/complete", views.complete, name="complete"),
    path("p/<str:token>/withdraw", views.withdraw, name="withdraw"),
    path("<slug:slug>/", views.start, name="start"),
]
