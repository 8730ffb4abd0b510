"""Import from the previous system's database (Supabase, that is PostgreSQL).

Its four tables: ``whatsapp_sessions`` (numbers), ``whatsapp_atendimentos``
(conversations), ``whatsapp_mensagens`` (messages) and ``whatsapp_configuracoes``
(per-number settings). Columns are matched by name (``COLUMNS``: the first name present
wins); a missing optional column is tolerated, an unknown one is listed and ignored.

Numbers arrive logged out, to be linked again. Each conversation is written with its
messages in one transaction, so a failure leaves none of it. What was imported is
remembered (``LegacyRecord`` for numbers, conversations and settings; the message's
WhatsApp id, or ``legacy:<id>``, for messages), so a second run imports nothing new.
The source is only read: one read-only connection, messages through a server-side
cursor, a batch at a time.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Case, When
from django.utils import timezone
from psycopg import sql

from conversations.models import (
    FILE_KINDS,
    Contact,
    Conversation,
    LegacyRecord,
    Message,
    message_preview,
)
from conversations.services.inbound import message_media_stored
from realtime import events
from vbcrm.types import User
from whatsapp import hours
from whatsapp.media_names import received_media_name
from whatsapp.models import NumberSettings, WhatsAppSession, default_time_zone
from whatsapp.phones import normalise_phone

logger = logging.getLogger(__name__)

SESSIONS = "whatsapp_sessions"
CONVERSATIONS = "whatsapp_atendimentos"
MESSAGES = "whatsapp_mensagens"
SETTINGS = "whatsapp_configuracoes"
TABLES = (SESSIONS, CONVERSATIONS, MESSAGES, SETTINGS)

# Per table: our field -> the source's column names it may have, the first present wins.
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    SESSIONS: {
        "id": ("id",),
        "name": ("session_name", "nome", "name"),
        "phone": ("phone_number", "numero", "telefone", "phone"),
    },
    CONVERSATIONS: {
        "id": ("id",),
        "session": ("session_id", "connection_id", "whatsapp_session_id"),
        "chat": ("numero_cliente", "chat_id", "telefone", "phone", "jid"),
        "name": ("nome_cliente", "contato_nome", "nome", "push_name"),
        "status": ("status",),
        "last_at": ("ultima_mensagem_em", "updated_at", "created_at"),
        "unread": ("nao_lidas", "unread_count"),
    },
    MESSAGES: {
        "id": ("id",),
        "conversation": ("atendimento_id", "conversa_id"),
        "session": ("session_id", "connection_id"),
        "chat": ("chat_id", "numero_cliente", "remote_jid", "telefone"),
        "direction": ("remetente", "direcao", "direction"),
        "kind": ("tipo", "message_type", "tipo_mensagem"),
        "body": ("conteudo", "mensagem", "texto", "content", "body"),
        "time": ("timestamp", "data_hora", "created_at"),
        "media_link": ("midia_url", "media_url", "arquivo_url"),
        "mime_type": ("midia_tipo", "midia_mime", "media_mime", "mime_type"),
        "file_name": ("midia_nome", "media_name", "file_name"),
        "file_size": ("midia_tamanho", "media_size", "file_size"),
        "wa_id": ("message_id", "wa_message_id", "whatsapp_message_id"),
    },
    SETTINGS: {
        "id": ("id",),
        "session": ("session_id", "connection_id"),
        "greeting_enabled": ("boas_vindas_ativa", "saudacao_ativa", "greeting_enabled"),
        "greeting_message": ("mensagem_boas_vindas", "saudacao", "greeting_message"),
        "away_enabled": ("ausencia_ativa", "away_enabled"),
        "away_message": ("mensagem_ausencia", "mensagem_fora_horario", "away_message"),
        "business_hours": ("horario_funcionamento", "business_hours"),
        "time_zone": ("fuso_horario", "timezone", "time_zone"),
    },
}

# Without these a table cannot be read at all (one of each tuple's names).
REQUIRED: dict[str, tuple[str, ...]] = {
    SESSIONS: ("id",),
    CONVERSATIONS: ("id", "chat"),
    MESSAGES: ("id", "direction"),
    SETTINGS: ("id",),
}

# Columns known and left out on purpose (not "unknown"): the seed's owners, tenants,
# QR codes and counters have no meaning here; a number's state is always "logged out".
IGNORED: dict[str, frozenset[str]] = {
    SESSIONS: frozenset(
        {"owner_id", "company_id", "status", "qr_code", "created_at", "updated_at"}
    ),
    CONVERSATIONS: frozenset({"owner_id", "company_id", "ultima_mensagem_preview"}),
    MESSAGES: frozenset({"owner_id", "company_id", "lida", "status", "updated_at"}),
    SETTINGS: frozenset({"owner_id", "company_id", "created_at", "updated_at"}),
}

# Settings this version has no field for yet: read, reported, not imported.
LATER: frozenset[str] = frozenset(
    {
        "resposta_automatica",
        "respostas_automaticas",
        "horario_inicio",
        "horario_fim",
        "dias_semana",
    }
)

_DIRECTIONS = {
    "cliente": Message.Direction.INBOUND,
    "in": Message.Direction.INBOUND,
    "inbound": Message.Direction.INBOUND,
    "entrada": Message.Direction.INBOUND,
    "recebida": Message.Direction.INBOUND,
    "received": Message.Direction.INBOUND,
    "atendente": Message.Direction.OUTBOUND,
    "out": Message.Direction.OUTBOUND,
    "outbound": Message.Direction.OUTBOUND,
    "saida": Message.Direction.OUTBOUND,
    "enviada": Message.Direction.OUTBOUND,
    "sent": Message.Direction.OUTBOUND,
    "bot": Message.Direction.OUTBOUND,
}

_KINDS = {
    "texto": Message.Kind.TEXT,
    "text": Message.Kind.TEXT,
    "chat": Message.Kind.TEXT,
    "conversation": Message.Kind.TEXT,
    "imagem": Message.Kind.IMAGE,
    "image": Message.Kind.IMAGE,
    "video": Message.Kind.VIDEO,
    "audio": Message.Kind.AUDIO,
    "voz": Message.Kind.VOICE,
    "voice": Message.Kind.VOICE,
    "ptt": Message.Kind.VOICE,
    "documento": Message.Kind.DOCUMENT,
    "document": Message.Kind.DOCUMENT,
    "arquivo": Message.Kind.DOCUMENT,
    "sticker": Message.Kind.STICKER,
    "figurinha": Message.Kind.STICKER,
    "localizacao": Message.Kind.LOCATION,
    "location": Message.Kind.LOCATION,
    "contato": Message.Kind.CONTACT,
    "contact": Message.Kind.CONTACT,
    "vcard": Message.Kind.CONTACT,
    "outro": Message.Kind.OTHER,
    "other": Message.Kind.OTHER,
}

_STATUSES = {
    "aberto": Conversation.Status.OPEN,
    "aberta": Conversation.Status.OPEN,
    "open": Conversation.Status.OPEN,
    "active": Conversation.Status.OPEN,
    "ativo": Conversation.Status.OPEN,
    "em_atendimento": Conversation.Status.OPEN,
    "em_andamento": Conversation.Status.OPEN,
    "novo": Conversation.Status.OPEN,
    "aguardando": Conversation.Status.PENDING,
    "aguardando_cliente": Conversation.Status.PENDING,
    "pendente": Conversation.Status.PENDING,
    "pending": Conversation.Status.PENDING,
    "waiting": Conversation.Status.PENDING,
    "finalizado": Conversation.Status.CLOSED,
    "finalizada": Conversation.Status.CLOSED,
    "fechado": Conversation.Status.CLOSED,
    "fechada": Conversation.Status.CLOSED,
    "encerrado": Conversation.Status.CLOSED,
    "resolvido": Conversation.Status.CLOSED,
    "concluido": Conversation.Status.CLOSED,
    "closed": Conversation.Status.CLOSED,
}

_DAYS = {
    "mon": "mon",
    "seg": "mon",
    "segunda": "mon",
    "tue": "tue",
    "ter": "tue",
    "terca": "tue",
    "wed": "wed",
    "qua": "wed",
    "quarta": "wed",
    "thu": "thu",
    "qui": "thu",
    "quinta": "thu",
    "fri": "fri",
    "sex": "fri",
    "sexta": "fri",
    "sat": "sat",
    "sab": "sat",
    "sabado": "sat",
    "sun": "sun",
    "dom": "sun",
    "domingo": "sun",
}
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")

_ACCENTS = str.maketrans("áàâãéêíóôõúçÁÀÂÃÉÊÍÓÔÕÚÇ", "aaaaeeioooucAAAAEEIOOOUC")

DEFAULT_BATCH_SIZE = 500
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class SourceError(Exception):
    """The source database cannot be read (connection, permissions, a required column)."""


@dataclass
class TableReport:
    read: int = 0
    imported: int = 0
    already: int = 0  # imported by an earlier run
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> rows
    notes: Counter[str] = field(default_factory=Counter)  # imported, with this change
    missing: list[str] = field(default_factory=list)  # optional fields with no column
    unknown: list[str] = field(default_factory=list)  # columns not read
    later: list[str] = field(default_factory=list)  # columns kept for a later version
    absent: bool = False  # the table is not in the source


@dataclass
class ImportReport:
    dry_run: bool = False
    tables: dict[str, TableReport] = field(
        default_factory=lambda: {name: TableReport() for name in TABLES}
    )
    contacts: int = 0
    media_downloaded: int = 0
    media_failed: int = 0
    media_failures: Counter[str] = field(default_factory=Counter)


Progress = Callable[[str, int, int], None]


def _no_progress(table: str, done: int, total: int) -> None:
    return None


# --- Reading the source -----------------------------------------------------------------


@dataclass
class _Table:
    name: str
    columns: dict[str, str]  # our field -> the source column read for it


def _norm(value: Any) -> str:
    return " ".join(str(value).split()).translate(_ACCENTS).lower().replace(" ", "_")


def _plan_table(name: str, present: Sequence[str], report: TableReport) -> _Table | None:
    """Which source column each field reads; None when the table cannot be imported."""
    if not present:
        report.absent = True
        return None
    lower = {c.lower(): c for c in present}
    columns: dict[str, str] = {}
    known: set[str] = set()
    for ours, names in COLUMNS[name].items():
        known.update(names)
        found = next((lower[n] for n in names if n in lower), None)
        if found is None:
            report.missing.append(ours)
        else:
            columns[ours] = found
    missing_required = [f for f in REQUIRED[name] if f not in columns]
    if name == MESSAGES and "conversation" not in columns and "chat" not in columns:
        missing_required.append("conversation or chat")
    known |= IGNORED[name]
    for column in present:
        c = column.lower()
        if c in LATER and name == SETTINGS:
            report.later.append(column)
        elif c not in known:
            report.unknown.append(column)
    if missing_required:
        raise SourceError(
            f"{name}: no column for {', '.join(missing_required)} (looked for "
            f"{', '.join(n for f in missing_required for n in COLUMNS[name].get(f, ()))})"
        )
    return _Table(name=name, columns=columns)


def _connect(database_url: str) -> psycopg.Connection:
    try:
        conn = psycopg.connect(database_url, connect_timeout=15)
    except psycopg.Error as exc:
        raise SourceError(f"cannot connect to the source database: {exc}") from exc
    conn.read_only = True
    return conn


def _columns_of(conn: psycopg.Connection) -> dict[str, list[str]]:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ANY(%s)"
        " ORDER BY table_name, ordinal_position",
        [list(TABLES)],
    ).fetchall()
    found: dict[str, list[str]] = {name: [] for name in TABLES}
    for table, column in rows:
        found[table].append(column)
    return found


def _select(table: _Table, order: Sequence[str] = ()) -> sql.Composed:
    fields = list(table.columns)
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(table.columns[f]) for f in fields),
        sql.Identifier(table.name),
    )
    keys = [sql.Identifier(table.columns[f]) for f in order if f in table.columns]
    if keys:
        query = sql.SQL("{} ORDER BY {}").format(
            query, sql.SQL(", ").join(sql.SQL("{} NULLS LAST").format(k) for k in keys)
        )
    return query


def _rows(conn: psycopg.Connection, table: _Table) -> list[dict[str, Any]]:
    fields = list(table.columns)
    rows = conn.execute(_select(table, ("id",))).fetchall()
    return [dict(zip(fields, row, strict=True)) for row in rows]


def _stream(
    conn: psycopg.Connection, table: _Table, order: Sequence[str], batch_size: int
) -> Iterator[list[dict[str, Any]]]:
    fields = list(table.columns)
    with conn.cursor(name=f"legacy_{table.name}") as cursor:
        cursor.itersize = batch_size
        cursor.execute(_select(table, order))
        while batch := cursor.fetchmany(batch_size):
            yield [dict(zip(fields, row, strict=True)) for row in batch]


# --- Values -----------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _key(value: Any) -> str:
    return _text(value)


def _rows_with_ids(
    rows: Iterable[dict[str, Any]], seen: Container[str], report: TableReport
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each row with its source id, counted as read. A row with no id, or with an id in
    ``seen`` (the ids met earlier in this run), is counted as skipped instead."""
    for row in rows:
        report.read += 1
        source_id = _key(row["id"])
        if not source_id:
            report.skipped["no id"] += 1
        elif source_id in seen:
            report.skipped["duplicate id"] += 1
        else:
            yield source_id, row


def _when(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10**11 else value  # milliseconds since 1970
        return datetime.fromtimestamp(seconds, tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return _norm(value) in {"1", "true", "t", "sim", "s", "yes", "y", "on", "ativo", "ativa"}


@dataclass(frozen=True)
class _Chat:
    jid: str
    phone: str
    is_group: bool


def _chat(value: Any) -> _Chat | None:
    """A contact's JID from a phone (``+55 11 99999-0001``) or a JID (``...@c.us`` too)."""
    text = _text(value)
    if not text:
        return None
    if "@" in text:
        user, server = text.split("@", 1)
        user = user.split(":", 1)[0]
        server = server.lower()
        if server == "g.us":
            return _Chat(jid=f"{user}@g.us", phone="", is_group=True)
        if server in {"s.whatsapp.net", "c.us"}:
            text = user
        elif server == "lid" and user.isdigit():
            return _Chat(jid=f"{user}@lid", phone="", is_group=False)
        else:
            return None
    try:
        phone = normalise_phone(text)
    except ValidationError:
        return None
    return _Chat(jid=f"{phone}@s.whatsapp.net", phone=phone, is_group=False)


def _business_hours(value: Any) -> dict[str, list[list[str]]] | None:
    """Our weekly hours, ``{"mon": [["08:00", "18:00"]]}``, from the source's JSON; None if
    not understood.

    Days may be ours or Portuguese (``seg``, ``segunda``...); a day's hours a list of
    pairs, one pair, ``{"inicio": .., "fim": ..}`` or ``"08:00-18:00"``.
    """
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict):
        return None
    hours: dict[str, list[list[str]]] = {}
    for day, spans in value.items():
        ours = _DAYS.get(_norm(day)[:7]) or _DAYS.get(_norm(day)[:3])
        if ours is None:
            return None
        if isinstance(spans, dict | str) or (
            isinstance(spans, list) and spans and isinstance(spans[0], str)
        ):
            spans = [spans]
        if not isinstance(spans, list):
            return None
        hours[ours] = []
        for span in spans:
            if isinstance(span, dict):
                span = [span.get("inicio") or span.get("start"), span.get("fim") or span.get("end")]
            elif isinstance(span, str):
                span = span.replace(" ", "").split("-")
            if (
                not isinstance(span, list)
                or len(span) != 2
                or not all(isinstance(t, str) and _HHMM.fullmatch(t) for t in span)
            ):
                return None
            hours[ours].append([span[0], span[1]])
    return hours


def _http_url(value: Any) -> str:
    url = _text(value)
    return url if url.lower().startswith(("http://", "https://")) and len(url) <= 2048 else ""


# --- Writing ----------------------------------------------------------------------------


def import_owner(email: str | None) -> User:
    """The user who will own the imported numbers: ``email`` (or username), else the
    first superuser."""
    users = get_user_model().objects
    if email:
        owner = (
            users.filter(email__iexact=email).order_by("pk").first()
            or users.filter(username=email).first()
        )
        if owner is None:
            raise ValidationError(f"No user with the email {email}.", code="no_owner")
        return owner
    owner = users.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if owner is None:
        raise ValidationError(
            "No superuser to own the imported numbers: create one (manage.py createsuperuser)"
            " or give --owner EMAIL.",
            code="no_owner",
        )
    return owner


def _records(source: str) -> dict[str, int]:
    return dict(LegacyRecord.objects.filter(source=source).values_list("source_id", "target_id"))


def _unique_name(owner: User, wanted: str) -> str:
    base = " ".join(wanted.split())[:90] or "Imported number"
    taken = set(WhatsAppSession.objects.filter(owner=owner).values_list("name", flat=True))
    name, n = base, 2
    while name in taken:
        name, n = f"{base} ({n})", n + 1
    return name


def _import_sessions(
    rows: list[dict[str, Any]], owner: User, report: TableReport
) -> dict[str, WhatsAppSession]:
    """The numbers, by source id (the ones imported earlier too)."""
    known = _records(SESSIONS)
    existing = WhatsAppSession.objects.in_bulk(known.values())
    sessions: dict[str, WhatsAppSession] = {}
    limit = settings.VBCRM_MAX_NUMBERS_PER_OWNER
    for source_id, row in _rows_with_ids(rows, sessions, report):
        if source_id in known:
            session = existing.get(known[source_id])
            if session is None:
                report.skipped["deleted here since an earlier import"] += 1
            else:
                sessions[source_id] = session
                report.already += 1
            continue
        phone = ""
        if _text(row.get("phone")):
            try:
                phone = normalise_phone(_text(row["phone"]))
            except ValidationError:
                report.notes["phone not understood, left empty"] += 1
        # The owner's number with that phone (linked here already, or imported from
        # another source row): its history joins it instead of a second number.
        match = (
            WhatsAppSession.objects.filter(owner=owner, phone_number=phone)
            .order_by(Case(When(status=WhatsAppSession.Status.LOGGED_OUT, then=1), default=0), "pk")
            .first()
            if phone
            else None
        )
        if match is not None:
            LegacyRecord.objects.create(source=SESSIONS, source_id=source_id, target_id=match.pk)
            sessions[source_id] = match
            report.imported += 1
            report.notes["joined the owner's number with the same phone"] += 1
            continue
        if WhatsAppSession.objects.filter(owner=owner).count() >= limit:
            report.skipped["the owner has the most numbers allowed"] += 1
            continue
        name = _text(row.get("name")) or (f"+{phone}" if phone else f"Imported {source_id}")
        with transaction.atomic():
            session = WhatsAppSession.objects.create(
                owner=owner,
                name=_unique_name(owner, name),
                phone_number=phone,
                status=WhatsAppSession.Status.LOGGED_OUT,
                status_detail="Imported from the previous system: link it again.",
                status_since=timezone.now(),
            )
            NumberSettings.objects.create(session=session)
            LegacyRecord.objects.create(source=SESSIONS, source_id=source_id, target_id=session.pk)
            events.session_changed(session)
        sessions[source_id] = session
        report.imported += 1
    if report.imported:
        events.access_changed([owner.pk])
    return sessions


# NumberSettings' defaults: a field still at its default was never set here.
_SETTINGS_DEFAULTS: dict[str, Any] = {
    "greeting_enabled": False,
    "greeting_message": "",
    "away_enabled": False,
    "away_message": "",
    "business_hours": {},
    "hours_enabled": False,
}


def _import_settings(
    rows: list[dict[str, Any]],
    sessions: dict[str, WhatsAppSession],
    only: WhatsAppSession | None,
    report: TableReport,
) -> None:
    known = _records(SETTINGS)
    seen: set[str] = set()
    for source_id, row in _rows_with_ids(rows, seen, report):
        seen.add(source_id)
        if source_id in known:
            report.already += 1
            continue
        ref = _key(row.get("session"))
        session = sessions.get(ref) if ref else only
        if session is None:
            reason = (
                "its number was not imported" if ref else "no number, and several in the source"
            )
            report.skipped[reason] += 1
            continue
        values: dict[str, Any] = {}
        for flag in ("greeting_enabled", "away_enabled"):
            if row.get(flag) is not None:
                values[flag] = _flag(row[flag])
        for text in ("greeting_message", "away_message"):
            if row.get(text) is not None:
                values[text] = _text(row[text])
        if "business_hours" in row:
            weekly = _business_hours(row["business_hours"])
            schedule = {"weekly": weekly or {}, "exceptions": []}
            try:
                hours.parse(schedule)
            except hours.ScheduleError:
                weekly = None
            if weekly is None:
                report.notes["business hours not understood, left as always open"] += 1
            elif weekly:
                values["business_hours"] = schedule
                values["hours_enabled"] = True
        if row.get("time_zone"):
            try:
                hours.zone(_text(row["time_zone"]))
                values["time_zone"] = _text(row["time_zone"]).strip()
            except hours.ScheduleError:
                report.notes["time zone not understood, the server's kept"] += 1
        with transaction.atomic():
            settings_row, _created = NumberSettings.objects.get_or_create(session=session)
            kept = False
            defaults = {**_SETTINGS_DEFAULTS, "time_zone": default_time_zone()}
            for name, value in values.items():
                # Only what is still at its default: a setting made here is never replaced.
                if getattr(settings_row, name) == defaults[name]:
                    setattr(settings_row, name, value)
                elif getattr(settings_row, name) != value:
                    kept = True
            if kept:
                report.notes["the number's own settings kept where set here"] += 1
            settings_row.save()
            LegacyRecord.objects.create(
                source=SETTINGS, source_id=source_id, target_id=settings_row.pk
            )
        report.imported += 1


_GONE = ("gone",)  # the key of a conversation imported before and deleted here since
_DONE = ("done",)  # the key of a conversation written in this run


@dataclass
class _Conversation:
    """A source conversation (an atendimento, or a chat without one) and its messages."""

    key: tuple[str, ...]
    session: WhatsAppSession
    chat: _Chat
    source_id: str = ""  # the atendimento's id, if it came from one
    name: str = ""
    status: str = Conversation.Status.OPEN
    last_at: datetime | None = None
    unread: int = 0
    note: str = ""  # what changed on the way in, counted once it is written
    messages: list[Message] = field(default_factory=list)
    message_notes: dict[str, list[str]] = field(default_factory=dict)  # by wa_id


def _conversation_plans(
    rows: list[dict[str, Any]],
    sessions: dict[str, WhatsAppSession],
    single: WhatsAppSession | None,
    report: TableReport,
) -> dict[str, _Conversation]:
    plans: dict[str, _Conversation] = {}
    for source_id, row in _rows_with_ids(rows, plans, report):
        ref = _key(row.get("session"))
        session = sessions.get(ref) if ref else single
        if session is None:
            reason = (
                "its number was not imported" if ref else "no number, and several in the source"
            )
            report.skipped[reason] += 1
            continue
        chat = _chat(row.get("chat"))
        if chat is None:
            report.skipped["no usable phone or chat id"] += 1
            continue
        raw_status = _norm(row.get("status") or "")
        status = _STATUSES.get(raw_status, Conversation.Status.OPEN)
        note = ""
        if raw_status and raw_status not in _STATUSES:
            note = f"unknown status {raw_status!r} imported as open"
        try:
            unread = max(0, int(row.get("unread") or 0))
        except (TypeError, ValueError):
            unread = 0
        plans[source_id] = _Conversation(
            key=("a", source_id),
            session=session,
            chat=chat,
            source_id=source_id,
            name=_text(row.get("name"))[:128],
            status=status,
            last_at=_when(row.get("last_at")),
            unread=unread,
            note=note,
        )
    return plans


def _message(row: dict[str, Any], report: TableReport, notes: list[str]) -> Message | None:
    """An unsaved message from a source row, or None (counted as skipped). What changes on
    the way in goes to ``notes``."""
    direction = _DIRECTIONS.get(_norm(row.get("direction") or ""))
    if direction is None:
        report.skipped["unknown sender (neither CLIENTE nor ATENDENTE)"] += 1
        return None
    raw_kind = _norm(row.get("kind") or "texto")
    kind = _KINDS.get(raw_kind)
    if kind is None:
        kind = Message.Kind.OTHER
        notes.append(f"unknown kind {raw_kind!r} imported as other")
    media_link = _http_url(row.get("media_link"))
    if _text(row.get("media_link")) and not media_link:
        notes.append("media link not http(s), left out")
    try:
        size = int(row["file_size"]) if row.get("file_size") not in (None, "") else None
    except (TypeError, ValueError):
        size = None
    when = _when(row.get("time"))
    wa_id = _text(row.get("wa_id"))[:128] or f"legacy:{_key(row['id'])}"[:128]
    inbound = direction == Message.Direction.INBOUND
    return Message(
        wa_id=wa_id,
        direction=direction,
        kind=kind,
        body=_text(row.get("body")),
        media_link=media_link,
        mime_type=_text(row.get("mime_type"))[:127],
        file_name=_text(row.get("file_name"))[:255],
        file_size=size,
        status=Message.Status.RECEIVED if inbound else Message.Status.SENT,
        wa_timestamp=when,
        read_at=when if inbound else None,
    )


@dataclass
class _Written:
    conversation: Conversation
    created: bool  # the conversation is new here
    contact_created: bool
    new: list[Message]
    already: int  # messages imported by an earlier run


def _write_conversation(plan: _Conversation) -> _Written:
    """One conversation and its messages, all or nothing."""
    with transaction.atomic():
        contact, contact_created = Contact.objects.get_or_create(
            session=plan.session,
            jid=plan.chat.jid,
            defaults={
                "phone": plan.chat.phone,
                "is_group": plan.chat.is_group,
                "push_name": "" if plan.chat.is_group else plan.name,
                "group_subject": plan.name if plan.chat.is_group else "",
            },
        )
        conversation, created = Conversation.objects.select_for_update().get_or_create(
            session=plan.session,
            contact=contact,
            defaults={
                "status": plan.status,
                "unread_count": plan.unread,
                "last_message_at": plan.last_at or timezone.now(),
            },
        )
        if plan.source_id:
            LegacyRecord.objects.create(
                source=CONVERSATIONS, source_id=plan.source_id, target_id=conversation.pk
            )
        stored = set(
            Message.objects.filter(
                conversation=conversation, wa_id__in=[m.wa_id for m in plan.messages]
            ).values_list("wa_id", flat=True)
        )
        new: list[Message] = []
        for message in plan.messages:
            if message.wa_id not in stored:
                stored.add(message.wa_id)
                message.conversation = conversation
                new.append(message)
        Message.objects.bulk_create(new, batch_size=DEFAULT_BATCH_SIZE)
        dated = [m for m in new if m.wa_timestamp is not None]
        last = max(
            dated, key=lambda m: m.wa_timestamp or conversation.last_message_at, default=None
        )
        if (
            last is not None
            and last.wa_timestamp is not None
            and (created or last.wa_timestamp >= conversation.last_message_at)
        ):
            conversation.last_message_at = last.wa_timestamp
            conversation.last_message_preview = message_preview(
                last.kind, last.body, last.file_name
            )
            conversation.save(
                update_fields=["last_message_at", "last_message_preview", "updated_at"]
            )
        if new or created:
            conversation.contact = contact
            conversation.session = plan.session
            events.conversation_updated(conversation)
    return _Written(
        conversation=conversation,
        created=created,
        contact_created=contact_created,
        new=new,
        already=len(plan.messages) - len(new),
    )


def _download(client: httpx.Client, message: Message, report: ImportReport) -> None:
    """Copy a message's file into our media store; on failure the link stays."""
    limit = settings.VBCRM_MAX_UPLOAD_BYTES
    try:
        with client.stream("GET", message.media_link) as response:
            response.raise_for_status()
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise ValueError("larger than the upload limit")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise ValueError("larger than the upload limit")
            mime = response.headers.get("content-type", "").split(";", 1)[0].strip()
    except (httpx.HTTPError, ValueError) as exc:
        reason = (
            "larger than the upload limit" if isinstance(exc, ValueError) else type(exc).__name__
        )
        if isinstance(exc, httpx.HTTPStatusError):
            reason = f"HTTP {exc.response.status_code}"
        report.media_failed += 1
        report.media_failures[reason] += 1
        return
    if not message.mime_type and mime:
        message.mime_type = mime
    path = default_storage.save(received_media_name(message), ContentFile(bytes(data)))
    message_media_stored(message_id=message.pk, path=path, size=len(data), mime_type=mime)
    report.media_downloaded += 1


def _commit(plan: _Conversation, report: ImportReport) -> list[Message]:
    """Write one source conversation; a failure is counted and leaves nothing of it.
    Returns its new messages whose file may be fetched."""
    conv_report, msg_report = report.tables[CONVERSATIONS], report.tables[MESSAGES]
    try:
        written = _write_conversation(plan)
    except Exception as exc:  # one conversation's failure must not stop the others
        logger.exception("legacy import: conversation %s failed", plan.key)
        msg_report.skipped["its conversation failed to import"] += len(plan.messages)
        conv_report.skipped[f"failed, nothing of it written ({type(exc).__name__})"] += 1
        return []
    if plan.source_id:
        conv_report.imported += 1
        if plan.note:
            conv_report.notes[plan.note] += 1
    elif written.created:
        conv_report.notes["made from messages with no conversation row"] += 1
    report.contacts += written.contact_created
    msg_report.imported += len(written.new)
    for message in written.new:
        for note in plan.message_notes.get(message.wa_id, ()):
            msg_report.notes[note] += 1
    msg_report.already += written.already
    return [m for m in written.new if m.media_link and m.kind in FILE_KINDS]


def _flush(pending: list[_Conversation], report: ImportReport, client: httpx.Client | None) -> None:
    """Write the conversations read so far: one commit for all of them, each in a savepoint
    of its own (so each is whole or absent); then fetch their files, if asked."""
    files: list[Message] = []
    with transaction.atomic():
        for plan in pending:
            files += _commit(plan, report)
    pending.clear()
    if client is not None:
        for message in files:
            _download(client, message, report)


def legacy_import(
    *,
    database_url: str,
    owner: User,
    dry_run: bool = False,
    download_media: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress = _no_progress,
) -> ImportReport:
    """Import the previous system's numbers, contacts, conversations, messages and
    settings for ``owner``. ``dry_run`` reads and checks everything, writes nothing.

    Raises ``SourceError`` when the source cannot be read (before anything is written).
    """
    report = ImportReport(dry_run=dry_run)
    with _connect(database_url) as conn:
        try:
            present = _columns_of(conn)
            tables = {
                name: _plan_table(name, present[name], report.tables[name]) for name in TABLES
            }
        except psycopg.Error as exc:
            raise SourceError(f"cannot read the source's tables: {exc}") from exc
        try:
            # A dry run does it all in one transaction and rolls it back: the same counts.
            with transaction.atomic() if dry_run else nullcontext():
                _run(
                    conn,
                    tables,
                    owner,
                    report,
                    download_media and not dry_run,
                    batch_size,
                    progress,
                )
                if dry_run:
                    transaction.set_rollback(True)
        except psycopg.Error as exc:
            raise SourceError(f"reading the source failed: {exc}") from exc
    return report


def _run(
    conn: psycopg.Connection,
    tables: dict[str, _Table | None],
    owner: User,
    report: ImportReport,
    download_media: bool,
    batch_size: int,
    progress: Progress,
) -> None:
    sessions_table, conv_table = tables[SESSIONS], tables[CONVERSATIONS]
    messages_table, settings_table = tables[MESSAGES], tables[SETTINGS]
    session_rows = _rows(conn, sessions_table) if sessions_table else []
    sessions = _import_sessions(session_rows, owner, report.tables[SESSIONS])
    progress(SESSIONS, len(session_rows), len(session_rows))
    # Rows that name no number belong to the source's only number, when it has one.
    single = next(iter(sessions.values())) if len(session_rows) == len(sessions) == 1 else None
    if settings_table:
        settings_rows = _rows(conn, settings_table)
        _import_settings(settings_rows, sessions, single, report.tables[SETTINGS])
        progress(SETTINGS, len(settings_rows), len(settings_rows))

    conv_report = report.tables[CONVERSATIONS]
    conv_rows = _rows(conn, conv_table) if conv_table else []
    plans = _conversation_plans(conv_rows, sessions, single, conv_report)
    progress(CONVERSATIONS, len(conv_rows), len(conv_rows))
    done_before = _records(CONVERSATIONS)
    existing = Conversation.objects.in_bulk(set(done_before.values()))
    for source_id in list(plans):
        if source_id in done_before:
            plan = plans[source_id]
            conversation = existing.get(done_before[source_id])
            if conversation is None:
                conv_report.skipped["deleted here since an earlier import"] += 1
                plan.key, plan.source_id = _GONE, ""  # and its messages stay out
            else:
                plan.source_id = ""  # already recorded: only its new messages, if any
                conv_report.already += 1
                plan.session = conversation.session
    client = (
        httpx.Client(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) if download_media else None
    )
    try:
        if messages_table:
            _import_messages(
                conn, messages_table, plans, sessions, single, report, client, batch_size, progress
            )
        # Conversations without any message.
        pending = [p for p in plans.values() if p.key != _DONE and p.source_id]
        for start in range(0, len(pending), batch_size):
            _flush(pending[start : start + batch_size], report, None)
    finally:
        if client is not None:
            client.close()


def _import_messages(
    conn: psycopg.Connection,
    table: _Table,
    plans: dict[str, _Conversation],
    sessions: dict[str, WhatsAppSession],
    single: WhatsAppSession | None,
    report: ImportReport,
    client: httpx.Client | None,
    batch_size: int,
    progress: Progress,
) -> None:
    """Messages in source-conversation order, so each conversation's rows come together:
    a conversation is written once its last row is read (it may span batches)."""
    msg_report = report.tables[MESSAGES]
    total = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name))
    ).fetchone()
    total_rows = int(total[0]) if total else 0
    order = ("conversation", "session", "chat", "time", "id")
    seen_ids: set[str] = set()
    current: _Conversation | None = None
    chats: dict[tuple[str, ...], _Conversation] = {}
    pending: list[_Conversation] = []  # read whole, to be written with this batch

    def finish(plan: _Conversation | None) -> None:
        if plan is not None and (plan.messages or plan.source_id):
            pending.append(replace(plan))  # what was read; the plan starts over
            plan.messages, plan.message_notes = [], {}
            if plan.source_id or plan.key[0] == "a":
                plan.key = _DONE

    for batch in _stream(conn, table, order, batch_size):
        for source_id, row in _rows_with_ids(batch, seen_ids, msg_report):
            seen_ids.add(source_id)
            plan = _plan_for(row, plans, sessions, single, chats, msg_report)
            if plan is None:
                continue
            if plan is not current:
                finish(current)
                current = plan
            notes: list[str] = []
            message = _message(row, msg_report, notes)
            if message is not None:
                plan.messages.append(message)
                if notes:
                    plan.message_notes[message.wa_id] = notes
        _flush(pending, report, client)
        progress(MESSAGES, msg_report.read, total_rows)
    finish(current)
    _flush(pending, report, client)


def _plan_for(
    row: dict[str, Any],
    plans: dict[str, _Conversation],
    sessions: dict[str, WhatsAppSession],
    single: WhatsAppSession | None,
    chats: dict[tuple[str, ...], _Conversation],
    report: TableReport,
) -> _Conversation | None:
    """The conversation a message row belongs to; None (counted) when there is none."""
    ref = _key(row.get("conversation"))
    if ref:
        plan = plans.get(ref)
        if plan is not None and plan.key == _GONE:
            report.skipped["its conversation was deleted here since an earlier import"] += 1
            return None
        if plan is not None:
            return plan
    chat = _chat(row.get("chat"))
    if chat is None:
        report.skipped[
            "its conversation was not imported" if ref else "no conversation and no chat"
        ] += 1
        return None
    session_ref = _key(row.get("session"))
    session = sessions.get(session_ref) if session_ref else single
    if session is None:
        report.skipped[
            "its number was not imported" if session_ref else "no number, and several in the source"
        ] += 1
        return None
    key = ("c", str(session.pk), chat.jid)
    plan = chats.get(key)
    if plan is None:
        plan = chats[key] = _Conversation(key=key, session=session, chat=chat)
    return plan


def import_summary(report: ImportReport) -> list[str]:
    """The report as lines for a terminal."""
    lines = ["Dry run: nothing was written." if report.dry_run else "Import finished."]
    for name in TABLES:
        t = report.tables[name]
        if t.absent:
            lines.append(f"{name}: not in the source, skipped")
            continue
        skipped = sum(t.skipped.values())
        lines.append(
            f"{name}: {t.read} read, {t.imported} imported, {t.already} imported before,"
            f" {skipped} skipped"
        )
        for reason, count in sorted(t.skipped.items()):
            lines.append(f"  skipped {count}: {reason}")
        for note, count in sorted(t.notes.items()):
            lines.append(f"  {count}: {note}")
        if t.missing:
            lines.append(f"  no column for (left empty): {', '.join(t.missing)}")
        if t.unknown:
            lines.append(f"  unknown columns (ignored): {', '.join(t.unknown)}")
        if t.later:
            lines.append(f"  columns not imported by this version: {', '.join(t.later)}")
    lines.append(f"contacts: {report.contacts} created")
    if report.media_downloaded or report.media_failed:
        lines.append(
            f"media: {report.media_downloaded} downloaded, {report.media_failed} kept as links"
        )
        for reason, count in sorted(report.media_failures.items()):
            lines.append(f"  {count}: {reason}")
    return lines


__all__ = [
    "COLUMNS",
    "ImportReport",
    "SourceError",
    "import_owner",
    "import_summary",
    "legacy_import",
]
