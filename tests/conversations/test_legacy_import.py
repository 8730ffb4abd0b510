"""import_supabase: the previous system's tables, read from a scratch PostgreSQL database."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection
from django.test import Client
from django.urls import reverse

from conversations.models import Contact, Conversation, LegacyRecord, Message
from conversations.services import legacy_import as importer
from vbcrm.services import token_create
from whatsapp.models import NumberSettings, WhatsAppSession

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).parent / "fixtures" / "seed_tables.sql"
MARIA = "00000000-0000-0000-0000-0000000000b1"


def _server_conninfo(dbname: str) -> str:
    """A database on the test database's server, or on VBCRM_TEST_SOURCE_URL's when the
    tests run on SQLite (the import's embedded mode)."""
    if connection.vendor != "postgresql":
        return psycopg.conninfo.make_conninfo(os.environ["VBCRM_TEST_SOURCE_URL"], dbname=dbname)
    db = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        host=db.get("HOST") or "127.0.0.1",
        port=str(db.get("PORT") or 5432),
        user=db.get("USER") or "postgres",
        password=db.get("PASSWORD") or None,
        dbname=dbname,
    )


@pytest.fixture
def source() -> Iterator[str]:
    """A scratch database on a PostgreSQL server, holding the fixture tables."""
    if connection.vendor != "postgresql" and not os.environ.get("VBCRM_TEST_SOURCE_URL"):
        pytest.skip(
            "the source is PostgreSQL: run on DATABASE_URL=postgres://..., or set"
            " VBCRM_TEST_SOURCE_URL=postgres://... (a server to make a scratch database on)"
        )
    name = f"vbcrm_seed_src_{Path(str(connection.settings_dict['NAME'])).stem}"[:63]
    with psycopg.connect(_server_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _server_conninfo(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FIXTURE.read_text())
    yield url
    with psycopg.connect(_server_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _source_sql(url: str, statement: str, params: tuple = ()) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password="pw"
    )


def _run(url: str, *args: str) -> str:
    out, err = StringIO(), StringIO()
    call_command("import_supabase", "--database-url", url, *args, stdout=out, stderr=err)
    return out.getvalue()


def test_import_everything_once_with_counts(source, admin_user):
    report = importer.legacy_import(database_url=source, owner=admin_user)

    t = report.tables
    assert (t["whatsapp_sessions"].read, t["whatsapp_sessions"].imported) == (2, 2)
    assert (t["whatsapp_atendimentos"].read, t["whatsapp_atendimentos"].imported) == (4, 4)
    assert (t["whatsapp_mensagens"].read, t["whatsapp_mensagens"].imported) == (10, 7)
    assert (t["whatsapp_configuracoes"].read, t["whatsapp_configuracoes"].imported) == (2, 1)
    assert report.contacts == 5

    numbers = {s.name: s for s in WhatsAppSession.objects.filter(owner=admin_user)}
    assert set(numbers) == {"Vendas", "Suporte"}
    vendas = numbers["Vendas"]
    assert vendas.status == WhatsAppSession.Status.LOGGED_OUT
    assert vendas.phone_number == "5511988880001"
    assert vendas.link_requested_at is None

    maria = Conversation.objects.get(contact__jid="5511999990001@s.whatsapp.net")
    assert maria.session == vendas
    assert maria.status == Conversation.Status.OPEN
    assert maria.unread_count == 1
    assert maria.contact.push_name == "Maria"
    assert maria.last_message_preview == "📷 a foto"
    msgs = list(maria.messages.order_by("wa_timestamp"))
    assert [(m.direction, m.kind, m.body) for m in msgs] == [
        ("CLIENTE", "text", "Olá, bom dia"),
        ("ATENDENTE", "text", "Bom dia! Como ajudo?"),
        ("CLIENTE", "image", "a foto"),
    ]
    # the WhatsApp id when the source kept it, else a key derived from the source id
    assert [m.wa_id for m in msgs] == ["3EB0AAA1", "legacy:m-2", "legacy:m-3"]
    assert msgs[0].wa_timestamp.isoformat() == "2025-03-01T10:00:00+00:00"
    assert msgs[1].status == Message.Status.SENT and msgs[0].status == Message.Status.RECEIVED
    photo = msgs[2]
    assert photo.media_link == "http://media.invalid/foto.jpg"
    assert (photo.mime_type, photo.file_name, photo.file_size) == ("image/jpeg", "foto.jpg", 1234)
    assert not photo.media

    joao = Conversation.objects.get(contact__jid="5511999990002@s.whatsapp.net")
    assert joao.status == Conversation.Status.CLOSED
    ana = Conversation.objects.get(contact__jid="5511999990003@s.whatsapp.net")
    assert ana.status == Conversation.Status.PENDING
    assert ana.messages.get().kind == Message.Kind.OTHER  # the unknown kind, kept
    pedro = Conversation.objects.get(contact__jid="5511999990004@s.whatsapp.net")
    assert pedro.messages.count() == 0
    # a message with a chat and a number but no conversation row gets one
    made = Conversation.objects.get(contact__jid="5511999990005@s.whatsapp.net")
    assert made.session == vendas and made.messages.get().body == "oi"

    skipped = t["whatsapp_mensagens"].skipped
    assert skipped == {
        "duplicate id": 1,
        "no conversation and no chat": 1,
        "unknown sender (neither CLIENTE nor ATENDENTE)": 1,
    }
    assert t["whatsapp_mensagens"].notes == {"unknown kind 'enquete' imported as other": 1}
    assert t["whatsapp_configuracoes"].skipped == {"no number, and several in the source": 1}

    ns = NumberSettings.objects.get(session=vendas)
    assert ns.greeting_enabled and ns.greeting_message == "Olá! Bem-vindo."
    assert ns.away_enabled and ns.away_message == "Estamos fora do horário."
    assert ns.business_hours == {
        "weekly": {"mon": [["08:00", "18:00"]], "sat": [["09:00", "12:00"]]},
        "exceptions": [],
    }
    assert ns.hours_enabled and ns.time_zone == "America/Sao_Paulo"
    assert not NumberSettings.objects.get(session=numbers["Suporte"]).greeting_enabled


def test_unknown_and_later_columns_are_listed(source, admin_user):
    report = importer.legacy_import(database_url=source, owner=admin_user)

    t = report.tables
    assert t["whatsapp_sessions"].unknown == ["baileys_auth_state"]
    assert t["whatsapp_atendimentos"].unknown == ["prioridade"]
    assert t["whatsapp_mensagens"].unknown == []
    assert t["whatsapp_configuracoes"].unknown == ["total_mensagens_enviadas"]
    assert t["whatsapp_configuracoes"].later == ["dias_semana"]
    text = "\n".join(importer.import_summary(report))
    assert "unknown columns (ignored): baileys_auth_state" in text
    assert "columns not imported by this version: dias_semana" in text


def test_second_run_imports_nothing_new(source, admin_user):
    first = _run(source)
    counts = (
        WhatsAppSession.objects.count(),
        Contact.objects.count(),
        Conversation.objects.count(),
        Message.objects.count(),
        LegacyRecord.objects.count(),
    )
    assert counts == (2, 5, 5, 7, 7)  # records: 2 numbers, 4 conversations, 1 settings row
    assert "whatsapp_mensagens: 10 read, 7 imported, 0 imported before, 3 skipped" in first

    second = _run(source)

    assert (
        WhatsAppSession.objects.count(),
        Contact.objects.count(),
        Conversation.objects.count(),
        Message.objects.count(),
        LegacyRecord.objects.count(),
    ) == counts
    assert "whatsapp_sessions: 2 read, 0 imported, 2 imported before, 0 skipped" in second
    assert "whatsapp_atendimentos: 4 read, 0 imported, 4 imported before, 0 skipped" in second
    assert "whatsapp_mensagens: 10 read, 0 imported, 7 imported before, 3 skipped" in second
    assert "whatsapp_configuracoes: 2 read, 0 imported, 1 imported before, 1 skipped" in second
    assert "contacts: 0 created" in second
    assert "unknown kind 'enquete' imported as other" in first
    assert "imported as other" not in second  # only what was written this time is noted


def test_second_run_brings_only_new_rows(source, admin_user):
    importer.legacy_import(database_url=source, owner=admin_user)
    _source_sql(
        source,
        "INSERT INTO whatsapp_mensagens (id, atendimento_id, conteudo, tipo, remetente,"
        ' "timestamp") VALUES (%s, %s, %s, %s, %s, %s)',
        ("m-11", MARIA, "mais uma", "TEXTO", "CLIENTE", "2025-03-06 10:00:00+00"),
    )

    report = importer.legacy_import(database_url=source, owner=admin_user)

    assert report.tables["whatsapp_mensagens"].imported == 1
    assert report.tables["whatsapp_mensagens"].already == 7
    maria = Conversation.objects.get(contact__jid="5511999990001@s.whatsapp.net")
    assert maria.messages.count() == 4
    assert maria.last_message_preview == "mais uma"


def test_dry_run_writes_nothing_and_counts_the_same(source, admin_user):
    dry = _run(source, "--dry-run")

    assert WhatsAppSession.objects.count() == 0
    assert Contact.objects.count() == 0
    assert Conversation.objects.count() == 0
    assert Message.objects.count() == 0
    assert LegacyRecord.objects.count() == 0
    assert NumberSettings.objects.count() == 0
    assert dry.startswith("Importing for root")
    assert "Dry run: nothing was written." in dry

    real = _run(source)
    assert dry.split("\n", 2)[2] == real.split("\n", 2)[2]  # the same counts after the header


def test_a_conversation_failing_halfway_leaves_nothing_of_it(source, admin_user, monkeypatch):
    real_bulk_create = Message.objects.bulk_create

    def fail_after_first(objs, *args, **kwargs):
        objs = list(objs)
        if objs and objs[0].conversation.contact.jid == "5511999990001@s.whatsapp.net":
            real_bulk_create(objs[:1], *args, **kwargs)  # half of it written, then a failure
            raise IntegrityError("disk full")
        return real_bulk_create(objs, *args, **kwargs)

    monkeypatch.setattr(Message.objects, "bulk_create", fail_after_first)
    report = importer.legacy_import(database_url=source, owner=admin_user)

    assert not Conversation.objects.filter(contact__jid="5511999990001@s.whatsapp.net").exists()
    assert not Message.objects.filter(body="Olá, bom dia").exists()
    assert not LegacyRecord.objects.filter(source="whatsapp_atendimentos", source_id=MARIA).exists()
    conversations = report.tables["whatsapp_atendimentos"]
    assert conversations.imported == 3
    assert conversations.skipped == {"failed, nothing of it written (IntegrityError)": 1}
    assert report.tables["whatsapp_mensagens"].skipped["its conversation failed to import"] == 3
    assert Message.objects.count() == 4  # the other conversations are whole

    monkeypatch.undo()
    again = importer.legacy_import(database_url=source, owner=admin_user)

    assert again.tables["whatsapp_atendimentos"].imported == 1
    assert again.tables["whatsapp_mensagens"].imported == 3
    assert Message.objects.count() == 7


def test_an_unknown_status_is_imported_as_open_and_noted(source, admin_user):
    _source_sql(
        source, "UPDATE whatsapp_atendimentos SET status = 'ARQUIVADO' WHERE nome_cliente = 'Pedro'"
    )

    report = importer.legacy_import(database_url=source, owner=admin_user)

    pedro = Conversation.objects.get(contact__jid="5511999990004@s.whatsapp.net")
    assert pedro.status == Conversation.Status.OPEN
    assert report.tables["whatsapp_atendimentos"].notes == {
        "unknown status 'arquivado' imported as open": 1,
        "made from messages with no conversation row": 1,
    }


def test_missing_optional_columns_and_tables_are_tolerated(source, admin_user):
    _source_sql(
        source,
        "ALTER TABLE whatsapp_mensagens DROP COLUMN message_id, DROP COLUMN midia_tamanho,"
        " DROP COLUMN midia_nome, DROP COLUMN chat_id, DROP COLUMN session_id;"
        " ALTER TABLE whatsapp_atendimentos DROP COLUMN nao_lidas, DROP COLUMN nome_cliente;"
        " DROP TABLE whatsapp_configuracoes",
    )

    report = importer.legacy_import(database_url=source, owner=admin_user)

    msgs = report.tables["whatsapp_mensagens"]
    assert set(msgs.missing) >= {"wa_id", "file_size", "file_name", "chat", "session"}
    assert msgs.imported == 6  # m-9 has no conversation left to go to
    assert msgs.skipped["no conversation and no chat"] == 2
    assert report.tables["whatsapp_configuracoes"].absent
    assert set(report.tables["whatsapp_atendimentos"].missing) == {"name", "unread"}
    assert Message.objects.filter(wa_id="legacy:m-1").exists()
    assert "whatsapp_configuracoes: not in the source, skipped" in importer.import_summary(report)


def test_a_missing_required_column_stops_before_writing(source, admin_user):
    _source_sql(source, "ALTER TABLE whatsapp_mensagens DROP COLUMN remetente")

    with pytest.raises(CommandError, match="whatsapp_mensagens: no column for direction"):
        _run(source)

    assert WhatsAppSession.objects.count() == 0


def test_unreachable_source_is_a_clear_error(admin_user):
    with pytest.raises(CommandError, match="cannot connect to the source database"):
        _run("postgresql://nobody@127.0.0.1:1/none")


def test_owner_by_email_or_first_superuser(source, django_user_model):
    with pytest.raises(CommandError, match="No superuser to own the imported numbers"):
        _run(source)
    with pytest.raises(CommandError, match="No user with the email who@example.com"):
        _run(source, "--owner", "who@example.com")

    carol = django_user_model.objects.create_user(
        username="carol", email="Carol@Example.com", password="pw"
    )
    _run(source, "--owner", "carol@example.com")

    assert set(WhatsAppSession.objects.values_list("owner", flat=True)) == {carol.pk}


def test_imported_names_do_not_clash_with_existing_numbers(source, admin_user):
    WhatsAppSession.objects.create(owner=admin_user, name="Vendas")

    importer.legacy_import(database_url=source, owner=admin_user)

    assert set(WhatsAppSession.objects.values_list("name", flat=True)) == {
        "Vendas",
        "Vendas (2)",
        "Suporte",
    }


class _Files(BaseHTTPRequestHandler):
    files = {
        "/foto.jpg": (b"\xff\xd8jpeg-bytes", "image/jpeg"),
        "/audio.ogg": (b"O" * 4096, "audio/ogg"),
    }

    def do_GET(self) -> None:  # noqa: N802 (the http.server's name)
        found = self.files.get(self.path)
        if found is None:
            self.send_error(404)
            return
        body, mime = found
        self.send_response(200)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def file_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_media_stores_files_and_keeps_links_on_failure(
    source, admin_user, file_server, settings
):
    settings.VBCRM_MAX_UPLOAD_BYTES = 1024  # the audio (4 KiB) is too large
    _source_sql(
        source,
        "UPDATE whatsapp_mensagens SET midia_url = replace(midia_url, 'http://media.invalid', %s)",
        (file_server,),
    )

    out = _run(source, "--download-media")

    photo = Message.objects.get(wa_id="legacy:m-3")
    assert photo.media_status == Message.MediaStatus.READY
    assert photo.media.read() == b"\xff\xd8jpeg-bytes"
    assert photo.media.name.endswith(".jpg") and photo.file_size == 12
    audio = Message.objects.get(wa_id="legacy:m-4")
    assert not audio.media and audio.media_link == f"{file_server}/audio.ogg"
    video = Message.objects.get(wa_id="legacy:m-5")
    assert not video.media and video.media_link.endswith("/missing.mp4")
    assert "media: 1 downloaded, 2 kept as links" in out
    assert "1: larger than the upload limit" in out
    assert "1: HTTP 404" in out


def test_dry_run_downloads_nothing(source, admin_user, file_server):
    _source_sql(
        source,
        "UPDATE whatsapp_mensagens SET midia_url = replace(midia_url, 'http://media.invalid', %s)",
        (file_server,),
    )

    out = _run(source, "--download-media", "--dry-run")

    assert "media:" not in out
    assert Message.objects.count() == 0


def test_small_batches_keep_conversations_whole(source, admin_user):
    progress: list[tuple[str, int, int]] = []

    report = importer.legacy_import(
        database_url=source,
        owner=admin_user,
        batch_size=2,
        progress=lambda table, done, total: progress.append((table, done, total)),
    )

    assert report.tables["whatsapp_mensagens"].imported == 7
    assert (
        Conversation.objects.get(contact__jid="5511999990001@s.whatsapp.net").messages.count() == 3
    )
    message_steps = [p for p in progress if p[0] == "whatsapp_mensagens"]
    assert message_steps == [("whatsapp_mensagens", n, 10) for n in (2, 4, 6, 8, 10)]


def test_imported_link_shows_in_the_thread(source, admin_user, client):
    importer.legacy_import(database_url=source, owner=admin_user)
    maria = Conversation.objects.get(contact__jid="5511999990001@s.whatsapp.net")
    client.force_login(admin_user)

    page = client.get(reverse("conversations:detail", args=[maria.pk]))

    assert page.status_code == 200
    assert b'href="http://media.invalid/foto.jpg"' in page.content
    assert b'rel="noopener noreferrer"' in page.content


def test_what_was_deleted_here_is_not_brought_back(source, admin_user):
    importer.legacy_import(database_url=source, owner=admin_user)
    Conversation.objects.filter(contact__jid="5511999990001@s.whatsapp.net").delete()

    report = importer.legacy_import(database_url=source, owner=admin_user)

    assert not Conversation.objects.filter(contact__jid="5511999990001@s.whatsapp.net").exists()
    assert report.tables["whatsapp_atendimentos"].skipped == {
        "deleted here since an earlier import": 1
    }
    assert (
        report.tables["whatsapp_mensagens"].skipped[
            "its conversation was deleted here since an earlier import"
        ]
        == 3
    )
    assert report.tables["whatsapp_mensagens"].imported == 0


def test_history_joins_the_owners_number_with_the_same_phone(source, admin_user):
    linked = WhatsAppSession.objects.create(
        owner=admin_user,
        name="Comercial",
        phone_number="5511988880001",
        status=WhatsAppSession.Status.CONNECTED,
    )
    NumberSettings.objects.create(session=linked, greeting_enabled=True, greeting_message="Oi!")

    report = importer.legacy_import(database_url=source, owner=admin_user)

    assert set(WhatsAppSession.objects.values_list("name", flat=True)) == {"Comercial", "Suporte"}
    assert report.tables["whatsapp_sessions"].notes == {
        "joined the owner's number with the same phone": 1
    }
    assert Conversation.objects.filter(session=linked).count() == 3  # Maria, João, m-9's chat
    linked.refresh_from_db()
    assert linked.status == WhatsAppSession.Status.CONNECTED
    ns = NumberSettings.objects.get(session=linked)
    assert ns.greeting_message == "Oi!"  # set here: kept
    assert ns.away_enabled and ns.away_message == "Estamos fora do horário."  # was empty: filled
    assert report.tables["whatsapp_configuracoes"].notes == {
        "the number's own settings kept where set here": 1
    }


def test_the_api_gives_an_imported_files_link(source, admin_user):
    importer.legacy_import(database_url=source, owner=admin_user)
    maria = Conversation.objects.get(contact__jid="5511999990001@s.whatsapp.net")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=admin_user, name='t').plain}")

    items = api.get(f"/api/whatsapp/conversations/{maria.pk}/messages").json()["items"]

    photo = next(i for i in items if i["kind"] == "image")
    assert photo["media_link"] == "http://media.invalid/foto.jpg"
    assert photo["media_url"] is None  # no file of ours to download
    assert next(i for i in items if i["kind"] == "text")["media_link"] == ""
