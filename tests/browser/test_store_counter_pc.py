"""The counter as clerks really use it (issue 10): a 1366 x 768 counter PC with a USB scanner
(some end a code with Tab), a camera on a browser without BarcodeDetector (desktop Chromium,
WeChat's browser: our own jsQR decodes), a new scan while a basket is open, keys typed before
the page is ready, and `hidden` that always hides."""

import contextlib
import io
import os
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from app.demo import load_demo
from app.extensions import db
from app.households.models import Household
from app.store import codes, qr
from app.store.models import Item

from .conftest import ARGS, CHROMIUM, sign_in

pytestmark = pytest.mark.browser
PC = {"width": 1366, "height": 768}


def card_of(app, number: str) -> tuple[Household, str]:
    """A demo household and its card's token, signed with the live server's secret."""
    household = db.session.scalar(select(Household).where(Household.number == number))
    real = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "live-test-secret"
    try:
        return household, codes.card_token(household.public_id, household.card_version)
    finally:
        app.config["SECRET_KEY"] = real


@pytest.fixture
def demo(app):
    load_demo()
    db.session.rollback()


@pytest.fixture
def pc(browser, live_server):
    context = browser.new_context(viewport=PC, locale="zh-CN")
    page = context.new_page()
    page.base = live_server
    yield page
    context.close()


def visible_items(page) -> int:
    return page.evaluate(
        "Array.from(document.querySelectorAll('#items li')).filter(l => {"
        "const r = l.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight"
        " && r.right <= innerWidth}).length"
    )


def test_the_counter_pc_shows_every_item_of_a_15_item_venue(app, demo, pc):
    household, card = card_of(app, "002")
    venue_id = db.session.scalar(select(Item.venue_id).where(Item.name == "挂面"))
    active = db.session.scalars(select(Item).where(Item.venue_id == venue_id)).all()
    assert len(active) >= 15
    sign_in(pc, "shop", "demo1234")
    pc.wait_for_selector("#code")
    pc.keyboard.type(card + "\n", delay=1)
    pc.wait_for_selector("#customer:not([hidden])")
    count = pc.locator("#items li").count()
    assert count >= 15
    assert visible_items(pc) == count
    assert pc.locator("#confirm").is_visible()
    assert pc.evaluate("document.documentElement.scrollWidth") <= PC["width"]
    pc.screenshot(path="/tmp/i10-counter-pc.png")


def test_a_new_scan_with_a_basket_open_asks_first(app, demo, pc):
    first, card = card_of(app, "002")
    other, other_card = card_of(app, "003")
    sign_in(pc, "shop", "demo1234")
    pc.wait_for_selector("#code")
    pc.keyboard.type(card + "\n", delay=1)
    pc.wait_for_selector("#customer:not([hidden])")
    pc.keyboard.type("1\n")
    pc.keyboard.type(other_card + "\n", delay=1)
    expect(pc.locator("#replace")).to_be_visible()
    assert first.number in pc.locator("#replace-text").inner_text()
    assert pc.locator("#h-number").inner_text() == first.number  # nothing replaced yet
    pc.screenshot(path="/tmp/i10-counter-ask.png")
    pc.keyboard.press("Escape")  # keep the basket
    expect(pc.locator("#replace")).to_be_hidden()
    assert pc.locator("#h-number").inner_text() == first.number
    assert pc.locator("#total").inner_text() != "0"
    pc.keyboard.type(other_card + "\n", delay=1)
    expect(pc.locator("#replace")).to_be_visible()
    pc.keyboard.type(other_card + "\n", delay=1)  # the same code again: serve it
    expect(pc.locator("#h-number")).to_have_text(other.number)
    assert pc.locator("#total").inner_text() == "0"


def test_a_scanner_that_ends_with_tab_works(app, demo, pc):
    household, card = card_of(app, "002")
    sign_in(pc, "shop", "demo1234")
    pc.wait_for_selector("#code")
    pc.keyboard.type(f"{pc.base}/q/{card}", delay=1)
    pc.keyboard.press("Tab")
    expect(pc.locator("#h-number")).to_have_text(household.number)
    assert pc.evaluate("document.activeElement.id") == "code"


def test_a_code_typed_before_the_page_is_ready_is_kept(app, demo, pc):
    household, card = card_of(app, "002")
    sign_in(pc, "shop", "demo1234")
    # The counter's script arrives late (a slow network): the scanner has typed and pressed
    # Enter before it runs. The code goes to the server with the form and is looked up.
    held = []
    pc.route("**/static/store-counter*.js", lambda route: held.append(route))  # answered later
    pc.goto(pc.base + "/counter", wait_until="commit")
    pc.wait_for_selector("#code")
    pc.keyboard.type(card + "\n", delay=1)
    pc.wait_for_url("**/counter?code=*", wait_until="commit")
    pc.unroute("**/static/store-counter*.js")
    for route in held:
        with contextlib.suppress(Exception):  # the first page's request went with that page
            route.continue_()
    expect(pc.locator("#h-number")).to_have_text(household.number, timeout=15000)


def test_void_hides_its_button_and_hidden_is_honoured(app, demo, pc):
    household, card = card_of(app, "002")
    sign_in(pc, "shop", "demo1234")
    pc.wait_for_selector("#code")
    # Every element with the hidden attribute is really hidden, whatever its style says.
    assert pc.evaluate(
        "Array.from(document.querySelectorAll('[hidden]')).every("
        "e => getComputedStyle(e).display === 'none')"
    )
    pc.keyboard.type(card + "\n", delay=1)
    pc.wait_for_selector("#customer:not([hidden])")
    if pc.locator("#residents:not([hidden])").count():
        pc.keyboard.type("a\n")
    pc.keyboard.type("3\n")
    pc.keyboard.press("Enter")
    pc.wait_for_selector("#receipt:not([hidden])")
    pc.on("dialog", lambda d: d.accept())
    pc.click("#void")
    expect(pc.locator("#r-void-note")).to_be_visible()
    expect(pc.locator("#void")).to_be_hidden()


def y4m_of(png: bytes, path: Path, frames: int = 10) -> None:
    """A still .y4m video of an image, as Chromium's fake camera reads it (4:2:0)."""
    img = Image.open(io.BytesIO(png)).convert("L")
    w, h = 640, 480
    frame = Image.new("L", (w, h), 255)
    img.thumbnail((400, 400))
    frame.paste(img, ((w - img.width) // 2, (h - img.height) // 2))
    y = frame.tobytes()
    uv = bytes([128]) * (w // 2 * h // 2)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + y + uv + uv)


def test_the_camera_reads_a_card_without_barcode_detector(
    app, demo, browser, live_server, tmp_path
):
    household, card = card_of(app, "002")
    video = tmp_path / "card.y4m"
    y4m_of(qr.png(f"{live_server}/q/{card}"), video)
    args = [
        *ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    # A browser of its own (with a fake camera), from the session's Playwright.
    camera_browser = browser.browser_type.launch(executable_path=CHROMIUM, args=args, headless=True)
    try:
        context = camera_browser.new_context(viewport=PC, locale="zh-CN")
        context.grant_permissions(["camera"], origin=live_server)
        page = context.new_page()
        # Like WeChat's browser: no BarcodeDetector, so our own decoder must do it.
        page.add_init_script("delete window.BarcodeDetector")
        page.base = live_server
        sign_in(page, "shop", "demo1234")
        page.wait_for_selector("#code")
        expect(page.locator("#camera")).to_be_visible()
        page.click("#camera")
        expect(page.locator("#h-number")).to_have_text(household.number, timeout=20000)
        assert page.evaluate("typeof window.jsQR") == "function"
        page.screenshot(path="/tmp/i10-counter-camera.png")
    finally:
        camera_browser.close()


def test_no_camera_says_so(app, demo, pc):
    sign_in(pc, "shop", "demo1234")
    pc.wait_for_selector("#code")
    pc.click("#camera")  # headless, no camera device and no permission
    expect(pc.locator("#msg")).to_be_visible()
    assert "摄像头" in pc.locator("#msg").inner_text()


def test_the_decoder_is_ours_and_keeps_its_licence():
    root = Path(__file__).resolve().parents[2]
    vendor = root / "app" / "static" / "vendor" / "jsqr"
    assert "Apache License" in (vendor / "LICENSE").read_text()
    assert '"version": "1.4.0"' in (vendor / "package.json").read_text()
    assert os.path.getsize(vendor / "jsQR.js") > 100_000
