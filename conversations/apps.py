from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

from conversations import search_index
from conversations.report_sql import register_sqlite_functions


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = _("Conversations")

    def ready(self) -> None:
        # Infrastructure, not domain flow: SQLite connections get the reports' percentile,
        # and the search index's SQLite triggers go with a messages table that a migration
        # remakes: put them back after every migrate.
        connection_created.connect(register_sqlite_functions, dispatch_uid="vb_sqlite_functions")
        post_migrate.connect(search_index.after_migrate, sender=self)
