"""Server-side prepared statements for the hot paths: planned once per connection, not once per call.

The time-series tables are partitioned by day, and planning a statement over a partitioned table costs time
that grows with the number of partitions: on this stack about 8 ms to plan the forecast rewrite, 2 ms for the
fleet query, against a few ms to run them. psycopg2 interpolates parameters client-side and never prepares,
so every call was planned afresh. A `Prepared` statement is PREPAREd on a pooled connection the first time that
connection runs it and EXECUTEd after that; the connections use plan_cache_mode=force_generic_plan (see
app/adapters/db.py), so the plan is made once and partitions are pruned when it runs.

Write the SQL as for SQLAlchemy's text() (`:name` parameters) with every parameter's type fixed by a CAST, so
PREPARE can infer it. Prepared statements belong to a connection: the pool keeps a connection's set in its
`info`, which lives and dies with the database connection (a reconnect after a restart prepares again).

A list parameter (always `CAST(:x AS type[])`) goes as one string in PostgreSQL's array input form ('{...}'),
not as psycopg2 renders a list: ARRAY[...] with a SQL literal per element, which the server parses as numeric
constants and casts one by one. For the forecast rewrite's 750 rows of six float columns that took 5.4 ms in the
driver and ~0.5 ms per column in the server's parser, against 0.4 ms and ~0.25 ms as array input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, CursorResult

_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class Prepared:
    def __init__(self, name: str, sql: str) -> None:
        self.name = name
        self.params: list[str] = []
        for p in _PARAM.findall(sql):
            if p not in self.params:
                self.params.append(p)
        body = _PARAM.sub(lambda m: f"${self.params.index(m.group(1)) + 1}", sql)
        self._prepare = f"PREPARE {name} AS {body}"
        self._execute = f"EXECUTE {name}(" + ", ".join(f"%({p})s" for p in self.params) + ")" if self.params \
            else f"EXECUTE {name}"

    def __call__(self, conn: Connection, params: Mapping[str, Any] | None = None) -> CursorResult[Any]:
        prepared: set[str] = conn.connection.info.setdefault("hashinsight_prepared", set())
        if self.name not in prepared:
            conn.exec_driver_sql(self._prepare.replace("%", "%%"))
            prepared.add(self.name)
        values = dict(params or {})
        missing = [p for p in self.params if p not in values]
        if missing:
            raise KeyError(f"{self.name}: missing parameters {missing}")
        return conn.exec_driver_sql(self._execute, {p: _bound(values[p]) for p in self.params})


def _bound(value: Any) -> Any:
    return array_literal(value) if isinstance(value, list) else value


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _element(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(int(value))  # an IntEnum's own str() is its name
    if isinstance(value, float):
        return repr(float(value))  # repr round-trips exactly; inf and nan are PostgreSQL's input forms too
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):  # datetime is a date: both by isoformat, with the offset if any
        return _quoted(value.isoformat())
    if isinstance(value, (str, UUID)):
        return _quoted(str(value))
    raise TypeError(f"no array element form for {type(value).__name__}")


def array_literal(values: Sequence[object]) -> str:
    """`values` in PostgreSQL's array input form: NULL for None, strings quoted (so 'NULL' or '' stay strings)."""
    kinds = {type(v) for v in values}
    if kinds <= {float, int}:  # the bulk of the rewrites' columns: no per-element dispatch
        return "{" + ",".join(map(repr, values)) + "}"
    if kinds <= {str}:
        return "{" + ",".join(map(_quoted, values)) + "}"
    return "{" + ",".join(map(_element, values)) + "}"
