"""List parameters of prepared statements reach PostgreSQL as the very arrays they were (app/adapters/prepared.py
sends them in the server's array input form, not as ARRAY[...] of literals)."""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from app.adapters.prepared import Prepared

_ROUND_TRIP = Prepared(
    "array_round_trip_test",
    """SELECT CAST(:texts AS text[]), CAST(:ints AS integer[]), CAST(:floats AS float8[]), CAST(:days AS date[]),
              CAST(:ids AS uuid[]), CAST(:stamps AS timestamptz[]), CAST(:empty AS text[]),
              cardinality(CAST(:texts AS text[]))""",
)


def test_lists_round_trip_through_the_server(test_db):
    texts = ["plain", "", "NULL", None, 'a "quoted" word', "back\\slash", "{braces, comma}", "  spaced  ",
             "it's", "é ✓ 日本"]
    ints = [0, -7, 2_147_483_647, None]
    floats = [0.1, -2.5e-300, 1.7976931348623157e308, 3.0, float("inf"), float("-inf"), None, float("nan")]
    days = [date(2026, 12, 6) + timedelta(days=i) for i in range(30)]
    ids = [uuid.uuid4() for _ in range(3)]
    stamps = [datetime(2026, 12, 6, 10, 30, 15, 123456, tzinfo=timezone.utc),
              datetime(2026, 12, 6, 12, 0, tzinfo=timezone(timedelta(hours=2)))]
    engine = create_engine(test_db.admin.replace("postgresql://", "postgresql+psycopg2://", 1), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            row = _ROUND_TRIP(conn, {"texts": texts, "ints": ints, "floats": floats, "days": days, "ids": ids,
                                     "stamps": stamps, "empty": []}).one()
    finally:
        engine.dispose()
    got_texts, got_ints, got_floats, got_days, got_ids, got_stamps, got_empty, n = row
    assert got_texts == texts and n == len(texts)
    assert got_ints == ints
    assert got_floats[:-1] == floats[:-1] and math.isnan(got_floats[-1])  # exact: repr round-trips
    assert got_days == days
    assert [uuid.UUID(str(i)) for i in got_ids] == ids
    assert got_stamps == stamps
    assert got_empty == []
