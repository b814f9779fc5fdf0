"""PUT /api/subscription: the plan changes, crm.subscription_changed is emitted, and the limits follow at once."""

from __future__ import annotations

import time

import pytest

from app.adapters import plan_events
from app.adapters.redis_client import get_redis


def _put(client, user, plan: str, **kwargs):
    return client.put("/api/subscription", json={"plan": plan}, headers=user.headers(**kwargs))


def test_a_plan_change_is_written_with_its_event_and_audit_row(unlimited_client, user, admin_db):
    resp = _put(unlimited_client, user, "enterprise")
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert (doc["plan"], doc["requests_per_minute"], doc["burst"], doc["previous_plan"], doc["changed"]) == (
        "enterprise", 3000, 500, "free", True)
    assert admin_db.one("SELECT plan FROM user_subscriptions WHERE tenant_id = %s AND user_id = %s",
                        user.tenant_id, user.user_id) == "enterprise"
    payload = admin_db.one("SELECT payload FROM event_outbox WHERE tenant_id = %s AND kind = %s",
                           user.tenant_id, "crm.subscription_changed")
    assert payload == {"plan": "enterprise", "requests_per_minute": 3000, "burst": 500, "previous_plan": "free"}
    assert admin_db.one("SELECT details->>'to' FROM audit_logs WHERE tenant_id = %s AND action = %s",
                        user.tenant_id, "subscription.change") == "enterprise"


def test_the_same_plan_again_changes_nothing(unlimited_client, user, admin_db):
    assert _put(unlimited_client, user, "pro").json()["changed"] is True
    again = _put(unlimited_client, user, "pro")
    assert again.status_code == 200 and again.json()["changed"] is False
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE tenant_id = %s", user.tenant_id) == 1


def test_billing_write_is_required_and_plans_are_the_catalogues(unlimited_client, user):
    assert _put(unlimited_client, user, "pro", scopes="portfolio:read").status_code == 403
    bad = unlimited_client.put("/api/subscription", json={"plan": "platinum"}, headers=user.headers())
    assert bad.status_code == 400


def test_a_downgrade_limits_the_very_next_request(client, user):
    """On enterprise, 60 requests in a row pass; after the downgrade to free (burst 20) the next ones are
    judged by the free plan at once: what was used counts in proportion, and the burst is 20, not 500."""
    headers = user.headers()
    assert _put(client, user, "enterprise").status_code == 200
    for _ in range(60):
        assert client.get("/api/miners", headers=headers).status_code == 200
    assert _put(client, user, "free").status_code == 200
    started = time.monotonic()
    codes = [client.get("/api/miners", headers=headers).status_code for _ in range(25)]
    # Free refills one request a second, continuously: while the 25 are sent, up to this many more can pass,
    # after the first 429 too (the bucket's fraction left over from the burst completes a request).
    refilled = int(time.monotonic() - started) + 1
    # 62 of 500 used on enterprise is ~12 %: about 2-3 of free's 20 are gone; enterprise's 500 would pass all 25.
    assert codes[:15] == [200] * 15 and 429 in codes, codes
    burst = codes.index(429)
    assert burst <= 20 and codes[burst:].count(200) <= refilled, codes
    limited = client.get("/api/miners", headers=headers)
    assert limited.headers["RateLimit-Limit"] == "60"


def test_an_upgrade_refills_at_the_new_plans_rate_at_once(client, user):
    """A free user who used the whole burst upgrades: what was used keeps its share of the (bigger) bucket, and
    the bucket refills at enterprise speed (50/s) from the next request on, where free would give 1/s."""
    headers = user.headers()
    codes = [client.get("/api/miners", headers=headers).status_code for _ in range(19)]
    assert codes == [200] * 19, codes
    assert _put(client, user, "enterprise").status_code == 200  # the 20th request of free's burst
    # The used share carries over: after 1 s, 19 of free's 20 s of debt are left, half of enterprise's 10 s
    # bucket, so ~25 requests pass at once whatever the requests' own speed (free would let 1 through).
    time.sleep(1.0)
    after = [client.get("/api/miners", headers=headers).status_code for _ in range(30)]
    assert after.count(200) >= 20, after


@pytest.mark.parametrize("plan", ["pro"])
def test_the_serving_process_announces_the_change(unlimited_client, user, plan):
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(plan_events.CHANNEL)
    try:
        assert _put(unlimited_client, user, plan).status_code == 200
        message = None
        for _ in range(50):
            message = pubsub.get_message(timeout=0.1)
            if message and message["data"] == plan_events.message(user.tenant_id, user.user_id):
                break
        assert message and message["data"] == plan_events.message(user.tenant_id, user.user_id)
    finally:
        pubsub.close()
