"""Many clerks press "confirm" at once against one household, through a real gunicorn with four
workers: exactly as many redemptions succeed as the balance and the stock allow, nothing goes
below zero, a request id is recorded once, a pay code is used once, and the ledger verifies."""

import re
import threading
import time
from collections import Counter
from contextlib import contextmanager

import pytest
import requests
from sqlalchemy import func, select

from app.auth.models import User
from app.extensions import db
from app.households.models import Household
from app.ledger.chain import verify
from app.ledger.models import LedgerEntry
from app.store import services
from app.store.models import Item, PayCode, Redemption

from .. import factories
from ..services.test_store import card_code, head_of, make_store, pay_code, rid

pytestmark = pytest.mark.server
LIVE_SECRET = "live-test-secret"  # what the live_server fixture gives gunicorn
THREADS = 24


@contextmanager
def live_secret(app):
    """Codes made here must be signed with the live server's secret."""
    real = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = LIVE_SECRET
    try:
        yield
    finally:
        app.config["SECRET_KEY"] = real


def clerk_session(base: str, username: str) -> tuple[dict, str]:
    """Sign in once; returns the cookies and the CSRF token for the counter API."""
    s = requests.Session()
    page = s.get(base + "/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = s.post(
        base + "/login",
        data={"username": username, "password": factories.PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status_code == 302, resp.text
    html = s.get(base + "/counter").text
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
    return s.cookies.get_dict(), csrf


def hammer(
    base: str, auth: list[tuple[dict, str]], bodies: list[dict], path: str = "redemptions"
) -> list[tuple[int, dict]]:
    """POST every body at once (one thread and one session each; clerks taken in turn)."""
    results: list = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def run(i: int) -> None:
        cookies, csrf = auth[i % len(auth)]
        with requests.Session() as s:
            s.cookies.update(cookies)
            barrier.wait()
            r = s.post(
                base + "/api/v1/counter/" + path,
                json=bodies[i],
                headers={"X-CSRFToken": csrf},
                timeout=60,
            )
            results[i] = (r.status_code, r.json())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def rows(column) -> int:
    db.session.rollback()  # see what the server committed
    return db.session.scalar(select(func.count(column)))


def fresh(model, ident):
    db.session.rollback()
    return db.session.get(model, ident)


@pytest.fixture
def setup(app, village):
    store = make_store(village, rice_stock=7)
    second = factories.user(village, "clerk")
    services.assign_clerk(village.id, second.id, store.shop, None)
    household = factories.household(village, opening=100).id
    names = [db.session.get(User, uid).username for uid in (store.clerk, second.id)]
    return store, household, names


def test_concurrent_redemptions_never_overspend_balance_or_stock(app, live_server, setup, runner):
    store, household, clerks = setup
    auth = [clerk_session(live_server, name) for name in clerks]
    with live_secret(app):
        card = card_code(household)

    # 1. Stock decides: 7 bags of rice (10 points each) for 24 clerks; 100 points would buy 10.
    bodies = [
        {"code": card, "lines": [{"item_id": store.rice, "qty": 1}], "request_id": rid()}
        for _ in range(THREADS)
    ]
    started = time.perf_counter()
    results = hammer(live_server, auth, bodies)
    elapsed = time.perf_counter() - started
    statuses = Counter(status for status, _ in results)
    errors = Counter(body.get("error") for status, body in results if status != 201)
    print(f"\nstock-bound: {dict(statuses)} {dict(errors)} in {elapsed:.2f}s")
    assert statuses == {201: 7, 409: THREADS - 7}
    assert errors == {"out_of_stock": THREADS - 7}
    assert fresh(Item, store.rice).stock == 0
    assert fresh(Household, household).balance == 30

    # 2. Balance decides: 30 points left, 24 clerks each want 2 bottles of oil (10 points).
    bodies = [
        {"code": card, "lines": [{"item_id": store.oil, "qty": 2}], "request_id": rid()}
        for _ in range(THREADS)
    ]
    started = time.perf_counter()
    results = hammer(live_server, auth, bodies)
    elapsed = time.perf_counter() - started
    statuses = Counter(status for status, _ in results)
    print(f"balance-bound: {dict(statuses)} in {elapsed:.2f}s")
    assert statuses == {201: 3, 409: THREADS - 3}
    assert {b["error"] for s, b in results if s == 409} == {"insufficient_points"}
    assert fresh(Household, household).balance == 0
    assert fresh(Item, store.oil).stock == 50 - 6
    balances = sorted(b["balance_after"] for s, b in results if s == 201)
    assert balances == [0, 10, 20]

    assert rows(Redemption.id) == 10
    # A village's entries' ids follow their chain order (verify finds each household's last
    # entry by id): an id drawn before the lock could be overtaken by one drawn after it.
    db.session.rollback()
    ids = db.session.scalars(select(LedgerEntry.id).order_by(LedgerEntry.seq)).all()
    assert ids == sorted(ids)
    assert verify() == []
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output


def test_same_request_id_at_once_is_recorded_once(app, live_server, setup):
    store, household, clerks = setup
    auth = [clerk_session(live_server, name) for name in clerks]
    with live_secret(app):
        card = card_code(household)
    body = {"code": card, "lines": [{"item_id": store.oil, "qty": 1}], "request_id": rid()}
    results = hammer(live_server, auth, [body] * 12)
    assert {status for status, _ in results} == {201}
    assert len({b["id"] for _, b in results}) == 1
    assert rows(Redemption.id) == 1
    assert fresh(Household, household).balance == 95
    assert verify() == []


def test_one_pay_code_at_once_is_used_once(app, live_server, setup):
    store, household, clerks = setup
    auth = [clerk_session(live_server, name) for name in clerks]
    with live_secret(app):
        code = pay_code(head_of(household).id)
    bodies = [
        {"code": code, "lines": [{"item_id": store.oil, "qty": 1}], "request_id": rid()}
        for _ in range(12)
    ]
    results = hammer(live_server, auth, bodies)
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 404: 11}
    assert {b["error"] for s, b in results if s == 404} == {"code_unknown"}
    assert fresh(Household, household).balance == 95
    db.session.rollback()
    assert (
        db.session.scalar(select(func.count(PayCode.id)).where(PayCode.used_at.is_not(None))) == 1
    )
    assert verify() == []


def test_a_clerk_guessing_numbers_at_once_gets_exactly_the_limit(app, live_server, setup):
    """Thirty guessed numbers sent at once by one clerk across four workers: exactly
    CLERK_CODE_FAILURES are looked up (and fail), the rest are refused unlooked."""
    store, household, clerks = setup
    auth = [clerk_session(live_server, clerks[0])]
    bodies = [{"code": f"8{n:017d}"} for n in range(30)]
    results = hammer(live_server, auth, bodies, path="lookup")
    statuses = Counter(status for status, _ in results)
    limit = services.CLERK_CODE_FAILURES
    assert statuses == {404: limit, 429: 30 - limit}, statuses
    assert {b["error"] for s, b in results if s == 429} == {"too_many_codes"}
