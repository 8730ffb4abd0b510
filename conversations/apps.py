from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

from conversations import search_index


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = _("Conversations")

    def ready(self) -> None:
        # The search index's SQLite triggers go with a messages table that a migration
        # remakes: put them back after every migrate.
        post_migrate.connect(search_index.after_migrate, sender=self)
