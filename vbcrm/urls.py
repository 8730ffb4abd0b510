from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from conversations.push_views import service_worker
from conversations.views import inbox
from vbcrm.api import api
from vbcrm.throttle import AdminLoginForm, LoginForm, ThrottledPasswordChangeView
from vbcrm.views import metrics, profile, web_manifest

# The admin's login form says when axes has locked the account or address out.
admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("", inbox, name="inbox"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        ThrottledPasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("i18n/", include("django.conf.urls.i18n")),
    path("conversations/", include("conversations.urls")),
    path("numbers/", include("whatsapp.urls")),
    path("contacts/", include("conversations.contact_urls")),
    path("reports/", include("conversations.report_urls")),
    path("admin/", admin.site.urls),
    path("profile/", profile, name="profile"),
    path("api/", api.urls),
    path("metrics", metrics, name="metrics"),
    path("sw.js", service_worker, name="service_worker"),
    path("manifest.webmanifest", web_manifest, name="web_manifest"),
]
