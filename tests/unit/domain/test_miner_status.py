"""The miner lifecycle table from docs/domain.md, every pair."""

from __future__ import annotations

import itertools

import pytest

from app.domain.miner_status import (
    InvalidTransition,
    MinerStatus,
    UnknownStatus,
    can_transition,
    is_hashing,
    transition,
)

STATUSES = ["active", "idle", "maintenance", "offline", "retired"]
# docs/domain.md, verbatim
ALLOWED = {
    "active": {"idle", "maintenance", "offline", "retired"},
    "idle": {"active", "maintenance", "offline", "retired"},
    "maintenance": {"active", "idle", "offline", "retired"},
    "offline": {"active", "idle", "maintenance", "retired"},
    "retired": set(),
}


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair(src: str, dst: str) -> None:
    if dst in ALLOWED[src]:
        assert can_transition(src, dst)
        assert transition(src, dst) == MinerStatus(dst)
    else:
        assert not can_transition(src, dst)
        with pytest.raises(InvalidTransition) as info:
            transition(src, dst)
        assert (info.value.from_status, info.value.to_status) == (MinerStatus(src), MinerStatus(dst))


def test_same_status_reason_and_message() -> None:
    with pytest.raises(InvalidTransition, match="is already idle") as info:
        transition("idle", "idle")
    assert info.value.reason == "same_status"


def test_retired_is_final() -> None:
    with pytest.raises(InvalidTransition, match="final") as info:
        transition("retired", "active")
    assert info.value.reason == "final_status"


def test_unknown_status() -> None:
    with pytest.raises(UnknownStatus, match="'broken'"):
        transition("active", "broken")


def test_only_active_hashes() -> None:
    assert [s for s in STATUSES if is_hashing(s)] == ["active"]
    assert MinerStatus.ACTIVE == "active"  # str-valued: compares with column text
