"""The full-text index of messages, on whichever database runs.

PostgreSQL: a stored generated column ``search_vector`` on ``whatsapp_mensagens`` (the
text of ``body``, ``file_name`` and ``location_name`` through the ``vbcrm_search`` text
search configuration: Portuguese stemming, accents folded by ``unaccent`` when the
extension could be created) with a GIN index. The database fills it on every write,
bulk ones included, so no Python code keeps it.

SQLite: an FTS5 table ``message_search`` over the same columns (``remove_diacritics``
folds accents), kept by triggers; without FTS5, no index, and searches fall back to a
plain ``LIKE`` per word.

The column is not a model field: Django would read a tsvector with every message
loaded. Queries reach it through :class:`SearchVectorColumn`.

The SQL below is put together from this module's own constant names only; every value
goes as a parameter (what the ``S608`` notes vouch for).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Expression, FloatField, QuerySet, TextField
from django.db.models.expressions import RawSQL

logger = logging.getLogger(__name__)

CONFIG = "vbcrm_search"
NAMES = "vbcrm_names"
TABLE = "whatsapp_mensagens"
FTS_TABLE = "message_search"

# --- PostgreSQL -------------------------------------------------------------------------

_PG_COLUMN = (
    f"ALTER TABLE {TABLE} ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    f"to_tsvector('{CONFIG}'::regconfig, coalesce(body, '') || ' '"
    # a file name's parts as words ("boleto-marco.pdf" is one "file" token otherwise)
    " || translate(coalesce(file_name, ''), '._-', '   ')"
    " || ' ' || coalesce(location_name, ''))) STORED"
)
_PG_INDEX = f"CREATE INDEX msg_search ON {TABLE} USING gin (search_vector)"
# Ids come in buckets of BUCKET (ids follow time, so a bucket is a stretch of time). The
# index also holds each message's bucket, as a second key: a search of the newest
# buckets only reads, of each word's list of matches, the stretch those buckets hold
# (PostgreSQL's GIN skips to it), where a search of every message reads every list whole.
BUCKET = 16384
# (``{table}.``: the messages' alias in a query, as in _NAMES, and nothing in the index)
_PG_BUCKET = f"ARRAY[{{table}}.id / {BUCKET}]"
_PG_INDEX_BUCKETS = (
    f"CREATE INDEX msg_search ON {TABLE} USING gin"
    f" (search_vector, ({_PG_BUCKET.replace('{table}.', '')}))"
)
# A contact's names as words: the expression of its index, which queries repeat
# (``{table}.`` is the contacts' alias in a query, and nothing in the index).
_NAMES = (
    f"to_tsvector('{NAMES}'::regconfig, {{table}}.saved_name || ' ' || {{table}}.push_name"
    " || ' ' || {table}.group_subject)"
)


def _pg_unaccent_schema(cursor: Any) -> str | None:
    """Create the unaccent extension if this role may; its schema, or None without it."""
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent'")
    if cursor.fetchone() is not None:
        try:
            with transaction.atomic():  # a savepoint: a refusal must not end the migration
                cursor.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        except DatabaseError as exc:
            logger.warning("search: unaccent not created (%s); accents stay significant", exc)
    cursor.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'unaccent'"
    )
    row = cursor.fetchone()
    return row[0] if row else None


def _pg_create(cursor: Any) -> None:
    schema = _pg_unaccent_schema(cursor)
    cursor.execute(f"CREATE TEXT SEARCH CONFIGURATION {CONFIG} (COPY = pg_catalog.portuguese)")
    if schema is not None:
        # Accented words only (plain ASCII ones have nothing to fold), before stemming,
        # so "ação" and "acao" stem alike.
        cursor.execute(
            f"ALTER TEXT SEARCH CONFIGURATION {CONFIG} ALTER MAPPING FOR hword, hword_part, word"
            f" WITH {connection.ops.quote_name(schema)}.unaccent, portuguese_stem"
        )
    cursor.execute(_PG_COLUMN)
    cursor.execute(_PG_INDEX)
    # Contacts' names: every word, accents folded, never stemmed (names are not words).
    cursor.execute(f"CREATE TEXT SEARCH CONFIGURATION {NAMES} (COPY = pg_catalog.simple)")
    if schema is not None:
        cursor.execute(
            f"ALTER TEXT SEARCH CONFIGURATION {NAMES} ALTER MAPPING FOR hword, hword_part, word"
            f" WITH {connection.ops.quote_name(schema)}.unaccent, simple"
        )
    names = _NAMES.replace("{table}.", "")
    cursor.execute(f"CREATE INDEX contact_names_search ON whatsapp_contacts USING gin ({names})")


def _pg_replace_index(db: BaseDatabaseWrapper, create: str) -> None:
    """``msg_search`` replaced by the index ``create`` makes, built beside it without
    blocking writes (``CONCURRENTLY``: messages keep coming in while it builds, a minute
    or more on millions of them), then put in its place. Outside a transaction only;
    a build cut short leaves an invalid ``msg_search_new``, dropped on the next try."""
    with db.cursor() as cursor:
        cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS msg_search_new")
        cursor.execute(
            create.replace("CREATE INDEX msg_search", "CREATE INDEX CONCURRENTLY msg_search_new")
        )
        cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS msg_search")
        cursor.execute("ALTER INDEX msg_search_new RENAME TO msg_search")


def with_buckets(db: BaseDatabaseWrapper) -> None:
    """The messages' index with their buckets as its second key (PostgreSQL)."""
    if db.vendor == "postgresql":
        _pg_replace_index(db, _PG_INDEX_BUCKETS)


def without_buckets(db: BaseDatabaseWrapper) -> None:
    if db.vendor == "postgresql":
        _pg_replace_index(db, _PG_INDEX)


def _pg_drop(cursor: Any) -> None:
    cursor.execute("DROP INDEX IF EXISTS contact_names_search")
    cursor.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {NAMES}")
    cursor.execute("DROP INDEX IF EXISTS msg_search")
    cursor.execute(f"ALTER TABLE {TABLE} DROP COLUMN IF EXISTS search_vector")
    cursor.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {CONFIG}")


def pg_folds_accents() -> bool:
    """Whether the configuration folds accents (the unaccent extension was there)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_ts_config_map m JOIN pg_ts_config c ON c.oid = m.mapcfg"
            " JOIN pg_ts_dict d ON d.oid = m.mapdict"
            " WHERE c.cfgname = %s AND d.dictname = 'unaccent'",
            [CONFIG],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


class OnTable(Expression):
    """SQL about the row of the query's own table (``{table}`` in ``template``: its
    alias, which Django renames when the query becomes a subquery)."""

    def __init__(self, template: str, params: list, output_field: Any) -> None:
        super().__init__(output_field=output_field)
        self.template, self.params = template, params

    def as_sql(self, compiler: Any, connection: BaseDatabaseWrapper) -> tuple[str, tuple]:
        table = compiler.quote_name_unless_alias(compiler.query.base_table)
        # a list, as Django's own lookups add their parameters to it (the stubs say tuple)
        params: Any = list(self.params)
        return self.template.replace("{table}", table), params


def SearchVectorColumn() -> OnTable:  # noqa: N802 - reads as the column it is
    """The generated ``search_vector`` column of the query's message table."""
    return OnTable("{table}.search_vector", [], SearchVectorField())


# --- SQLite -----------------------------------------------------------------------------

_COLUMNS = ("body", "file_name", "location_name")
_NEW = ", ".join(f"new.{c}" for c in _COLUMNS)
_OLD = ", ".join(f"old.{c}" for c in _COLUMNS)
_LIST = ", ".join(_COLUMNS)
_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER IF NOT EXISTS message_search_ai AFTER INSERT ON {TABLE} BEGIN"  # noqa: S608
    f" INSERT INTO {FTS_TABLE}(rowid, {_LIST}) VALUES (new.id, {_NEW}); END",
    f"CREATE TRIGGER IF NOT EXISTS message_search_ad AFTER DELETE ON {TABLE} BEGIN"  # noqa: S608
    f" INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_LIST}) VALUES ('delete', old.id, {_OLD});"
    " END",
    f"CREATE TRIGGER IF NOT EXISTS message_search_au AFTER UPDATE OF {_LIST} ON {TABLE} BEGIN"  # noqa: S608
    f" INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_LIST}) VALUES ('delete', old.id, {_OLD});"
    f" INSERT INTO {FTS_TABLE}(rowid, {_LIST}) VALUES (new.id, {_NEW}); END",
)


def sqlite_has_fts5(cursor: Any) -> bool:
    try:
        cursor.execute("CREATE VIRTUAL TABLE temp.vbcrm_fts5_probe USING fts5(x)")
    except DatabaseError:
        return False
    cursor.execute("DROP TABLE temp.vbcrm_fts5_probe")
    return True


def _sqlite_create(cursor: Any) -> None:
    if not sqlite_has_fts5(cursor):
        logger.warning("search: this SQLite has no FTS5; searches read every message")
        return
    cursor.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5({_LIST},"
        f" content='{TABLE}', content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
    )
    sqlite_ensure_triggers(cursor, rebuild=True)


def sqlite_ensure_triggers(cursor: Any, rebuild: bool = False) -> None:
    """Put the index's triggers back where they are missing: a migration that remakes
    the messages table (how SQLite alters a column) drops them with the old table."""
    cursor.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'message_search_%'"
    )
    if cursor.fetchone()[0] == len(_SQLITE_TRIGGERS) and not rebuild:
        return
    for sql in _SQLITE_TRIGGERS:
        cursor.execute(sql)
    cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")  # noqa: S608


def after_migrate(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    db = connections[using]
    if db.vendor == "sqlite" and sqlite_fts_ready(db):
        with db.cursor() as cursor:
            sqlite_ensure_triggers(cursor)


def _sqlite_drop(cursor: Any) -> None:
    for name in ("ai", "ad", "au"):
        cursor.execute(f"DROP TRIGGER IF EXISTS message_search_{name}")
    cursor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


def create(db: BaseDatabaseWrapper) -> None:
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            _pg_create(cursor)
        elif db.vendor == "sqlite":
            _sqlite_create(cursor)


def drop(db: BaseDatabaseWrapper) -> None:
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            _pg_drop(cursor)
        elif db.vendor == "sqlite":
            _sqlite_drop(cursor)


def sqlite_fts_ready(db: BaseDatabaseWrapper) -> bool:
    """Whether the FTS5 table exists (it does not on an SQLite built without FTS5)."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", [FTS_TABLE]
        )
        return cursor.fetchone() is not None


# --- the words of a search ---------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 8


def words(text: str) -> list[str]:
    """The words of what was typed (punctuation and operators dropped), at most
    ``MAX_WORDS``: every one must match."""
    return _WORD.findall(text)[:MAX_WORDS]


def pg_tsquery(terms: list[str], prefix: bool = False) -> str:
    """``to_tsquery`` text: the words ANDed; ``prefix``: the last one also as the start
    of a word (a search typed as the list filters)."""
    parts = [f"'{w}'" for w in terms]
    if prefix:
        parts[-1] += ":*"
    return " & ".join(parts)


def fts5_query(terms: list[str], prefix: bool = False) -> str:
    """An FTS5 MATCH expression: each word a quoted string (implicitly ANDed)."""
    parts = ['"' + w.replace('"', '""') + '"' for w in terms]
    if prefix:
        parts[-1] += "*"
    return " ".join(parts)


# --- matching ------------------------------------------------------------------------------

# What the database puts around a matched word in a snippet: private-use characters,
# which message text does not carry, turned into <mark> after the text is escaped.
START, STOP = "\ue000", "\ue001"


def backend(db: BaseDatabaseWrapper = connection) -> str:
    """``postgresql``, ``fts5`` or ``like`` (SQLite without FTS5)."""
    if db.vendor == "postgresql":
        return "postgresql"
    key = db.settings_dict.get("NAME")
    if key not in _fts_ready:
        _fts_ready[key] = sqlite_fts_ready(db)
    return "fts5" if _fts_ready[key] else "like"


_fts_ready: dict[Any, bool] = {}


def match_query(terms: list[str], prefix: bool = False) -> SearchQuery:
    return SearchQuery(pg_tsquery(terms, prefix), search_type="raw", config=CONFIG)


def matching(qs: QuerySet, terms: list[str], *, prefix: bool = False) -> QuerySet:
    """``qs`` (of messages) narrowed to those that hold all ``terms``
    (``prefix``: the last one may be the start of a word): through the index, or
    ``LIKE`` per word on an SQLite without FTS5."""
    kind = backend()
    if kind == "postgresql":
        return qs.alias(_vector=SearchVectorColumn()).filter(_vector=match_query(terms, prefix))
    if kind == "fts5":
        return qs.filter(
            pk__in=RawSQL(  # noqa: S611
                f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s",  # noqa: S608
                [fts5_query(terms, prefix)],
            )
        )
    for term in terms:
        qs = qs.filter(body__icontains=term)
    return qs


def in_buckets(first: int, last: int) -> OnTable:
    """A message whose id is in the buckets ``first`` to ``last`` (PostgreSQL): the
    index's second key, written as the index writes it."""
    return OnTable(
        _PG_BUCKET + " && %s::bigint[]",
        [list(range(first, last + 1))],
        BooleanField(),
    )


# ts_headline's options for a snippet: the words between START and STOP, up to two
# fragments of 8 to 24 words.
_HEADLINE = (
    "StartSel={start}, StopSel={stop}, MaxWords=24, MinWords=8, ShortWord=2,"
    ' MaxFragments=2, FragmentDelimiter=" … "'
)


def headline(terms: list[str]) -> OnTable:
    """The text of the row's ``body`` around its matches of ``terms`` (PostgreSQL's
    ``ts_headline``), the matches between ``START`` and ``STOP``."""
    return OnTable(
        f"ts_headline('{CONFIG}'::regconfig, {{table}}.body,"
        f" to_tsquery('{CONFIG}'::regconfig, %s), %s)",
        [pg_tsquery(terms), _HEADLINE.format(start=START, stop=STOP)],
        TextField(),
    )


def id_in(ids: Iterable[int]) -> OnTable:
    """A row whose id is one of ``ids``, as one array parameter (PostgreSQL), written
    out as text: psycopg quotes a list of thousands of ints one by one."""
    return OnTable(
        "{table}.id = ANY(%s::bigint[])",
        ["{" + ",".join(str(int(pk)) for pk in ids) + "}"],
        BooleanField(),
    )


def vector_match(terms: list[str]) -> OnTable:
    """A message that holds all ``terms``, through the index (PostgreSQL): what
    ``matching`` asks, as SQL on the row (for statements written once)."""
    return OnTable(
        f"{{table}}.search_vector @@ to_tsquery('{CONFIG}'::regconfig, %s)",
        [pg_tsquery(terms)],
        BooleanField(),
    )


def names_match(terms: list[str]) -> OnTable:
    """A contact whose names hold a word starting with each of ``terms`` (PostgreSQL)."""
    template = f"{_NAMES} @@ to_tsquery('{NAMES}'::regconfig, %s)"
    query = " & ".join(f"'{w}':*" for w in terms)
    return OnTable(template, [query], BooleanField())


def fts5_rank(terms: list[str]) -> OnTable:
    """bm25 of the row's match, negated: higher is better, as on PostgreSQL."""
    return OnTable(
        f"(SELECT -bm25({FTS_TABLE}) FROM {FTS_TABLE}"  # noqa: S608
        f" WHERE {FTS_TABLE} MATCH %s AND rowid = {{table}}.id)",
        [fts5_query(terms)],
        FloatField(),
    )


def fts5_snippet(terms: list[str]) -> OnTable:
    return OnTable(
        f"(SELECT snippet({FTS_TABLE}, 0, %s, %s, '…', 24) FROM {FTS_TABLE}"  # noqa: S608
        f" WHERE {FTS_TABLE} MATCH %s AND rowid = {{table}}.id)",
        [START, STOP, fts5_query(terms)],
        TextField(),
    )
