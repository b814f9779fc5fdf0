"""The miner lifecycle from docs/domain.md.

    active      -> idle / maintenance / offline / retired
    idle        -> active / maintenance / offline / retired
    maintenance -> active / idle / offline / retired
    offline     -> active / idle / maintenance / retired
    retired     -> (nothing: final)

A same-status "transition" is invalid too (the API answers 409), so a repeated PATCH never writes a second
miner.status_changed event. Only `active` miners hash and draw power.
"""

from __future__ import annotations

from enum import Enum


class MinerStatus(str, Enum):
    # str-valued so a status compares equal to its column/JSON text ("active" == MinerStatus.ACTIVE).
    ACTIVE = "active"
    IDLE = "idle"
    MAINTENANCE = "maintenance"
    OFFLINE = "offline"
    RETIRED = "retired"


ALL_STATUSES: tuple[MinerStatus, ...] = tuple(MinerStatus)
HASHING_STATUSES = frozenset({MinerStatus.ACTIVE})
FINAL_STATUSES = frozenset({MinerStatus.RETIRED})

# Spelled out rather than computed as "everything else", so a future rule (e.g. retired only from offline)
# is a one-line change that reads like the table in docs/domain.md.
ALLOWED_TRANSITIONS: dict[MinerStatus, frozenset[MinerStatus]] = {
    MinerStatus.ACTIVE: frozenset(
        {MinerStatus.IDLE, MinerStatus.MAINTENANCE, MinerStatus.OFFLINE, MinerStatus.RETIRED}
    ),
    MinerStatus.IDLE: frozenset(
        {MinerStatus.ACTIVE, MinerStatus.MAINTENANCE, MinerStatus.OFFLINE, MinerStatus.RETIRED}
    ),
    MinerStatus.MAINTENANCE: frozenset(
        {MinerStatus.ACTIVE, MinerStatus.IDLE, MinerStatus.OFFLINE, MinerStatus.RETIRED}
    ),
    MinerStatus.OFFLINE: frozenset(
        {MinerStatus.ACTIVE, MinerStatus.IDLE, MinerStatus.MAINTENANCE, MinerStatus.RETIRED}
    ),
    MinerStatus.RETIRED: frozenset(),
}


class UnknownStatus(ValueError):
    def __init__(self, value: object) -> None:
        self.value = value
        allowed = ", ".join(s.value for s in ALL_STATUSES)
        super().__init__(f"unknown miner status {value!r}; expected one of {allowed}")


class InvalidTransition(ValueError):
    """A status change the lifecycle forbids; the API maps it to 409 (invalid-status-transition)."""

    def __init__(self, from_status: MinerStatus, to_status: MinerStatus) -> None:
        self.from_status = from_status
        self.to_status = to_status
        if from_status == to_status:
            self.reason = "same_status"
            message = f"is already {to_status.value}"
        elif from_status in FINAL_STATUSES:
            self.reason = "final_status"
            message = f"is {from_status.value}, which is final; it cannot become {to_status.value}"
        else:
            self.reason = "not_allowed"
            message = f"cannot go from {from_status.value} to {to_status.value}"
        super().__init__(message)


def parse_status(value: str | MinerStatus) -> MinerStatus:
    try:
        return MinerStatus(value)
    except ValueError:
        raise UnknownStatus(value) from None


def can_transition(from_status: str | MinerStatus, to_status: str | MinerStatus) -> bool:
    return parse_status(to_status) in ALLOWED_TRANSITIONS[parse_status(from_status)]


def transition(from_status: str | MinerStatus, to_status: str | MinerStatus) -> MinerStatus:
    """Return the new status, or raise InvalidTransition (or UnknownStatus for a value outside the enum)."""
    current, target = parse_status(from_status), parse_status(to_status)
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(current, target)
    return target


def is_hashing(status: str | MinerStatus) -> bool:
    return parse_status(status) in HASHING_STATUSES
