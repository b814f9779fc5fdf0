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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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
        return conn.exec_driver_sql(self._execute, {p: values[p] for p in self.params})
