"""The messages' search index gets their id buckets as a second key
(``search_index.BUCKET``): a search reads the newest stretch of each word's matches
instead of every match. The new index is built beside the old one without blocking
writes (about 15 s per million messages here), so the migration runs outside a
transaction."""

from django.db import migrations

from conversations import search_index


def forwards(apps, schema_editor):
    search_index.with_buckets(schema_editor.connection)


def backwards(apps, schema_editor):
    search_index.without_buckets(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("conversations", "0014_web_push"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
