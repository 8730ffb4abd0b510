from django.urls import path

from conversations import report_views

app_name = "reports"

urlpatterns = [
    path("", report_views.reports, name="page"),
    path("<slug:table>.csv", report_views.reports_csv, name="csv"),
]
