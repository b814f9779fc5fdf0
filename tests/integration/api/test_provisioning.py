"""Just-in-time provisioning of the token's user and tenant, cached per process."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from app.adapters.tokens import Principal
from app.service_layer.users import TenantMismatch, UserDirectory


def test_a_fresh_token_works_at_once_and_creates_the_user(client, user, admin_db):
    assert admin_db.all("SELECT 1 FROM users WHERE id = %s", user.user_id) == []
    r = client.post("/api/miners", json={"model_id": "antminer-s21"}, headers=user.headers())
    assert r.status_code == 201
    assert admin_db.one("SELECT tenant_id FROM users WHERE id = %s", user.user_id) == user.tenant_id


def test_one_db_round_trip_per_user_per_process(api_db, user):
    directory = UserDirectory()
    p = Principal(user.user_id, user.tenant_id, frozenset())
    for _ in range(5):
        plan = directory.ensure(p)
    assert directory.db_round_trips == 1
    assert (plan.name, plan.requests_per_minute, plan.burst) == ("free", 60, 20)  # no subscription row = free


def test_plan_comes_from_user_subscriptions_and_expires(api_db, user, admin_db):
    now = [0.0]
    directory = UserDirectory(clock=lambda: now[0])
    p = Principal(user.user_id, user.tenant_id, frozenset())
    assert directory.ensure(p).name == "free"
    admin_db.execute("INSERT INTO user_subscriptions (tenant_id, user_id, plan, requests_per_minute, burst)"
                     " VALUES (%s, %s, 'pro', 600, 100)", user.tenant_id, user.user_id)
    assert directory.ensure(p).name == "free"  # cached
    now[0] += 61
    plan = directory.ensure(p)
    assert (plan.name, plan.requests_per_minute, plan.burst) == ("pro", 600, 100)
    assert directory.db_round_trips == 2


def test_same_user_id_in_another_tenant_is_refused(api_db, user):
    directory = UserDirectory()
    directory.ensure(Principal(user.user_id, user.tenant_id, frozenset()))
    try:
        directory.ensure(Principal(user.user_id, "t-someone-else", frozenset()))
    except TenantMismatch:
        pass
    else:
        raise AssertionError("expected TenantMismatch")


def test_seeded_demo_user_keeps_its_plan(api_db):
    plan = UserDirectory().ensure(Principal("demo-user-1", "demo-tenant", frozenset()))
    assert plan.name == "pro"


def test_first_requests_of_a_new_user_racing_across_processes_all_succeed(api_db, make_user, admin_db):
    """Several web processes provision the same new user at the same instant. `users` has two unique
    indexes (`id`, and `(tenant_id, id)` for the composite foreign keys): a conflict target naming only `id`
    let the loser of the race fail on the other index with a 500."""
    n, rounds = 8, 25
    directories = [UserDirectory() for _ in range(n)]  # one per process
    for _ in range(rounds):
        new = make_user()
        p = Principal(new.user_id, new.tenant_id, frozenset())
        barrier = threading.Barrier(n)

        def provision(directory: UserDirectory, p: Principal = p, barrier: threading.Barrier = barrier) -> str:
            barrier.wait()
            return directory.ensure(p).name

        with ThreadPoolExecutor(n) as pool:
            assert list(pool.map(provision, directories)) == ["free"] * n
        assert admin_db.one("SELECT tenant_id FROM users WHERE id = %s", new.user_id) == new.tenant_id
