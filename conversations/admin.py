from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from conversations import services
from conversations.models import (
    AgentPresence,
    Contact,
    ContactFieldValue,
    Conversation,
    ConversationEvent,
    CustomField,
    Message,
    PushSubscription,
    Queue,
    QueueSettings,
    QuickReply,
    Tag,
    WebhookDelivery,
    WebhookEndpoint,
)
from conversations.services import contacts as contact_services
from conversations.services import templates as template_services
from conversations.services import webhooks as webhook_services
from conversations.services.queues import clean_queue_fields
from conversations.webhook_addresses import AddressRefused, url_check


class ContactFieldValueInline(admin.TabularInline):
    model = ContactFieldValue
    fields = ("field", "value")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["display_name", "phone", "session", "is_group", "created_at"]
    list_filter = ["session", "is_group"]
    search_fields = ["saved_name", "push_name", "phone", "jid", "lid"]
    list_select_related = ["session"]
    readonly_fields = [
        "session",
        "jid",
        "lid",
        "phone",
        "push_name",
        "is_group",
        "created_at",
        "updated_at",
    ]
    inlines = [ContactFieldValueInline]


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("created_at", "direction", "kind", "body", "status", "sent_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("sent_by")


class ConversationEventInline(admin.TabularInline):
    model = ConversationEvent
    fields = ("created_at", "kind", "actor", "from_user", "to_user", "from_queue", "to_queue")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "contact",
        "session",
        "status",
        "assigned_to",
        "queue",
        "unread_count",
        "last_message_at",
        "last_message_preview",
    ]
    list_filter = ["status", "session", "queue", "assigned_to"]
    search_fields = [
        "contact__saved_name",
        "contact__push_name",
        "contact__phone",
        "last_message_preview",
    ]
    list_select_related = ["contact", "session", "assigned_to", "queue"]
    readonly_fields = [
        "session",
        "contact",
        "unread_count",
        "last_message_at",
        "last_message_preview",
        "created_at",
        "updated_at",
        "menu_attempts",
        "menu_parent",
    ]
    autocomplete_fields = ["assigned_to"]
    inlines = [MessageInline, ConversationEventInline]
    date_hierarchy = "last_message_at"

    def save_model(self, request, obj, form, change):
        if "assigned_to" in form.changed_data:
            services.conversation_assign(
                conversation=obj, assignee=obj.assigned_to, by=request.user
            )
        if "queue" in form.changed_data:
            services.conversation_move(conversation=obj, queue=obj.queue, by=request.user)
        if "status" in form.changed_data:
            services.conversation_set_status(conversation=obj, status=obj.status, by=request.user)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "conversation", "direction", "kind", "status", "sent_by"]
    list_filter = ["direction", "kind", "status", "conversation__session"]
    search_fields = [
        "body",
        "wa_id",
        "conversation__contact__phone",
        "conversation__contact__push_name",
    ]
    list_select_related = ["conversation__contact", "conversation__session", "sent_by"]
    date_hierarchy = "created_at"
    exclude = ["media_ref"]
    readonly_fields = [
        f.name
        for f in Message._meta.get_fields()
        if f.concrete and f.name not in {"media_ref", "id"}
    ]
    raw_id_fields = ["conversation", "reply_to"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Bodies and ids are a record of what was said: read-only.
        return False


@dataclass(frozen=True)
class _FileLink:
    name: str
    url: str

    def __str__(self) -> str:
        return self.name


class _TemplateFileInput(forms.ClearableFileInput):
    """Links the current file to the view that checks who asks (files are never public)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def format_value(self, value):
        if self.is_initial(value):
            return _FileLink(getattr(value.instance, "file_name", "") or str(value), self.url)
        return None


class TemplateAdminForm(forms.ModelForm):
    """The page's rules apply here too: unknown variables are refused on the text, a
    shared template belongs to its number's owner; saved by the template services."""

    class Meta:
        model = QuickReply
        fields = ["owner", "session", "shortcut", "text", "file"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Personal or shared stays as it was made.
            self.fields["owner"].disabled = True
            self.fields["session"].disabled = True
            url = reverse("conversations:template_file", args=[self.instance.pk]) + "?download=1"
            self.fields["file"].widget = _TemplateFileInput(url)

    def clean(self):
        data: dict[str, Any] = super().clean() or {}
        if self.errors:
            return data
        owner, session = data.get("owner"), data.get("session")
        if session is not None and owner is not None and session.owner_id != owner.pk:
            self.add_error("owner", _("A shared template belongs to its number's owner."))
        upload = data.get("file")
        new_upload = upload if isinstance(upload, UploadedFile) else None
        has_file = new_upload is not None or (bool(upload) and upload is not False)
        try:
            if new_upload is not None:
                template_services.template_file_check(new_upload)
            data["shortcut"], data["text"] = template_services.template_clean(
                data.get("shortcut") or "", data.get("text") or "", has_file
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        return data


@admin.register(QuickReply)
class QuickReplyAdmin(admin.ModelAdmin):
    form = TemplateAdminForm
    list_display = ["shortcut", "owner", "session", "file_name", "text"]
    search_fields = ["shortcut", "text"]
    list_filter = ["session", "owner"]
    list_select_related = ["owner", "session"]
    autocomplete_fields = ["owner"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        upload = data.get("file")
        new_upload = upload if isinstance(upload, UploadedFile) else None
        if change:
            services.quick_reply_update(
                quick_reply=QuickReply.objects.get(pk=obj.pk),
                shortcut=data["shortcut"],
                text=data["text"],
                upload=new_upload,
                remove_file=upload is False,
            )
        else:
            created = services.quick_reply_create(
                owner=data["owner"],
                session=data.get("session"),
                shortcut=data["shortcut"],
                text=data["text"],
                upload=new_upload,
            )
            obj.pk = created.pk

    def delete_model(self, request, obj):
        services.quick_reply_delete(quick_reply=obj)

    def delete_queryset(self, request, queryset):
        for template in queryset:
            services.quick_reply_delete(quick_reply=template)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    """Tags are the owners' labels: names and colours edited here; the inbox applies them."""

    list_display = ["name", "color", "owner", "created_at"]
    list_filter = ["color", "owner"]
    search_fields = ["name"]
    autocomplete_fields = ["owner"]
    # Which conversations and contacts carry a tag is set from the inbox (live there).
    exclude = ["conversations", "contacts"]


class CustomFieldForm(forms.ModelForm):
    choices_text = forms.CharField(
        label=_("choices"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For the Choice type: the allowed values, one a line."),
    )

    class Meta:
        model = CustomField
        fields = ["owner", "name", "kind", "position"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["choices_text"] = "\n".join(self.instance.choices)

    def clean(self):
        data: dict[str, Any] = super().clean() or {}
        owner = data.get("owner") or getattr(self.instance, "owner", None)
        if owner is None or self.errors:
            return data
        choices = [c for c in data.get("choices_text", "").splitlines() if c.strip()]
        try:
            name, kind, cleaned = contact_services.custom_field_clean(
                owner=owner,
                name=data.get("name", ""),
                kind=data.get("kind", ""),
                choices=choices,
                instance=self.instance if self.instance.pk else None,
            )
        except ValidationError as exc:
            raise ValidationError(
                {f if f in self.fields else "choices_text": m for f, m in exc.message_dict.items()}
            ) from None
        data["name"], data["kind"], data["choices"] = name, kind, cleaned
        return data


@admin.register(CustomField)
class CustomFieldAdmin(admin.ModelAdmin):
    form = CustomFieldForm
    list_display = ["name", "kind", "owner", "position"]
    list_filter = ["kind", "owner"]
    search_fields = ["name"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]

    def get_readonly_fields(self, request, obj=None):
        # A field's owner is fixed: its values belong to that owner's contacts.
        return ["owner"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            contact_services.custom_field_save(
                field=obj, name=data["name"], kind=data["kind"], choices=data["choices"]
            )
            if "position" in form.changed_data:
                contact_services.custom_field_move(field=obj, position=data["position"])
        else:
            created = contact_services.custom_field_create(
                owner=data["owner"], name=data["name"], kind=data["kind"], choices=data["choices"]
            )
            obj.pk = created.pk

    def delete_model(self, request, obj):
        contact_services.custom_field_delete(field=obj)

    def delete_queryset(self, request, queryset):
        for field in queryset:  # "Delete selected" too, through the service
            contact_services.custom_field_delete(field=field)


class QueueAdminForm(forms.ModelForm):
    """The page's rules (one level of sub-menu, agents of the number only, ...) apply here
    too: the fields are checked and saved by the queue services."""

    agent_users = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        label="Agents",
    )

    class Meta:
        model = Queue
        fields = ["session", "name", "color", "position", "parent", "assignment"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["agent_users"].initial = list(self.instance.agents.all())
            self.fields["session"].disabled = True

    def queue_fields(self) -> services.QueueFields:
        data = self.cleaned_data
        return services.QueueFields(
            name=data.get("name") or "",
            color=data.get("color") or "",
            position=data.get("position") or 0,
            parent_id=data["parent"].pk if data.get("parent") else None,
            assignment=data.get("assignment") or Queue.Assignment.OFF,
            agent_ids=tuple(u.pk for u in data.get("agent_users") or ()),
        )

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        session = cleaned.get("session") or getattr(self.instance, "session", None)
        if session is not None:
            try:
                clean_queue_fields(
                    session, self.queue_fields(), self.instance if self.instance.pk else None
                )
            except ValidationError as exc:
                raise ValidationError(exc.messages) from None
        return cleaned


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    form = QueueAdminForm
    list_display = ["name", "session", "position", "parent", "assignment", "color"]
    list_filter = ["session", "assignment"]
    search_fields = ["name"]
    list_select_related = ["session", "parent"]

    def save_model(self, request, obj, form, change):
        if change:
            services.queue_update(queue=obj, fields=form.queue_fields())
        else:
            obj.pk = services.queue_create(session=obj.session, fields=form.queue_fields()).pk

    def delete_model(self, request, obj):
        services.queue_delete(queue=obj)

    def delete_queryset(self, request, queryset):
        # "Delete selected" too, through the service: the numbers' pages and routing are
        # told their queues changed
        for queue in queryset:
            if Queue.objects.filter(pk=queue.pk).exists():  # not gone with a parent already
                services.queue_delete(queue=queue)


@admin.register(QueueSettings)
class QueueSettingsAdmin(admin.ModelAdmin):
    list_display = ["session", "menu_enabled", "menu_max_attempts", "default_queue", "agent_cap"]
    list_select_related = ["session", "default_queue"]


@admin.register(AgentPresence)
class AgentPresenceAdmin(admin.ModelAdmin):
    list_display = ["user", "available", "sockets", "last_socket_closed_at", "changed_at"]
    list_filter = ["available"]
    readonly_fields = ["sockets", "last_socket_closed_at", "changed_at"]


class WebhookEndpointForm(forms.ModelForm):
    """The page's rules apply here too (known events, an allowed address); the secret is
    made when the endpoint is, shown once, and never a field."""

    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=_("events"),
        choices=WebhookEndpoint.Event.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["owner", "description", "url", "events", "sessions", "active"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            url_check(url)
        except AddressRefused as exc:
            raise ValidationError(str(exc)) from None
        return url


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ("created_at", "event_type", "status", "attempts", "response_status", "latency_ms",
              "error")  # fmt: skip
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ["-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("body")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["__str__", "url", "owner", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["url", "description"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    filter_horizontal = ["sessions"]
    readonly_fields = ["masked_secret"]
    inlines = [WebhookDeliveryInline]

    @admin.display(description=_("secret"))
    def masked_secret(self, obj: WebhookEndpoint) -> str:
        return f"{obj.secret[:6]}…" if obj.secret else "—"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {
            "url": data["url"],
            "events": data["events"],
            "sessions": list(data["sessions"]),
            "description": data.get("description") or "",
            "active": data.get("active", False),
        }
        if change:
            webhook_services.webhook_endpoint_update(endpoint=obj, **fields)
            return
        created = webhook_services.webhook_endpoint_create(owner=data["owner"], **fields)
        obj.pk, obj.secret = created.pk, created.secret
        messages.warning(
            request,
            _("The webhook's secret, shown this once: %(secret)s") % {"secret": created.secret},
        )

    def delete_model(self, request, obj):
        webhook_services.webhook_endpoint_delete(endpoint=obj)

    def delete_queryset(self, request, queryset):
        # "Delete selected" too goes through the service: each endpoint locked before it
        # goes (a message writing it a delivery commits first), the caches told
        for endpoint in queryset:
            webhook_services.webhook_endpoint_delete(endpoint=endpoint)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event_type", "endpoint", "status", "attempts", "response_status",
                    "latency_ms", "created_at"]  # fmt: skip
    list_filter = ["status", "event_type"]
    search_fields = ["event_id"]
    list_select_related = ["endpoint"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["send_again"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Send again"))
    def send_again(self, request, queryset):
        for delivery in queryset:
            webhook_services.webhook_delivery_resend(delivery=delivery)
        messages.success(request, _("The events will be sent again."))


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    """Browsers with notifications on; deleting one stops its notifications."""

    list_display = ["user", "user_agent", "created_at", "last_sent_at"]
    search_fields = ["user__username", "user_agent"]
    list_select_related = ["user"]
    fields = ["user", "user_agent", "created_at", "last_sent_at"]
    readonly_fields = ["user", "user_agent", "created_at", "last_sent_at"]

    def has_add_permission(self, request):
        return False
