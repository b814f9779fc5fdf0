"""Treasury trades: a validated placeholder execution on the simulated `paper` venue, and exchange credentials.

The fill price is the latest network snapshot's BTC price; the trade row, one treasury.trade_executed event
and one audit row commit together (run_write). Ledger values are exact: amount in BTC to 8 decimals,
prices and notional in USD to cents (numeric columns, Decimal in Python; floats only at the JSON edge).

Exchange credentials (PUT /api/treasury/credentials) are sealed (service_layer/secrets.py). A trade on a venue
the caller stored a key for unseals it in memory and signs the order with it (HMAC-SHA256 over the order, the
way exchanges authenticate API orders); the key, the secret and the signature are never stored or logged; the
response names the key only by its hint (`signed_with`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import Connection, text

from app.service_layer import secrets
from app.service_layer.errors import Unprocessable
from app.service_layer.idempotency import Outcome
from app.service_layer.miners import iso
from app.service_layer.unit_of_work import UnitOfWork
from app.service_layer.writes import Caller, run_write
from generated.events import TreasuryCredentialsUpdated, TreasuryTradeExecuted

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


def _known_venue(venue: str, field: str) -> None:
    if venue not in VENUES:
        raise Unprocessable(
            f"Unknown trading venue {venue!r}; available: {', '.join(sorted(VENUES))}",
            errors=[{"field": field, "message": f"unknown venue {venue!r}"}],
            problem_type=TYPE_UNKNOWN_VENUE,
        )


_CREDENTIALS = text(
    """SELECT master_key_id, wrapped_key, nonce, ciphertext, api_key_hint FROM exchange_credentials
        WHERE user_id = :u AND exchange = :x"""
)


def _sign_order(conn: Connection, tenant_id: str, user_id: str, venue: str, order: dict[str, Any]) -> str | None:
    """Sign the order with the caller's stored key for the venue, unsealed in memory only; its hint, or None."""
    row = conn.execute(_CREDENTIALS, {"u": user_id, "x": venue}).first()
    if row is None:
        return None
    key = secrets.unseal_exchange_key(tenant_id, user_id, venue, secrets.SealedColumns.from_row(row))
    message = json.dumps(order, sort_keys=True, separators=(",", ":")).encode()
    # The paper venue accepts any signature; a real venue adapter sends it with the order (and the key id).
    hmac.new(key.api_secret.encode(), message, hashlib.sha256).hexdigest()
    return row.api_key_hint


def put_credentials(caller: Caller, body: dict[str, Any]) -> Outcome:
    principal = caller.principal
    exchange = body["exchange"]
    _known_venue(exchange, "exchange")
    key = secrets.ExchangeKey(exchange, body["api_key"], body["api_secret"])

    def work(uow: UnitOfWork) -> Outcome:
        sealed = secrets.seal_exchange_key(principal.tenant_id, principal.user_id, key)
        hint = secrets.api_key_hint(key.api_key)
        updated_at = uow.conn.execute(
            text(
                """INSERT INTO exchange_credentials (tenant_id, user_id, exchange, master_key_id, wrapped_key, nonce,
                                                    ciphertext, api_key_hint)
                   VALUES (:t, :u, :x, :master_key_id, :wrapped_key, :nonce, :ciphertext, :hint)
                   ON CONFLICT (tenant_id, user_id, exchange) DO UPDATE
                     SET master_key_id = EXCLUDED.master_key_id, wrapped_key = EXCLUDED.wrapped_key,
                         nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
                         api_key_hint = EXCLUDED.api_key_hint, updated_at = now()
                   RETURNING updated_at"""
            ),
            {"t": principal.tenant_id, "u": principal.user_id, "x": exchange, "hint": hint} | sealed.params(),
        ).scalar_one()
        uow.emit(caller.event("treasury.credentials_updated",
                              TreasuryCredentialsUpdated(exchange=exchange, master_key_id=sealed.master_key_id),
                              entity_id=exchange))
        uow.audit(caller.audit("treasury.credentials_put", "exchange_credentials", exchange,
                               {"exchange": exchange, "api_key_hint": hint, "master_key_id": sealed.master_key_id}))
        return Outcome(200, {"exchange": exchange, "api_key_hint": hint, "api_secret_set": True,
                             "master_key_id": sealed.master_key_id, "updated_at": iso(updated_at)})

    hashed = {**body, "api_key": secrets.fingerprint(key.api_key), "api_secret": secrets.fingerprint(key.api_secret)}
    return run_write(caller, "put_treasury_credentials", {}, hashed, work)


def execute_trade(caller: Caller, body: dict[str, Any]) -> Outcome:
    principal = caller.principal
    venue = body.get("venue", "paper")
    asset = body.get("asset", "BTC")
    side = body["side"]
    _known_venue(venue, "venue")
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
        signed_with = _sign_order(uow.conn, principal.tenant_id, principal.user_id, venue,
                                  {"side": side, "asset": asset, "amount_btc": str(amount), "venue": venue})
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
            "signed_with": signed_with,
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
