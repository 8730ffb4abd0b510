from typing import TYPE_CHECKING

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from whatsapp import automation, services
from whatsapp.models import KeywordRule, NumberSettings, SessionAgent, WhatsAppSession


class SessionAgentInline(admin.TabularInline):
    model = SessionAgent
    extra = 1
    autocomplete_fields = ["user"]
    readonly_fields = ["added_at"]


class NumberSettingsForm(forms.ModelForm):
    """The same checks as the owner's page (whatsapp.automation): a bad schedule, time zone
    or limit is refused on its field and nothing is saved."""

    class Meta:
        model = NumberSettings
        fields = list(automation.SETTINGS_FIELDS)

    def clean(self) -> dict:
        data = super().clean() or {}
        try:
            clean = automation.settings_clean(
                {k: v for k, v in data.items() if k in automation.SETTINGS_FIELDS}
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                target = field if field in self.fields else "business_hours"
                for error in errors:
                    self.add_error(target, error)
            return data
        data.update(clean)
        return data


class NumberSettingsInline(admin.StackedInline):
    model = NumberSettings
    form = NumberSettingsForm
    can_delete = False


class KeywordRuleForm(forms.ModelForm):
    class Meta:
        model = KeywordRule
        fields = ["position", "match", "pattern", "when", "answer", "file", "active"]

    def clean(self) -> dict:
        data = super().clean() or {}
        try:
            automation.rule_clean({**data, "has_file": bool(data.get("file"))})
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    self.add_error(field if field in self.fields else None, error)
        return data


class KeywordRuleInline(admin.TabularInline):
    model = KeywordRule
    form = KeywordRuleForm
    extra = 0
    fields = ["position", "match", "pattern", "when", "answer", "file", "active"]


@admin.register(WhatsAppSession)
class WhatsAppSessionAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "owner",
        "status",
        "phone_number",
        "lease_holder",
        "last_event_at",
        "child_restarts",
    ]
    list_filter = ["status", "ignore_groups"]
    search_fields = ["name", "phone_number", "owner__username", "owner__email"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    readonly_fields = [
        "status",
        "status_detail",
        "phone_number",
        "jid",
        "push_name",
        "qr_updated_at",
        "pair_phone",
        "pair_code",
        "connected_at",
        "last_event_at",
        "lease_holder",
        "lease_token",
        "lease_expires_at",
        "child_restarts",
        "created_at",
        "updated_at",
    ]
    exclude = ["qr_code"]
    fieldsets = [
        (None, {"fields": ["owner", "name", "ignore_groups", "history_days"]}),
        (
            _("Link"),
            {
                "fields": [
                    "status",
                    "status_detail",
                    "phone_number",
                    "jid",
                    "push_name",
                    "connected_at",
                    "last_event_at",
                    "qr_updated_at",
                    "pair_phone",
                    "pair_code",
                ]
            },
        ),
        (
            _("Worker"),
            {
                "fields": [
                    "lease_holder",
                    "lease_token",
                    "lease_expires_at",
                    "child_restarts",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The owner is chosen once: moving a number moves its whole history.
        if obj is not None:
            return [*self.readonly_fields, "owner"]
        return self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            form = type("SessionAddForm", (_SessionAddFormMixin, form), {})
        return form

    def get_inlines(self, request, obj):
        # The settings row is made by session_create: edit it once the number exists.
        if obj is None:
            return [SessionAgentInline]
        return [SessionAgentInline, NumberSettingsInline, KeywordRuleInline]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=[*form.changed_data, "updated_at"])
            return
        created = services.session_create(owner=obj.owner, name=obj.name)
        obj.pk = created.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.session_delete(session=obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is not SessionAgent:
            return super().save_formset(request, form, formset, change)
        # Agents change through the services, so their open pages join or leave
        # the number's live updates at once.
        session = form.instance
        # commit=False saves nothing; it fills new/changed/deleted_objects for the admin's log.
        formset.save(commit=False)
        User = get_user_model()
        for f in formset.initial_forms:
            # f.initial, not f.instance: validation already put the new user on the instance.
            old_id = f.initial.get("user")
            if old_id and (formset._should_delete_form(f) or "user" in f.changed_data):
                services.session_agent_remove(session=session, user=User(pk=old_id))
        for f in formset.forms:
            user = f.cleaned_data.get("user") if hasattr(f, "cleaned_data") else None
            if user is None or formset._should_delete_form(f):
                continue
            if f in formset.initial_forms and "user" not in f.changed_data:
                continue
            try:
                services.session_agent_add(session=session, user=user)
            except ValidationError as exc:
                messages.error(request, f"{user}: {' '.join(exc.messages)}")

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            services.session_delete(session=obj)


# The mixin's base for the type checker: the admin's form it is mixed into.
if TYPE_CHECKING:
    _ModelForm = forms.ModelForm
else:
    _ModelForm = object


class _SessionAddFormMixin(_ModelForm):
    """Answer the per-owner limit on the form instead of with an error page."""

    def clean(self):
        super().clean()
        data = self.cleaned_data
        owner = data.get("owner")
        limit = settings.VBCRM_MAX_NUMBERS_PER_OWNER
        if owner and WhatsAppSession.objects.filter(owner=owner).count() >= limit:
            raise ValidationError(
                _("This owner already has %(limit)d numbers, the most allowed.") % {"limit": limit}
            )
        return data
