from django.contrib import admin

from conversations import services
from conversations.models import Contact, Conversation, Message, QuickReply, Tag


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


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "contact",
        "session",
        "status",
        "assigned_to",
        "unread_count",
        "last_message_at",
        "last_message_preview",
    ]
    list_filter = ["status", "session", "assigned_to"]
    search_fields = [
        "contact__saved_name",
        "contact__push_name",
        "contact__phone",
        "last_message_preview",
    ]
    list_select_related = ["contact", "session", "assigned_to"]
    readonly_fields = [
        "session",
        "contact",
        "unread_count",
        "last_message_at",
        "last_message_preview",
        "created_at",
        "updated_at",
    ]
    autocomplete_fields = ["assigned_to"]
    inlines = [MessageInline]
    date_hierarchy = "last_message_at"

    def save_model(self, request, obj, form, change):
        if "assigned_to" in form.changed_data:
            services.conversation_assign(conversation=obj, assignee=obj.assigned_to)
        if "status" in form.changed_data:
            services.conversation_set_status(conversation=obj, status=obj.status)


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


@admin.register(QuickReply)
class QuickReplyAdmin(admin.ModelAdmin):
    list_display = ["shortcut", "owner", "text"]
    search_fields = ["shortcut", "text"]
    list_filter = ["owner"]
    autocomplete_fields = ["owner"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    """Tags are the owners' labels: names and colours edited here; the inbox applies them."""

    list_display = ["name", "color", "owner", "created_at"]
    list_filter = ["color", "owner"]
    search_fields = ["name"]
    autocomplete_fields = ["owner"]
    # Which conversations and contacts carry a tag is set from the inbox (live there).
    exclude = ["conversations", "contacts"]
