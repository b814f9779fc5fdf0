"""Market-data fan-out: one recalculation of every user of every tenant, set-based, inside the batch transaction.

A market.snapshot_recorded event changes the price every figure uses, so the portfolio and intel handlers
recalculate everyone. `FanOut.run(uow)`:

1. lists every (tenant, user) id pair through hashinsight_fanout_users() (migrations/0050): the worker role is
   under RLS and sees one tenant at a time, so a SECURITY DEFINER function owned by hashinsight_ops returns the
   ids, and nothing else, across tenants;
2. per tenant, in sorted order: `uow.set_tenant(t)`, the tenant's exclusive fan-out lock, then the
   recalculation in chunks of `chunk` users, one statement per table per chunk;
3. switches the unit of work back to the tenant of the event and returns the users it recalculated, by tenant,
   for the handler's after-commit step (cache invalidation, pipelined).

Coalescing: any number of snapshots in one batch make one fan-out; the handler folds them into one call per
tenant group, and a second call in the same transaction (snapshots recorded by two tenants) finds its work done.
Snapshots arriving while a fan-out runs wait on the partition and arrive together in the next batch.

What guards a fan-out against a concurrent per-user recalculation (another worker applying miner.added for a
user the fan-out also rewrites)? Not per-user locks: 10,000 advisory locks in one transaction would overflow
the shared lock table (max_locks_per_transaction x max_connections = 64 x 200). Instead one lock per tenant
and per handler, `hashinsight.fanout:<handler>:<tenant>`: per-user recalculations take it SHARED (they do not
block each other), the fan-out takes it EXCLUSIVE for each tenant before it reads that tenant's fleets, and
all of them hold it until their transaction ends. So a fan-out never reads a fleet that a per-user
recalculation is rewriting, and a per-user recalculation that starts during a fan-out waits and then runs on
top of it, with the new price and the newest fleet; the last writer always read the newest state. A fleet
write that commits after the fan-out read it has its own event, whose recalculation waits for the fan-out and
then overwrites its row. Lock count: one per tenant, ten for ten tenants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from app.adapters.cache import Fresh
from app.service_layer.unit_of_work import UnitOfWork

DEFAULT_CHUNK = 1000
_LOCK = "SELECT pg_advisory_xact_lock{mode}(hashtextextended(:name, 0))"


def tenant_lock_name(handler: str, tenant_id: str) -> str:
    return f"hashinsight.fanout:{handler}:{tenant_id}"


def lock_tenant(conn: Connection, handler: str, tenant_id: str, *, exclusive: bool) -> None:
    """The tenant's fan-out lock until the transaction ends: shared for per-user work, exclusive for a fan-out."""
    conn.execute(text(_LOCK.format(mode="" if exclusive else "_shared")),
                 {"name": tenant_lock_name(handler, tenant_id)})


def chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


Recalc = Callable[[UnitOfWork, list[str]], Any]


@dataclass
class Applied:
    """What a handler's apply recalculated, for its after_commit: the fan-out's users by tenant (empty without a
    snapshot in the batch), and the cache entries it wrote anew, to be written through once committed."""

    fanned_out: dict[str, list[str]] = field(default_factory=dict)
    fresh: dict[str, Fresh] = field(default_factory=dict)

    def users(self) -> list[str]:
        return [user for members in self.fanned_out.values() for user in members]


class FanOut:
    def __init__(self, handler: str, recalc: Recalc, chunk: int = DEFAULT_CHUNK) -> None:
        self.handler = handler
        self.recalc = recalc
        self.chunk = chunk
        self._done_in: int | None = None  # the transaction that already fanned out
        self.runs = 0  # fan-outs done (tests, metrics)

    def run(self, uow: UnitOfWork) -> dict[str, list[str]]:
        """Recalculate everyone (once per transaction); the users recalculated, by tenant."""
        txid = uow.conn.execute(text("SELECT txid_current()")).scalar_one()
        if txid == self._done_in:
            return {}
        home = uow.tenant_id
        by_tenant: dict[str, list[str]] = {}
        for tenant_id, user_id in uow.conn.execute(text("SELECT tenant_id, user_id FROM hashinsight_fanout_users()")):
            by_tenant.setdefault(tenant_id, []).append(user_id)
        try:
            for tenant_id in sorted(by_tenant):
                uow.set_tenant(tenant_id)
                lock_tenant(uow.conn, self.handler, tenant_id, exclusive=True)
                for part in chunks(by_tenant[tenant_id], self.chunk):
                    self.recalc(uow, part)
        finally:
            uow.set_tenant(home)
        self._done_in = txid
        self.runs += 1
        return by_tenant
