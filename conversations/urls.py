from django.urls import path

from conversations import (
    push_views,
    queue_views,
    quick_reply_views,
    team_views,
    views,
    webhook_views,
)

app_name = "conversations"

urlpatterns = [
    path("rows/", views.conversation_rows, name="rows"),
    path("sync/", views.sync, name="sync"),
    path("start/", views.start_conversation, name="start"),
    path("<int:conversation_id>/", views.conversation_detail, name="detail"),
    path("<int:conversation_id>/header/", views.thread_header, name="header"),
    path("<int:conversation_id>/messages/", views.older_messages, name="messages"),
    path("<int:conversation_id>/send/", views.send_message, name="send"),
    path("<int:conversation_id>/read/", views.mark_read, name="read"),
    path("<int:conversation_id>/assign/", views.assign, name="assign"),
    path("<int:conversation_id>/status/", views.set_status, name="status"),
    path("<int:conversation_id>/contact/", views.contact_edit, name="contact"),
    path("messages/<int:message_id>/retry/", views.retry, name="retry"),
    path("<int:conversation_id>/note/", team_views.add_note, name="note"),
    path("<int:conversation_id>/tags/", team_views.tags, name="tags"),
    path("<int:conversation_id>/mentions/read/", team_views.mentions_read, name="mentions_read"),
    path("quick-replies/", quick_reply_views.quick_replies, name="quick_replies"),
    path(
        "quick-replies/<int:quick_reply_id>/",
        quick_reply_views.quick_reply_edit,
        name="quick_reply_edit",
    ),
    path(
        "quick-replies/<int:quick_reply_id>/delete/",
        quick_reply_views.quick_reply_delete,
        name="quick_reply_delete",
    ),
    path("media/<int:message_id>/", views.media, name="media"),
    path("groups/<int:contact_id>/picture/", views.group_picture, name="group_picture"),
    path("queues/", queue_views.queues, name="queues"),
    path("queues/number/<int:session_id>/add/", queue_views.queue_add, name="queue_add"),
    path(
        "queues/number/<int:session_id>/settings/",
        queue_views.queue_settings,
        name="queue_settings",
    ),
    path("queues/<int:queue_id>/", queue_views.queue_edit, name="queue_edit"),
    path("queues/<int:queue_id>/delete/", queue_views.queue_remove, name="queue_delete"),
    path("availability/", queue_views.availability, name="availability"),
    path("<int:conversation_id>/queue/", queue_views.conversation_queue, name="queue"),
    path("push/subscribe/", push_views.push_subscribe, name="push_subscribe"),
    path("push/unsubscribe/", push_views.push_unsubscribe, name="push_unsubscribe"),
    path("webhooks/", webhook_views.webhooks_page, name="webhooks"),
    path("webhooks/<int:endpoint_id>/", webhook_views.webhook_detail, name="webhook_detail"),
    path("webhooks/<int:endpoint_id>/delete/", webhook_views.webhook_delete, name="webhook_delete"),
    path(
        "webhooks/deliveries/<int:delivery_id>/resend/",
        webhook_views.webhook_resend,
        name="webhook_resend",
    ),
]
