from django.urls import path

from whatsapp import views

app_name = "whatsapp"

urlpatterns = [
    path("", views.numbers, name="numbers"),
    path("create/", views.create, name="create"),
    path("<int:session_id>/", views.card, name="card"),
    path("<int:session_id>/link/", views.link, name="link"),
    path("<int:session_id>/logout/", views.logout, name="logout"),
    path("<int:session_id>/delete/", views.delete, name="delete"),
]
