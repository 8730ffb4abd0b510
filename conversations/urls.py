from django.urls import path

from conversations import (
    automation_views,
    queue_views,
    quick_reply_views,
    search_views,
    team_views,
    views,
)

app_name = "conversations"

urlpatterns = [
    path("rows/", views.conversation_rows, name="rows"),
    path("search/", search_views.search, name="search"),
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
    path("templates/", quick_reply_views.templates, name="templates"),
    path("templates/<int:template_id>/", quick_reply_views.template_edit, name="template_edit"),
    path(
        "templates/<int:template_id>/delete/",
        quick_reply_views.template_delete,
        name="template_delete",
    ),
    path(
        "templates/<int:template_id>/file/",
        quick_reply_views.template_file,
        name="template_file",
    ),
    path(
        "<int:conversation_id>/template-preview/",
        quick_reply_views.template_preview,
        name="template_preview",
    ),
    path("quick-replies/", quick_reply_views.quick_replies_moved, name="quick_replies"),
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
    path("automatic/<int:session_id>/", automation_views.automatic, name="automatic"),
    path("automatic/<int:session_id>/rules/", automation_views.rule_add, name="rule_add"),
    path("automatic/rules/<int:rule_id>/", automation_views.rule_edit, name="rule_edit"),
    path("automatic/rules/<int:rule_id>/delete/", automation_views.rule_delete, name="rule_delete"),
    path("automatic/hours/", automation_views.hours_chips, name="hours_chips"),
    path("automatic/rules/<int:rule_id>/move/", automation_views.rule_move, name="rule_move"),
    path("availability/", queue_views.availability, name="availability"),
    path("<int:conversation_id>/queue/", queue_views.conversation_queue, name="queue"),
]
