"""The database functions the reports need beyond Django's: a percentile (PostgreSQL's
``percentile_cont``; on SQLite an aggregate of the same definition, registered on each
new connection) and the seconds between two times."""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Aggregate, F, FloatField, Func

SQLITE_PERCENTILE = "vb_percentile_cont"


class Percentile(Aggregate):
    """The continuous percentile ``fraction`` (0..1) of ``expression``: the value at that
    point of the sorted values, interpolated between the two nearest (what PostgreSQL's
    ``percentile_cont`` computes). NULL over no rows."""

    name = "Percentile"
    output_field = FloatField()
    template = "percentile_cont(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must lie between 0 and 1")
        super().__init__(expression, fraction=float(fraction), **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        # A copy with SQLite's template: Aggregate.as_sql passes ``template`` on itself.
        clone = self.copy()
        clone.template = f"{SQLITE_PERCENTILE}(%(expressions)s, %(fraction)s)"
        return super(Percentile, clone).as_sql(compiler, connection, **extra_context)


class Seconds(Func):
    """Seconds from ``start`` to ``end`` (two datetime columns), as a float."""

    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM (%(expressions)s))"
    arg_joiner = " - "

    def __init__(self, end: str, start: str) -> None:
        super().__init__(F(end), F(start))

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra_context,
        )


class _SqlitePercentile:
    """SQLite's side of :class:`Percentile`: keeps the group's values (numbers only, in
    the database engine) and interpolates as ``percentile_cont`` does."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value: float | None, fraction: float) -> None:
        self.fraction = fraction
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> float | None:
        return percentile_cont(self.values, self.fraction)


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """``percentile_cont``'s definition: position ``fraction * (n - 1)`` in the sorted
    values, linear between its two neighbours."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def register_sqlite_functions(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """``connection_created`` receiver: gives each new SQLite connection the percentile."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    if isinstance(raw, sqlite3.Connection):
        raw.create_aggregate(SQLITE_PERCENTILE, 2, _SqlitePercentile)  # type: ignore[arg-type]
