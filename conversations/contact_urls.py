from django.urls import path

from conversations import contact_views

app_name = "contacts"

urlpatterns = [
    path("", contact_views.contact_list, name="list"),
    path("import/", contact_views.contact_import_view, name="import"),
    path("export/", contact_views.contact_export, name="export"),
    path("fields/", contact_views.custom_fields, name="fields"),
    path("fields/<int:field_id>/", contact_views.custom_field_edit, name="field_edit"),
    path("fields/<int:field_id>/delete/", contact_views.custom_field_delete, name="field_delete"),
    path("<int:contact_id>/", contact_views.contact_detail, name="detail"),
]
