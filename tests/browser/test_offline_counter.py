"""The counter keeps serving when the network drops: Chromium with the context set offline,
the service worker and IndexedDB for real, the sync against a real gunicorn (SQLite or
PostgreSQL). Each scenario ends with the server's books: exactly the redemptions the counter
confirmed, receipts matching, balances and stock right, the ledger verifying."""

import re
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from app.households.models import Household
from app.ledger.chain import verify
from app.store.models import Item, Redemption

from .. import factories
from ..services.test_store import card_code, make_store
from .conftest import sign_in
from .test_store_counter import live_secret

pytestmark = pytest.mark.browser


@pytest.fixture
def counter(app, browser, live_server, village):
    """A clerk's browser context (service workers allowed), signed in; the store and two
    households (100 and 50 points), their cards as the scanner types them."""
    store = make_store(village)
    h1 = factories.household(village, opening=100, number="0101", head="李德胜").id
    h2 = factories.household(village, opening=50, number="0102", head="王秀英").id
    with live_secret(app):
        cards = {h1: card_code(h1), h2: card_code(h2)}
    username = db.session.get(User, store.clerk).username
    db.session.commit()
    context = browser.new_context(
        viewport={"width": 1024, "height": 800}, locale="zh-CN", service_workers="allow"
    )
    page = context.new_page()
    page.base = live_server
    sign_in(page, username, factories.PASSWORD)
    yield context, page, store, cards, (h1, h2), live_server
    context.close()


def open_counter(context, base):
    page = context.new_page()
    page.base = base
    page.goto(base + "/counter")
    return page


def ready_offline(page):
    """Online, the service worker controls the page and the offline list is kept."""
    page.goto(page.base + "/counter")
    until(
        page,
        "() => navigator.serviceWorker.getRegistration('/counter')"
        ".then(r => !!(r && r.active && r.active.state === 'activated'))",
    )
    expect(page.locator("#net-state")).to_have_attribute("data-list", re.compile(r"\d"))
    expect(page.locator("#net-state")).to_have_attribute("data-syncing", "")


def until(page, script: str, timeout: float = 20) -> None:
    """Poll `script` (page.wait_for_function would eval a string, which our CSP forbids)."""
    deadline = time.time() + timeout
    while not page.evaluate(script):
        assert time.time() < deadline, f"timed out waiting for {script}"
        time.sleep(0.1)


def state(page):
    return page.locator("#net-state")


def redeem(page, card: str, keys: list[str]) -> str:
    """Scan a card, type the item keys, confirm; returns the receipt number shown."""
    page.fill("#code", card)
    page.press("#code", "Enter")
    expect(page.locator("#customer")).to_be_visible()
    for key in keys:
        page.fill("#code", key)
        page.press("#code", "Enter")
    page.fill("#code", "")
    page.press("#code", "Enter")
    expect(page.locator("#receipt")).to_be_visible()
    number = page.locator("#r-id").inner_text().lstrip("#")
    page.press("#code", "Enter")  # next customer
    expect(page.locator("#receipt")).to_be_hidden()
    return number


def books():
    db.session.rollback()
    return db.session.scalars(select(Redemption).order_by(Redemption.id)).all()


def synced(page, waiting=0):
    expect(state(page)).to_have_attribute("data-syncing", "", timeout=20_000)
    expect(state(page)).to_have_attribute("data-waiting", str(waiting), timeout=20_000)
    expect(state(page)).to_contain_text("在线")


def test_offline_counter_reload_close_reopen_and_sync(counter):
    context, page, store, cards, (h1, h2), base = counter
    ready_offline(page)
    context.set_offline(True)
    page.reload()  # the page still opens: the service worker has it
    expect(state(page)).to_contain_text("离线")
    receipts = [
        redeem(page, cards[h1], ["1"]),  # rice 10
        redeem(page, cards[h2], ["2", "2"]),  # oil 5 x 2
        redeem(page, cards[h1], ["1*2", "2"]),  # rice 20 + oil 5
    ]
    expect(state(page)).to_contain_text("待同步 3")
    page.close()
    page = open_counter(context, base)  # closed and reopened, still offline
    expect(state(page)).to_contain_text("待同步 3")
    assert books() == []
    context.set_offline(False)
    synced(page)
    rows = books()
    assert [r.receipt_no for r in rows] == receipts
    assert [(r.household_id, r.total) for r in rows] == [(h1, 10), (h2, 10), (h1, 25)]
    assert all(r.occurred_at and r.occurred_at <= r.created_at for r in rows)
    assert db.session.get(Household, h1).balance == 65
    assert db.session.get(Household, h2).balance == 40
    assert db.session.get(Item, store.rice).stock == 10 - 3
    assert db.session.get(Item, store.oil).stock == 50 - 3
    assert verify() == []
