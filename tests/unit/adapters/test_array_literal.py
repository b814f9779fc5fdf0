"""Lists as PostgreSQL array input (app/adapters/prepared.py): the text the server's array_in reads."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from enum import IntEnum
from uuid import UUID

import pytest

from app.adapters.prepared import array_literal


class Level(IntEnum):
    HIGH = 3


def test_numbers_are_written_exactly():
    assert array_literal([1.5, 0.1, 3, -2e-300, 1e16]) == "{1.5,0.1,3,-2e-300,1e+16}"
    assert array_literal([float("inf"), float("-inf")]) == "{inf,-inf}"


def test_strings_are_always_quoted_and_escaped():
    assert array_literal(["a", "", "NULL", 'say "hi"', "back\\slash", "{x, y}"]) == (
        '{"a","","NULL","say \\"hi\\"","back\\\\slash","{x, y}"}'
    )


def test_none_is_null_and_other_scalars_have_their_input_forms():
    u = UUID("12345678-1234-5678-1234-567812345678")
    values = [None, True, False, Level.HIGH, 2.5, Decimal("1.10"), date(2026, 12, 6),
              datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc), u, "x"]
    assert array_literal(values) == (
        '{NULL,t,f,3,2.5,1.10,"2026-12-06","2026-12-06T10:00:00+00:00","12345678-1234-5678-1234-567812345678","x"}'
    )


def test_an_empty_list_is_an_empty_array():
    assert array_literal([]) == "{}"


@pytest.mark.parametrize("nested", [[1, 2], (1,), {"a": 1}, b"x"])
def test_nested_values_are_refused(nested):
    with pytest.raises(TypeError):
        array_literal(["a", nested])
