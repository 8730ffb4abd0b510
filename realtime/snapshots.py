"""Model rows as plain JSON-safe dicts, and back into unsaved-looking instances.

An event carries the rows its fragments are rendered from, not the fragments: the
writer (often the worker, under load) only describes what changed, and each web
process renders it once, in the languages its sockets speak (realtime.fragments).

``dump`` takes every concrete column (binary ones excepted), or the ``fields`` given.
``load`` rebuilds the instance with ``Model.from_db``: a column left out of the
snapshot is *deferred*, so a template that reaches for it queries the database, which
the hub's event loop refuses (SynchronousOnlyOperation). A fragment can never show a
default in place of a value the snapshot forgot: it fails loudly, and tests see it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

from django.db import models
from django.db.models.fields.files import FieldFile

Snapshot = dict[str, Any]
M = TypeVar("M", bound=models.Model)


# Columns whose values a snapshot turns into strings; the others travel as they are.
_AS_TEXT = (models.DateField, models.TimeField, models.DecimalField, models.UUIDField)


@cache
def _columns(model: type[models.Model]) -> tuple[tuple[str, models.Field, bool], ...]:
    """(attname, field, whether loading must parse the value) of each column we carry."""
    return tuple(
        (
            f.attname,
            f,
            isinstance(f.target_field if isinstance(f, models.ForeignKey) else f, _AS_TEXT),
        )
        for f in model._meta.concrete_fields
        if not isinstance(f, models.BinaryField)
    )


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, FieldFile):
        return value.name or ""
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"cannot snapshot a {type(value).__name__}")


def dump(obj: models.Model, fields: Sequence[str] | None = None) -> Snapshot:
    """The row's columns (by attname: ``conversation_id``, not ``conversation``)."""
    names = fields if fields is not None else [name for name, _f, _p in _columns(type(obj))]
    return {name: _plain(getattr(obj, name)) for name in names}


def load(model: type[M], data: Snapshot) -> M:
    names, values = [], []
    for name, field, parse in _columns(model):
        if name in data:
            names.append(name)
            values.append(field.to_python(data[name]) if parse else data[name])
    return model.from_db(None, names, values)
