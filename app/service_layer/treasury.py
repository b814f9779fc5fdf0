"""Treasury trades: a validated placeholder execution on the simulated `paper` venue.

The fill price is the latest network snapshot's BTC price; the trade row, one treasury.trade_executed event
and one audit row commit together (run_write). Ledger values are exact: amount in BTC to 8 decimals,
prices and notional in USD to cents (numeric columns, Decimal in Python; floats only at the JSON edge).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import Connection, text

from app.service_layer.errors import Unprocessable
from app.service_layer.idempotency import Outcome
from app.service_layer.miners import iso
from app.service_layer.unit_of_work import UnitOfWork
from app.service_layer.writes import Caller, run_write
from generated.events import TreasuryTradeExecuted

# Venues this deployment can execute on. Only the simulated venue exists today.
VENUES = frozenset({"paper"})
SATOSHI = Decimal("0.00000001")
CENT = Decimal("0.01")
TYPE_UNKNOWN_VENUE = "urn:hashinsight:problem:unknown-venue"
TYPE_NO_PRICE = "urn:hashinsight:problem:no-price"
TYPE_BAD_AMOUNT = "urn:hashinsight:problem:invalid-amount"


def latest_btc_price(conn: Connection) -> Decimal | None:
    # Recent window first so the planner prunes to a couple of daily partitions; fall back to any snapshot.
    price = conn.execute(
        text(
            """SELECT btc_price_usd FROM network_snapshots
                WHERE ts > now() - interval '2 days' AND btc_price_usd > 0
                ORDER BY ts DESC LIMIT 1"""
        )
    ).scalar_one_or_none()
    if price is None:
        price = conn.execute(
            text("SELECT btc_price_usd FROM network_snapshots WHERE btc_price_usd > 0 ORDER BY ts DESC LIMIT 1")
        ).scalar_one_or_none()
    return None if price is None else Decimal(str(price)).quantize(CENT, ROUND_HALF_EVEN)


def execute_trade(caller: Caller, body: dict[str, Any]) -> Outcome:
    principal = caller.principal
    venue = body.get("venue", "paper")
    asset = body.get("asset", "BTC")
    side = body["side"]
    if venue not in VENUES:
        raise Unprocessable(
            f"Unknown trading venue {venue!r}; available: {', '.join(sorted(VENUES))}",
            errors=[{"field": "venue", "message": f"unknown venue {venue!r}"}],
            problem_type=TYPE_UNKNOWN_VENUE,
        )
    amount = Decimal(str(body["amount_btc"])).quantize(SATOSHI, ROUND_HALF_EVEN)
    if amount <= 0:
        raise Unprocessable(
            "amount_btc must be at least 0.00000001 BTC (1 satoshi)",
            errors=[{"field": "amount_btc", "message": "rounds to 0 at 8 decimals"}],
            problem_type=TYPE_BAD_AMOUNT,
        )

    def work(uow: UnitOfWork) -> Outcome:
        price = latest_btc_price(uow.conn)
        if price is None or price <= 0:
            raise Unprocessable("No BTC price snapshot is available to fill the trade", problem_type=TYPE_NO_PRICE)
        notional = (amount * price).quantize(CENT, ROUND_HALF_EVEN)
        trade_id, executed_at = uow.conn.execute(
            text(
                """INSERT INTO trades (tenant_id, user_id, side, asset, amount_btc, price_usd, notional_usd, venue)
                   VALUES (:t, :u, :side, :asset, :amount, :price, :notional, :venue)
                   RETURNING id, created_at"""
            ),
            {"t": principal.tenant_id, "u": principal.user_id, "side": side, "asset": asset, "amount": amount,
             "price": price, "notional": notional, "venue": venue},
        ).one()
        trade = {
            "trade_id": str(trade_id),
            "side": side,
            "asset": asset,
            "amount_btc": float(amount),
            "price_usd": float(price),
            "notional_usd": float(notional),
            "venue": venue,
            "status": "filled",
            "executed_at": iso(executed_at),
        }
        uow.emit(
            caller.event(
                "treasury.trade_executed",
                TreasuryTradeExecuted(
                    trade_id=trade["trade_id"], side=side, asset=asset, amount_btc=trade["amount_btc"],
                    price_usd=trade["price_usd"], notional_usd=trade["notional_usd"], venue=venue,
                ),
                entity_id=trade["trade_id"],
            )
        )
        uow.audit(caller.audit("treasury.trade_execute", "trade", trade["trade_id"],
                               {"side": side, "asset": asset, "amount_btc": str(amount), "price_usd": str(price),
                                "notional_usd": str(notional), "venue": venue}))
        return Outcome(201, trade)

    return run_write(caller, "execute_trade", {}, body, work)
