"""POST /api/treasury/execute: a filled paper trade, one treasury.trade_executed event, one audit row."""

from __future__ import annotations

from decimal import Decimal

from generated.events import TreasuryTradeExecuted


def test_contract_example_fills_at_the_latest_snapshot_price(client, user, admin_db):
    example = {"side": "sell", "asset": "BTC", "amount_btc": 0.01, "venue": "paper"}
    r = client.post("/api/treasury/execute", json=example, headers=user.headers("treasury:trade"))
    assert r.status_code == 201, r.text
    trade = r.json()
    price = admin_db.one("SELECT btc_price_usd FROM network_snapshots ORDER BY ts DESC LIMIT 1")
    assert trade["price_usd"] == round(price, 2)
    assert trade["notional_usd"] == float((Decimal("0.01") * Decimal(str(round(price, 2)))).quantize(Decimal("0.01")))
    assert (trade["side"], trade["asset"], trade["amount_btc"], trade["venue"], trade["status"]) == (
        "sell", "BTC", 0.01, "paper", "filled")
    row = admin_db.one("SELECT side, amount_btc, venue, user_id FROM trades WHERE id = %s", trade["trade_id"])
    assert row == ("sell", Decimal("0.01000000"), "paper", user.user_id)
    kind, payload = admin_db.one("SELECT kind, payload FROM event_outbox WHERE user_id = %s", user.user_id)
    event = TreasuryTradeExecuted.model_validate(payload)
    assert kind == "treasury.trade_executed" and str(event.trade_id) == trade["trade_id"]
    action = admin_db.one("SELECT action FROM audit_logs WHERE tenant_id = %s", user.tenant_id)
    assert action == "treasury.trade_execute"


def test_defaults_asset_and_venue(client, user):
    r = client.post("/api/treasury/execute", json={"side": "buy", "amount_btc": 1.5}, headers=user.headers())
    assert r.status_code == 201 and (r.json()["asset"], r.json()["venue"]) == ("BTC", "paper")


def test_unknown_venue_is_422(client, user, admin_db):
    r = client.post("/api/treasury/execute", json={"side": "buy", "amount_btc": 1, "venue": "binance"},
                    headers=user.headers())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "venue"
    assert admin_db.one("SELECT count(*) FROM trades WHERE tenant_id = %s", user.tenant_id) == 0


def test_amount_below_one_satoshi_is_422_not_500(client, user):
    r = client.post("/api/treasury/execute", json={"side": "buy", "amount_btc": 1e-9}, headers=user.headers())
    assert r.status_code == 422


def test_schema_bounds_are_400(client, user):
    h = user.headers()
    for body in [{"side": "hold", "amount_btc": 1}, {"side": "buy", "amount_btc": 0},
                 {"side": "buy", "amount_btc": 1001}, {"side": "buy", "amount_btc": 1, "asset": "ETH"},
                 {"side": "buy"}, {"side": "buy", "amount_btc": "1"}]:
        assert client.post("/api/treasury/execute", json=body, headers=h).status_code == 400, body
