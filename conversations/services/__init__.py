"""Every write to contacts, conversations and messages goes through here.

Callers (pages, API, sockets, worker) get the objects they pass in through the
selectors, which apply the access rule; these functions trust their arguments.
``inbound`` stores what WhatsApp sends, ``outbox`` what agents send, ``start`` an
agent writing first, ``agent`` the rest of what an agent does in the inbox;
``routing`` the menu bot, ``assignment`` availability and round-robin, ``queues`` the
owner's queue setup; ``autoreply`` the greeting, away message, keyword rules and
idle close.
"""

from conversations.models import message_preview
from conversations.services.agent import (
    contact_update,
    conversation_assign,
    conversation_mark_read,
    conversation_move,
    conversation_open,
    conversation_set_status,
)
from conversations.services.assignment import (
    conversation_auto_assign,
    presence_expire,
    presence_get,
    presence_set,
    presence_socket_closed,
    presence_socket_opened,
    queue_drain,
)
from conversations.services.autoreply import conversations_auto_close
from conversations.services.groups import group_info_store, group_known, groups_without_info
from conversations.services.inbound import (
    history_import,
    message_media_failed,
    message_media_stored,
    message_receipt,
    message_receive,
    message_receive_batch,
)
from conversations.services.outbox import (
    MAX_SEND_ATTEMPTS,
    MAX_TEXT_LENGTH,
    ContactCard,
    Location,
    message_queue_outbound,
    message_retry,
    message_send,
    outbox_claim,
    outbox_expire,
    outbox_failed,
    outbox_pending,
    outbox_recover,
    outbox_sent,
    receipts_pending,
    receipts_sent,
)
from conversations.services.queues import (
    QueueFields,
    queue_create,
    queue_delete,
    queue_settings_get,
    queue_settings_update,
    queue_update,
)
from conversations.services.routing import bot_message_queue, conversation_queue_set
from conversations.services.start import conversation_start, phone_on_whatsapp
from conversations.services.team import (
    contact_tags_set,
    conversation_tags_set,
    mentions_mark_read,
    note_add,
    tag_create,
)
from conversations.services.templates import (
    quick_reply_create,
    quick_reply_delete,
    quick_reply_update,
    template_render,
    template_send,
    template_upload,
)

__all__ = [
    "conversations_auto_close",
    "MAX_SEND_ATTEMPTS",
    "MAX_TEXT_LENGTH",
    "ContactCard",
    "Location",
    "contact_tags_set",
    "QueueFields",
    "bot_message_queue",
    "contact_update",
    "conversation_assign",
    "conversation_auto_assign",
    "conversation_mark_read",
    "conversation_move",
    "conversation_open",
    "conversation_queue_set",
    "conversation_set_status",
    "conversation_start",
    "conversation_tags_set",
    "group_info_store",
    "group_known",
    "groups_without_info",
    "history_import",
    "message_media_failed",
    "message_media_stored",
    "message_preview",
    "message_queue_outbound",
    "message_receipt",
    "message_receive",
    "message_receive_batch",
    "message_retry",
    "message_send",
    "mentions_mark_read",
    "note_add",
    "outbox_claim",
    "outbox_expire",
    "outbox_failed",
    "outbox_pending",
    "outbox_recover",
    "outbox_sent",
    "phone_on_whatsapp",
    "presence_expire",
    "presence_get",
    "presence_set",
    "presence_socket_closed",
    "presence_socket_opened",
    "queue_create",
    "queue_delete",
    "queue_drain",
    "queue_settings_get",
    "queue_settings_update",
    "queue_update",
    "quick_reply_create",
    "quick_reply_delete",
    "quick_reply_update",
    "template_render",
    "template_send",
    "template_upload",
    "receipts_pending",
    "receipts_sent",
    "tag_create",
]
