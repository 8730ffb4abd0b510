from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _

from conversations.report_sql import register_sqlite_functions


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = _("Conversations")

    def ready(self) -> None:
        # Infrastructure, not domain flow: SQLite connections get the reports' percentile.
        connection_created.connect(register_sqlite_functions, dispatch_uid="vb_sqlite_functions")
