"""The full-text index of messages (conversations/search_index.py says what it is)."""

from django.db import migrations

from conversations import search_index


def create(apps, schema_editor):
    search_index.create(schema_editor.connection)


def drop(apps, schema_editor):
    search_index.drop(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0011_reports"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
