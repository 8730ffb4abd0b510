from django.apps import AppConfig


class VbcrmConfig(AppConfig):
    name = "vbcrm"
    verbose_name = "VB CRM"

    def ready(self) -> None:
        from vbcrm import checks  # noqa: F401  (registers the system checks)
