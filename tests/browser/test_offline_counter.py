"""The counter keeps serving when the network drops: Chromium with the context set offline,
the service worker and IndexedDB for real, the sync against a real gunicorn (SQLite or
PostgreSQL). Each scenario ends with the server's books: exactly the redemptions the counter
confirmed, receipts matching, balances and stock right, the ledger verifying."""

import re
import time
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from app.households.models import Household
from app.ledger.chain import verify
from app.offline.models import OfflineConflict
from app.store import services
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
    blocked = watch_csp(context)
    page = context.new_page()
    page.base = live_server
    sign_in(page, username, factories.PASSWORD)
    yield context, page, store, cards, (h1, h2), live_server
    context.close()
    assert not blocked, blocked


def watch_csp(context) -> list:
    """What our Content-Security-Policy blocks on any page of the context: a bug of ours."""
    blocked = []

    def on_page(page):
        page.on(
            "console",
            lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
        )

    context.on("page", on_page)
    return blocked


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


def pick(page, card: str, keys: list[str]) -> None:
    """Scan a card and type the item keys (not confirmed yet)."""
    page.fill("#code", card)
    page.press("#code", "Enter")
    expect(page.locator("#customer")).to_be_visible()
    for key in keys:
        page.fill("#code", key)
        page.press("#code", "Enter")


def confirm(page) -> None:
    page.fill("#code", "")
    page.press("#code", "Enter")


def redeem(page, card: str, keys: list[str]) -> str:
    """Scan a card, type the item keys, confirm; returns the receipt number shown."""
    pick(page, card, keys)
    confirm(page)
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


def test_sync_cut_half_way_resumes_without_doubling(counter):
    context, page, store, cards, (h1, h2), base = counter
    ready_offline(page)
    context.set_offline(True)
    page.reload()
    receipts = [redeem(page, cards[h1], ["2"]) for _ in range(3)]  # oil 5, three times
    expect(state(page)).to_contain_text("待同步 3")
    # Online again, but the connection drops after the server recorded the second one and
    # before its answer arrives: the counter never hears back.
    sent = []

    def cut(route):
        sent.append(route.request.post_data_json["request_id"])
        if len(sent) == 2:
            route.fetch()  # reaches the server...
            context.set_offline(True)
            route.abort("internetdisconnected")  # ...the answer is lost
        else:
            route.continue_()

    context.route("**/api/v1/counter/offline/redemptions", cut)
    context.set_offline(False)
    expect(state(page)).to_contain_text("离线", timeout=20_000)
    expect(state(page)).to_have_attribute("data-syncing", "", timeout=20_000)
    assert [r.receipt_no for r in books()] == receipts[:2]
    expect(state(page)).to_contain_text("待同步 2")  # the second is not known to be recorded
    context.unroute("**/api/v1/counter/offline/redemptions")
    context.set_offline(False)
    synced(page)
    rows = books()
    assert [r.receipt_no for r in rows] == receipts
    assert db.session.get(Household, h1).balance == 100 - 15
    assert db.session.get(Item, store.oil).stock == 50 - 3
    assert verify() == []


def test_two_tabs_sync_at_once(counter):
    context, page, store, cards, (h1, h2), base = counter
    ready_offline(page)
    context.set_offline(True)
    page.reload()
    other = open_counter(context, base)
    receipts = [
        redeem(page, cards[h1], ["1"]),
        redeem(other, cards[h2], ["2"]),
        redeem(page, cards[h2], ["1"]),
        redeem(other, cards[h1], ["2", "2"]),
    ]
    expect(state(page)).to_contain_text("待同步 4")
    expect(state(other)).to_contain_text("待同步 4")
    context.set_offline(False)  # both tabs see the network come back and sync
    synced(page)
    synced(other)
    rows = books()
    assert sorted(r.receipt_no for r in rows) == sorted(receipts)
    assert len({r.request_id for r in rows}) == 4
    assert db.session.get(Household, h1).balance == 100 - 10 - 10
    assert db.session.get(Household, h2).balance == 50 - 5 - 10
    assert verify() == []


def test_points_spent_elsewhere_meanwhile_are_an_overdraft_the_admin_sees(
    app, counter, browser, village
):
    context, page, store, cards, (h1, h2), base = counter
    ready_offline(page)
    context.set_offline(True)
    page.reload()
    page.fill("#code", cards[h2])
    page.press("#code", "Enter")
    expect(page.locator("#msg")).to_contain_text("50")  # its offline allowance today
    page.press("#code", "Escape")
    # 60 points is beyond h2's allowance of 50: the counter refuses it.
    page.fill("#code", cards[h2])
    page.press("#code", "Enter")
    for key in ["1*6"]:
        page.fill("#code", key)
        page.press("#code", "Enter")
    expect(page.locator("#confirm")).to_be_disabled()
    page.press("#code", "Escape")
    receipt = redeem(page, cards[h2], ["1*4"])  # 40 of its 50
    # Meanwhile the household spends 14 of its 50 points at the canteen, which is online.
    code = card_code(h2)  # signed for this process, which plays the canteen's counter
    services.redeem(
        village.id,
        store.canteen,
        store.cook,
        code,
        [{"item_id": store.lunch, "qty": 1}],
        "x" * 8 + receipt,
    )
    services.redeem(
        village.id,
        store.canteen,
        store.cook,
        code,
        [{"item_id": store.breakfast, "qty": 2}],
        "y" * 8 + receipt,
    )
    db.session.commit()
    spent = 50 - db.session.get(Household, h2).balance
    context.set_offline(False)
    synced(page)
    (row,) = books()[-1:]
    assert row.receipt_no == receipt and row.total == 40
    assert row.balance_after == 50 - spent - 40 < 0
    assert row.overdraft == -row.balance_after <= 50  # bounded by the allowance
    assert verify() == []
    admin = context.browser.new_context(locale="zh-CN").new_page()
    sign_in_admin = factories.user(village, "village_admin")
    db.session.commit()
    from .conftest import sign_in as login

    admin.base = base
    login(admin, sign_in_admin.username, factories.PASSWORD)
    admin.goto(base + "/admin/offline")
    overdrafts = admin.locator("#overdrafts")
    expect(overdrafts).to_contain_text(receipt)
    expect(overdrafts).to_contain_text(str(row.overdraft))
    admin.screenshot(path="/tmp/wt12-admin-offline.png", full_page=True)
    admin.context.close()


def test_a_closed_browser_loses_nothing_confirmed(counter, tmp_path):
    """The whole browser closed (a power cut) and started again, still with no network."""
    context, page, store, cards, (h1, h2), base = counter
    profile = tmp_path / "profile"
    kind = context.browser.browser_type
    args = dict(locale="zh-CN", service_workers="allow", viewport={"width": 1024, "height": 800})
    from .conftest import ARGS, CHROMIUM

    first = kind.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=ARGS, headless=True, **args
    )
    p = first.pages[0] if first.pages else first.new_page()
    p.base = base
    clerk = db.session.get(User, store.clerk).username
    sign_in(p, clerk, factories.PASSWORD)
    ready_offline(p)
    first.set_offline(True)
    p.reload()
    receipts = [redeem(p, cards[h1], ["1"]), redeem(p, cards[h2], ["2"])]
    expect(state(p)).to_contain_text("待同步 2")
    first.close()  # the browser is gone

    again = kind.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=ARGS, headless=True, **args
    )
    try:
        again.set_offline(True)
        p = again.pages[0] if again.pages else again.new_page()
        p.goto(base + "/counter")
        expect(state(p)).to_contain_text("离线")
        expect(state(p)).to_contain_text("待同步 2")
        assert books() == []
        again.set_offline(False)
        # A clerk's sign-in lasts as long as the browser: signed in again, the queue goes.
        p.base = base
        sign_in(p, clerk, factories.PASSWORD)
        p.goto(base + "/counter")
        synced(p)
        assert [r.receipt_no for r in books()] == receipts
        assert verify() == []
    finally:
        again.close()


def test_the_state_is_in_words_in_both_languages_at_a_phone(browser, counter):
    context, page, store, cards, (h1, h2), base = counter
    phone = browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        service_workers="allow",
    )
    blocked = watch_csp(phone)
    try:
        p = phone.new_page()
        p.base = base
        sign_in(p, db.session.get(User, store.clerk).username, factories.PASSWORD)
        ready_offline(p)
        expect(state(p)).to_have_text("在线")
        phone.set_offline(True)
        p.reload()
        expect(state(p)).to_have_text("离线")
        # A pay code is refused offline, with why.
        p.fill("#code", "8123 4567 8901 2345 67")
        p.press("#code", "Enter")
        expect(p.locator("#msg")).to_contain_text("离线时无法核验动态码")
        redeem(p, cards[h1], ["1"])
        expect(state(p)).to_have_text("离线 · 待同步 1")
        p.screenshot(path="/tmp/wt12-phone-offline-zh.png", full_page=True)
        phone.set_offline(False)
        p.goto(base + "/lang/en?next=/counter")
        expect(state(p)).to_have_text("Online", timeout=20_000)
        phone.set_offline(True)
        p.reload()
        redeem(p, cards[h2], ["2"])
        expect(state(p)).to_have_text("Offline · 1 waiting to sync")
        box = state(p).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360
        p.screenshot(path="/tmp/wt12-phone-offline-en.png", full_page=True)
        phone.set_offline(False)
        expect(state(p)).to_have_text("Online", timeout=20_000)
    finally:
        phone.close()
    assert not blocked, blocked


@pytest.mark.parametrize("arrived", [False, True])
def test_the_network_drops_between_scan_and_confirm(counter, arrived):
    """Scanned online, confirmed as the network dropped: the redemption is kept offline under
    the same request id, and recorded once - also when the first try did reach the server."""
    context, page, store, cards, (h1, h2), base = counter
    ready_offline(page)
    page.fill("#code", cards[h1])
    page.press("#code", "Enter")
    expect(page.locator("#customer")).to_be_visible()
    page.fill("#code", "1")
    page.press("#code", "Enter")

    def drop(route):
        if arrived:
            route.fetch()  # recorded by the server; the answer is lost
        context.set_offline(True)  # before the page hears of it: it finds itself offline
        route.abort("internetdisconnected")

    context.route("**/api/v1/counter/redemptions", drop)
    page.fill("#code", "")
    page.press("#code", "Enter")
    expect(page.locator("#receipt")).to_be_visible()
    number = page.locator("#r-id").inner_text().lstrip("#")
    expect(state(page)).to_contain_text("待同步 1")
    assert len(books()) == (1 if arrived else 0)
    context.unroute("**/api/v1/counter/redemptions")
    context.set_offline(False)
    synced(page)
    (row,) = books()
    assert row.total == 10 and db.session.get(Household, h1).balance == 90
    assert row.receipt_no == (None if arrived else number)
    assert db.session.get(Item, store.rice).stock == 9
    assert verify() == []


# What this browser keeps of the counter: whether the offline list is there, and the queue.
KEPT = """() => new Promise(resolve => {
  const req = indexedDB.open("village-points-counter");
  req.onupgradeneeded = () => req.transaction.abort();
  req.onerror = () => resolve(null);
  req.onsuccess = () => {
    const db = req.result, tx = db.transaction(["meta", "queue"]);
    const list = tx.objectStore("meta").get("list"), queue = tx.objectStore("queue").count();
    tx.oncomplete = () => { db.close(); resolve({list: !!list.result, queue: queue.result}); };
  };
})"""
SYNC = "**/api/v1/counter/offline/redemptions"


def test_signing_out_forgets_the_offline_list_and_keeps_the_queue(counter):
    """The list names households, their card hashes and allowances: the next person at this
    browser must not find it. A confirmed redemption still waiting is never lost: the next
    sign-in sends it, once."""
    context, page, store, cards, (h1, h2), base = counter
    ready_offline(page)
    context.set_offline(True)
    page.reload()
    receipt = redeem(page, cards[h1], ["1"])
    expect(state(page)).to_contain_text("待同步 1")
    assert page.evaluate(KEPT) == {"list": True, "queue": 1}
    # Online, but the sync does not get through: the clerk signs out with it still waiting.
    context.route(SYNC, lambda route: route.abort("internetdisconnected"))
    context.set_offline(False)
    page.click("form[data-forget-offline] button")
    page.wait_for_url("**/login")
    assert page.evaluate(KEPT) == {"list": False, "queue": 1}
    assert books() == []
    context.unroute(SYNC)
    sign_in(page, db.session.get(User, store.clerk).username, factories.PASSWORD)
    page.goto(base + "/counter")
    synced(page)
    assert [r.receipt_no for r in books()] == [receipt]
    assert db.session.get(Household, h1).balance == 90
    assert page.evaluate(KEPT)["list"]  # the counter fetched the list again
    assert verify() == []


def test_signing_out_where_the_counter_never_ran_creates_nothing(browser, live_server, village):
    """Every signed-in page has the sign-out button: a villager's phone gets no
    counter database from it."""
    villager = factories.user(village, "villager")
    db.session.commit()
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.base = live_server
        sign_in(page, villager.username, factories.PASSWORD)
        page.click("form[data-forget-offline] button")
        page.wait_for_url("**/login")
        names = page.evaluate("() => indexedDB.databases().then(d => d.map(x => x.name))")
        assert "village-points-counter" not in names
        assert page.evaluate(KEPT) is None
    finally:
        context.close()


@contextmanager
def at_the_canteen(browser, live_server, app, village, number: str, **options):
    """The canteen's cook signed in at the counter (a browser context with `options`), and the
    card of a household of one, 张大爷, with 100 points. Yields (context, page, card, keys): keys
    are the counter's item keys by meal name (午餐: lunch, 1 a day; 早餐: breakfast, 2)."""
    store = make_store(village)
    h = factories.household(village, opening=100, number=number, head="张大爷").id
    with live_secret(app):
        card = card_code(h)
    cook = db.session.get(User, store.cook).username
    db.session.commit()
    context = browser.new_context(
        viewport={"width": 1024, "height": 800}, locale="zh-CN", service_workers="allow", **options
    )
    blocked = watch_csp(context)
    try:
        page = context.new_page()
        page.base = live_server
        sign_in(page, cook, factories.PASSWORD)
        page.goto(live_server + "/counter")
        pick(page, card, [])
        names = page.locator("#items li .name").all_inner_texts()
        keys = {m: str(i + 1) for i, n in enumerate(names) for m in ("午餐", "早餐") if m in n}
        page.press("#code", "Escape")
        yield context, page, card, keys
    finally:
        context.close()
    assert not blocked, blocked


def test_offline_meals_keep_to_the_daily_limit(browser, live_server, app, village):
    """At the canteen, offline: the list knows the lunch had online this morning, and the
    counter counts what it serves itself; beyond a meal's limit it refuses, in words, and keeps
    nothing."""
    # A device whose clock is set to another zone still counts the village's day.
    with at_the_canteen(
        browser, live_server, app, village, "0201", timezone_id="America/Los_Angeles"
    ) as (context, page, card, keys):
        online = redeem(page, card, [keys["午餐"]])  # online: the list made next knows of it
        ready_offline(page)
        context.set_offline(True)
        page.reload()
        expect(state(page)).to_contain_text("离线")

        def refused(key):
            pick(page, card, [key])
            confirm(page)
            expect(page.locator("#msg")).to_contain_text("今天已用")
            expect(page.locator("#receipt")).to_be_hidden()
            return page.locator("#msg").inner_text()

        said = refused(keys["午餐"])
        assert "张大爷" in said and "午餐" in said and "1" in said
        page.press("#code", "Escape")
        served = [redeem(page, card, [keys["早餐"]]) for _ in range(2)]  # breakfast: 2 a day
        said = refused(keys["早餐"])
        assert "早餐" in said and "2" in said
        expect(state(page)).to_contain_text("待同步 2")
        context.set_offline(False)
        synced(page)
        rows = books()
        assert [r.receipt_no for r in rows] == [None, *served] and online
        assert not db.session.scalars(select(OfflineConflict)).all()
        assert verify() == []


def test_signing_out_in_one_tab_forgets_the_list_in_the_others(counter):
    """Another counter tab of the browser drops the list it holds: offline it serves no one
    and does not write the list back."""
    context, page, store, cards, (h1, h2), base = counter
    ready_offline(page)
    other = open_counter(context, base)
    expect(state(other)).to_have_attribute("data-list", re.compile(r"\d"))
    page.click("form[data-forget-offline] button")
    page.wait_for_url("**/login")
    context.set_offline(True)
    other.fill("#code", cards[h1])
    other.press("#code", "Enter")
    expect(other.locator("#msg")).to_contain_text("离线名单")
    expect(other.locator("#customer")).to_be_hidden()
    assert page.evaluate(KEPT) == {"list": False, "queue": 0}


# A list kept by the release before offline meal checks: no day, offset, limits or meals.
OLD_LIST = """() => new Promise(resolve => {
  const req = indexedDB.open("village-points-counter");
  req.onsuccess = () => {
    const db = req.result, tx = db.transaction("meta", "readwrite"), st = tx.objectStore("meta");
    const got = st.get("list");
    got.onsuccess = () => {
      const l = got.result;
      delete l.utc_offset; delete l.day;
      l.items.forEach(i => delete i.limit);
      l.households.forEach(h => h.residents.forEach(r => delete r.meals));
      st.put(l, "list");
    };
    tx.oncomplete = () => { db.close(); resolve(true); };
  };
})"""


def test_a_list_kept_by_the_release_before_still_serves_offline(counter):
    context, page, store, cards, (h1, h2), base = counter
    ready_offline(page)
    context.set_offline(True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    assert page.evaluate(OLD_LIST)
    page.reload()
    receipt = redeem(page, cards[h1], ["1"])
    assert not errors
    context.set_offline(False)
    synced(page)
    assert [r.receipt_no for r in books()] == [receipt]


def test_a_meal_whose_answer_was_lost_counts_once_offline(browser, live_server, app, village):
    """Confirmed online, recorded, the answer lost: the counter keeps it and its sync finds it
    recorded already. A list made after it knows of that breakfast; the counter must not count
    it a second time (2 a day: one more is allowed)."""
    with at_the_canteen(browser, live_server, app, village, "0202") as (
        context,
        page,
        card,
        keys,
    ):
        ready_offline(page)
        pick(page, card, [keys["早餐"]])

        def drop(route):
            route.fetch()  # recorded; the answer is lost
            context.set_offline(True)
            route.abort("internetdisconnected")

        context.route("**/api/v1/counter/redemptions", drop)
        confirm(page)
        expect(page.locator("#receipt")).to_be_visible()
        page.press("#code", "Enter")
        context.unroute("**/api/v1/counter/redemptions")
        context.set_offline(False)
        synced(page)
        assert len(books()) == 1
        ready_offline(page)  # a list made after it: one breakfast had
        context.set_offline(True)
        page.reload()
        second = redeem(page, card, [keys["早餐"]])
        context.set_offline(False)
        synced(page)
        assert [r.receipt_no for r in books()] == [None, second]
        assert not db.session.scalars(select(OfflineConflict)).all()
