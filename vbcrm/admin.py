from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from vbcrm import services
from vbcrm.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("user", "name")
        return ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiToken | None = None
    ) -> list[str] | tuple[str, ...]:
        # A token is never edited: revoke it and create another.
        return [] if obj is None else self.get_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if change:
            return
        created = services.token_create(user=obj.user, name=obj.name)
        # The admin's add view reads obj.pk afterwards: hand it the row the service made.
        obj.pk = created.token.pk
        obj.prefix = created.token.prefix
        obj.created_at = created.token.created_at
        request._new_api_token = created.plain  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue=None
    ) -> HttpResponse:
        plain = getattr(request, "_new_api_token", None)
        if plain:
            messages.warning(
                request,
                _("Token for %(user)s: %(token)s — copy it now, it will not be shown again.")
                % {"user": obj.user, "token": plain},
            )
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            services.token_revoke(token=token)
        self.message_user(request, _("Tokens revoked."), messages.SUCCESS)
