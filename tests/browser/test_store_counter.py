"""The counter at a phone viewport, driven from the keyboard as a USB scanner does; the
villager's pay code refreshes by itself."""

import io
from contextlib import contextmanager

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from app.auth.models import User
from app.demo import load_demo
from app.extensions import db
from app.households.models import Household, Resident
from app.ledger import services as ledger
from app.store import codes
from app.store.models import Item, PayCode, Redemption

from .conftest import sign_in

pytestmark = pytest.mark.browser
LIVE_SECRET = "live-test-secret"  # the live_server fixture's


@contextmanager
def live_secret(app):
    real = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = LIVE_SECRET
    try:
        yield
    finally:
        app.config["SECRET_KEY"] = real


def demo_household():
    load_demo()
    db.session.rollback()
    villager = db.session.scalar(select(User).where(User.username == "13800000001"))
    resident = db.session.get(Resident, villager.resident_id)
    ledger.award(resident.village_id, resident.household_id, 200, "测试：兑换前加分", None)
    db.session.rollback()
    return resident


def pay_token_of(resident) -> str:
    """A pay code issued to the resident (as the phone would get it), as its QR's token."""
    from app.store import services

    number = services.issue_pay_code(resident.village_id, resident.id).number
    db.session.commit()
    return codes.pay_token(number)


def focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_clerk_redeems_a_pay_code_typed_by_a_usb_scanner(app, browser_page):
    resident = demo_household()
    household = db.session.get(Household, resident.household_id)
    balance = household.balance
    noodles, salt = db.session.scalars(
        select(Item).where(Item.name.in_(["挂面", "食盐"])).order_by(Item.id)
    ).all()
    with live_secret(app):
        code = pay_token_of(resident)

    page = browser_page
    sign_in(page, "shop", "demo1234")
    assert page.url.endswith("/counter")
    page.wait_for_selector("#code")
    assert focused_id(page) == "code"
    # A USB scanner types the QR's URL quickly and presses Enter.
    page.keyboard.type(f"{page.base}/q/{code}", delay=2)
    page.keyboard.press("Enter")
    page.wait_for_selector("#customer:not([hidden])")
    assert page.locator("#h-number").inner_text() == household.number
    assert page.locator("#h-balance").inner_text() == str(balance)
    assert page.locator("#resident-name").inner_text() == resident.name
    page.screenshot(path="/tmp/screen-counter-customer.png", full_page=True)

    # Item numbers from the keyboard: 挂面 is item 3, 食盐 item 4 in the demo list.
    keys = {it.id: n for n, it in enumerate(_items(), 1)}
    page.keyboard.type(f"{keys[noodles.id]}\n")
    page.keyboard.type(f"{keys[salt.id]}*2\n")
    total = noodles.points + 2 * salt.points
    assert page.locator("#total").inner_text() == str(total)
    assert focused_id(page) == "code"
    page.keyboard.press("Enter")  # an empty line confirms
    page.wait_for_selector("#receipt:not([hidden])")
    assert page.locator("#r-balance").inner_text() == str(balance - total)
    assert page.locator("#r-total").inner_text() == str(total)
    assert focused_id(page) == "code"
    page.screenshot(path="/tmp/screen-counter-receipt.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    db.session.rollback()
    assert db.session.get(Household, household.id).balance == balance - total
    red = db.session.scalar(select(Redemption))
    assert red.resident_id == resident.id and red.source == "paycode"

    # Enter again: the next customer; the same pay code is refused now.
    page.keyboard.press("Enter")
    page.wait_for_selector("#receipt", state="hidden")
    page.keyboard.type(code + "\n", delay=2)
    page.wait_for_selector("#msg:not([hidden])")
    assert "无效" in page.locator("#msg").inner_text()  # used: like any code that is not valid
    page.screenshot(path="/tmp/screen-counter-used.png", full_page=True)


def _items():
    from flask import current_app  # noqa: F401 - the app context is the test's

    shop = db.session.scalar(select(User).where(User.username == "shop"))
    return db.session.scalars(
        select(Item)
        .where(Item.venue_id == shop.venue_id, Item.active.is_(True))
        .order_by(Item.slot.is_not(None), Item.id)
    ).all()


def test_clerk_picks_the_member_for_a_card_and_voids(app, browser_page):
    resident = demo_household()
    household = db.session.get(Household, resident.household_id)
    members = [r for r in household.residents if r.status == "active"]
    balance = household.balance
    with live_secret(app):
        card = codes.card_token(household.public_id, household.card_version)
    page = browser_page
    sign_in(page, "shop", "demo1234")
    page.wait_for_selector("#code")
    page.keyboard.type(card + "\n", delay=2)
    page.wait_for_selector("#customer:not([hidden])")
    if len(members) > 1:
        page.keyboard.type("b\n")  # the second member takes the goods
        assert page.locator("#resident-name").inner_text() == members[1].name
    page.keyboard.type("1\n")
    page.keyboard.press("Enter")
    page.wait_for_selector("#receipt:not([hidden])")
    page.once("dialog", lambda d: d.accept())
    page.click("#void")
    page.wait_for_selector("#r-void-note:not([hidden])")
    assert str(balance) in page.locator("#r-void-note").inner_text()
    page.screenshot(path="/tmp/screen-counter-void.png", full_page=True)
    db.session.rollback()
    assert db.session.get(Household, household.id).balance == balance


def test_villagers_pay_code_refreshes_by_itself(app, browser_page):
    resident = demo_household()
    page = browser_page
    sign_in(page, "13800000001", "demo1234")
    page.goto(page.base + "/me/code")
    first = page.locator("#number").inner_text()
    page.screenshot(path="/tmp/screen-paycode.png", full_page=True)
    # The QR on the screen is the /q/ URL of this resident's pay code.
    shot = Image.open(io.BytesIO(page.locator("#qr").screenshot()))
    [found] = zxingcpp.read_barcodes(shot)
    assert found.text.startswith(page.base + "/q/")
    with live_secret(app):
        code = codes.parse(found.text)
        assert codes.parse(first).number == code.number
    db.session.rollback()
    stored = db.session.scalar(select(PayCode).where(PayCode.number == code.number))
    assert stored.resident_id == resident.id
    # A new code about every 20 s, without reloading the page.
    # (expect() polls without eval, which the page's CSP forbids)
    expect(page.locator("#number")).not_to_have_text(
        first, timeout=(codes.REFRESH_SECONDS + 5) * 1000
    )
    second = page.locator("#number").inner_text()
    with live_secret(app):
        assert codes.parse(second).number != code.number
    shot = Image.open(io.BytesIO(page.locator("#qr").screenshot()))
    [found2] = zxingcpp.read_barcodes(shot)
    assert found2.text != found.text
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_admin_prints_household_cards_on_a4(app, browser_page):
    load_demo()
    page = browser_page
    sign_in(page, "admin", "demo1234")
    page.goto(page.base + "/admin/cards?group=一组")
    cards = page.locator(".hh-card")
    assert cards.count() == 7
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    page.emulate_media(media="print")
    page.screenshot(path="/tmp/screen-cards-print.png", full_page=True)
    assert page.locator(".screen-only").first.is_hidden()
    # Each printed card's QR reads back as this install's /q/ URL of that household's card.
    first = cards.first
    shot = Image.open(io.BytesIO(first.locator(".hh-qr").screenshot()))
    [found] = zxingcpp.read_barcodes(shot)
    number = first.locator(".hh-number").inner_text()
    with live_secret(app):
        code = codes.parse(found.text)
    db.session.rollback()
    household = db.session.scalar(select(Household).where(Household.number == number))
    assert code.household_public_id == household.public_id
    assert found.text.startswith(page.base + "/q/")
    # QR at least 40 mm wide on paper (96 px per inch).
    width_mm = first.locator(".hh-qr").bounding_box()["width"] / 96 * 25.4
    assert width_mm >= 40, width_mm


def test_clerk_sees_low_stock_on_the_venue_page(app, browser_page):
    load_demo()
    page = browser_page
    sign_in(page, "shop", "demo1234")
    page.goto(page.base + "/counter/stock")
    assert "库存不足" in page.locator(".banner").inner_text()  # 垃圾袋: 4 left
    assert "垃圾袋" in page.locator(".banner").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path="/tmp/screen-venue.png", full_page=True)


def test_clerk_uploads_a_photo_of_a_code_in_english(app, browser_page, tmp_path):
    from app.store import qr

    resident = demo_household()
    household = db.session.get(Household, resident.household_id)
    page = browser_page
    sign_in(page, "canteen", "demo1234")
    page.goto(page.base + "/lang/en?next=/counter")
    page.wait_for_selector("#code")
    with live_secret(app):
        url = f"{page.base}/q/{pay_token_of(resident)}"
    photo = tmp_path / "code.png"
    photo.write_bytes(qr.png(url))
    page.set_input_files("#photo", str(photo))
    page.wait_for_selector("#customer:not([hidden])")
    assert page.locator("#h-number").inner_text() == household.number
    assert "Lunch" in page.locator("#items").inner_text()  # the canteen's meals, in English
    page.screenshot(path="/tmp/screen-counter-canteen-en.png", full_page=True)
