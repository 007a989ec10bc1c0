"""Every villager page and the counter as their users really hold them (issue 10): a 360 x 740
phone with the text size at 100 % and at 200 % (Chromium's default font size 16 and 32, which is
what a phone's or WeChat's text size does to a page that uses relative units), in 长辈版 and
not, in Chinese and in English. Nothing scrolls sideways, the balance and the pay code stay on
the first screen, every tap target is at least 44 x 44 CSS px (60 x 60 in 长辈版), and axe-core
(vendored under vendor/, pinned, with its licence) finds no violation.

Screenshots go to /tmp/i10-<page>-<font>[-elder]-<lang>.png for a person to look at.
"""

import json
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.demo import load_demo
from app.extensions import db
from app.households.models import Household
from app.scoring.models import NoticeItem
from app.store import codes

from .conftest import ARGS, CHROMIUM

pytestmark = pytest.mark.browser
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
VILLAGER_PAGES = [
    "/me",
    "/me/code",
    "/me/claims/new",
    "/me/claims",
    "/me/objections",
    "/v/shuangtang/notices",
    "/v/shuangtang/notices/{item}",
    "/account/password",
]
# Controls smaller than `min` CSS px either way; a checkbox, radio or file input is tapped
# through its label, so the label is what is measured.
SMALL_TARGETS = """(min) => Array.from(document.querySelectorAll(
    'a[href],button,input:not([type=hidden]),select,textarea,summary')).filter(e => {
  let t = e;
  if (['checkbox', 'radio', 'file'].includes(e.type) && e.closest('label')) t = e.closest('label');
  const r = t.getBoundingClientRect();
  if (!r.width && !r.height) return false;
  return r.width < min - 0.5 || r.height < min - 0.5;
}).map(e => e.outerHTML.slice(0, 80))"""


@contextmanager
def phone(browser, tmp: Path, font: int, lang: str):
    """A Chromium profile whose default font size is `font` (the phone's text size), at 360 x
    740. A persistent context, because the font size is a browser preference; started from the
    session's Playwright."""
    profile = tmp / f"profile-{font}-{lang}"
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Preferences").write_text(
        json.dumps({"webkit": {"webprefs": {"default_font_size": font}}})
    )
    context = browser.browser_type.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        args=ARGS,
        headless=True,
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        bypass_csp=True,  # only to inject axe; the pages' CSP is tested elsewhere
    )
    try:
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        context.close()


def sign_in(page, base: str, username: str, lang: str) -> None:
    if lang == "en":
        page.goto(base + "/lang/en")
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo1234")
    page.click("main button.primary")
    page.wait_for_load_state()


def set_elder(page, base: str, on: bool) -> None:
    page.goto(base + "/me")
    if (page.locator("html.elder").count() > 0) != on:
        page.click(".elder-switch button")
        page.wait_for_load_state()
    assert (page.locator("html.elder").count() > 0) == on


def check(page, name: str, min_target: int) -> None:
    """The page at hand fits the phone, has big enough targets and passes axe-core."""
    page.screenshot(path=f"/tmp/i10-{name}.png")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, (name, width)
    small = page.evaluate(SMALL_TARGETS, min_target)
    assert not small, (name, small)
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        "tags => axe.run(document, {runOnly: tags}).then(r => r.violations.map("
        "v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))",
        AXE_TAGS,
    )
    assert not violations, (name, violations)


def bottom(page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    return box["y"] + box["height"]


@pytest.mark.parametrize("font", [16, 32])
@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
def test_villager_pages_fit_a_phone_at_any_text_size(
    app, browser, live_server, tmp_path, font, elder
):
    load_demo()
    db.session.rollback()
    item = db.session.scalar(select(NoticeItem.id).order_by(NoticeItem.id))
    for lang in ("zh", "en"):
        with phone(browser, tmp_path, font, lang) as page:
            sign_in(page, live_server, "13800000001", lang)
            set_elder(page, live_server, elder)
            for path in VILLAGER_PAGES:
                page.goto(live_server + path.format(item=item))
                tag = "me" if path == "/me" else path.strip("/").replace("/", "_").split("_1")[0]
                name = f"{tag}-{font}{'-elder' if elder else ''}-{lang}"
                if path == "/me":
                    # The balance on the first screen, its digits at least 30 px in 长辈版.
                    assert bottom(page, "#balance") <= 740, name
                    size = page.evaluate("parseFloat(getComputedStyle(balance).fontSize)")
                    assert size >= 30
                    body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
                    assert body >= (18 if elder else font)
                if path == "/me/code":
                    assert bottom(page, "#qr") <= 740, name
                check(page, name, 60 if elder else 44)


@pytest.mark.parametrize("font", [16, 32])
def test_the_counter_fits_a_phone_at_any_text_size(app, browser, live_server, tmp_path, font):
    load_demo()
    db.session.rollback()
    household = db.session.scalar(select(Household).where(Household.number == "001"))
    real = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "live-test-secret"  # the live server's
    card = codes.card_token(household.public_id, household.card_version)
    app.config["SECRET_KEY"] = real
    for lang in ("zh", "en"):
        with phone(browser, tmp_path, font, lang) as page:
            sign_in(page, live_server, "shop", lang)
            page.goto(live_server + "/counter")
            page.wait_for_selector("#code")
            check(page, f"counter-{font}-{lang}", 44)
            # With a household and its items open.
            page.fill("#code", card)
            page.keyboard.press("Enter")
            page.wait_for_selector("#customer:not([hidden])")
            assert page.locator("#code").bounding_box()["width"] > 150  # room for the code
            check(page, f"counter-customer-{font}-{lang}", 44)


STAFF_PAGES = [
    "/admin/households/",
    "/admin/households/{household}",
    "/admin/households/new",
    "/admin/households/import",
    "/scoring/",
    "/scoring/proposals",
    "/scoring/proposals/batch",
    "/scoring/meetings",
    "/scoring/meetings/{open_meeting}",
    "/scoring/meetings/{closed_meeting}/minutes",
    "/scoring/objections",
    "/scoring/rules",
    "/scoring/adjust",
    "/admin/users",
    "/admin/settings",
    "/admin/store",
    "/admin/store/venues/{venue}",
    "/admin/cards",
    "/admin/store/redemptions",
]


def test_staff_pages_pass_axe_with_44px_targets(app, browser, live_server, tmp_path):
    from app.scoring.models import Meeting
    from app.store.models import Venue

    load_demo()
    db.session.rollback()
    ids = {
        "household": db.session.scalar(select(Household.id).order_by(Household.id)),
        "open_meeting": db.session.scalar(select(Meeting.id).where(Meeting.status == "open")),
        "closed_meeting": db.session.scalar(select(Meeting.id).where(Meeting.status == "closed")),
        "venue": db.session.scalar(select(Venue.id).order_by(Venue.id)),
    }
    for lang in ("zh", "en"):
        with phone(browser, tmp_path, 16, lang) as page:
            sign_in(page, live_server, "admin", lang)
            for path in STAFF_PAGES:
                resp = page.goto(live_server + path.format(**ids))
                assert resp.status == 200, path
                name = "staff-" + path.strip("/").replace("/", "_").split("{")[0] + "-" + lang
                check(page, re.sub(r"_\d+", "", name), 44)


def in_view(page, selector: str) -> bool:
    return page.evaluate(
        "s => { const r = document.querySelector(s).getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= innerHeight; }",
        selector,
    )


def test_refusals_are_shown_where_the_eye_is(app, browser, live_server, tmp_path):
    """The first error of a refused form is scrolled into view and focused; on the counter the
    message comes into view while the code box keeps the keyboard."""
    from app.scoring.models import Meeting, Proposal

    load_demo()
    db.session.rollback()
    meeting = db.session.scalar(select(Meeting).where(Meeting.status == "open"))
    last = db.session.scalars(
        select(Proposal.id).where(Proposal.meeting_id == meeting.id).order_by(Proposal.id)
    ).all()[-1]
    household, card = None, None
    for h in db.session.scalars(select(Household).order_by(Household.id)):
        if len([r for r in h.residents if r.status == "active"]) > 1:
            household = h
            break
    real = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "live-test-secret"
    card = codes.card_token(household.public_id, household.card_version)
    app.config["SECRET_KEY"] = real
    with phone(browser, tmp_path, 16, "zh") as page:
        # A villager's untouched claim: the rule list is focused, its message beside it.
        sign_in(page, live_server, "13800000001", "zh")
        page.goto(live_server + "/me/claims/new")
        page.click("main button.primary")
        page.wait_for_load_state()
        assert page.evaluate("document.activeElement.id") == "rule_id"
        assert in_view(page, "#rule_id-error")
        page.screenshot(path="/tmp/i10-error-claim.png")
        page.goto(live_server + "/logout")
    with phone(browser, tmp_path / "m", 16, "zh") as page:
        # A rejection without a reason on the meeting's last agenda item.
        sign_in(page, live_server, "scorer", "zh")
        page.goto(live_server + f"/scoring/meetings/{meeting.id}")
        item = f"#p{last}"
        page.click(f"{item} input[value=reject]")
        page.click(f"{item} button.primary")
        page.wait_for_load_state()
        assert page.evaluate("document.activeElement.getAttribute('role')") == "alert"
        assert page.evaluate(f"document.activeElement.closest('#p{last}') !== null")
        assert in_view(page, "[role=alert]")
        page.screenshot(path="/tmp/i10-error-meeting.png")
    with phone(browser, tmp_path / "i", 16, "zh") as page:
        # The import: the rows that are wrong, in view (below a long list of columns).
        sign_in(page, live_server, "admin", "zh")
        page.goto(live_server + "/admin/households/import")
        bad = "户号,户主\n,张三\n901,\n".encode()
        page.set_input_files(
            "input[type=file]", {"name": "h.csv", "mimeType": "text/csv", "buffer": bad}
        )
        page.click("main button.primary")
        page.wait_for_load_state()
        assert page.evaluate("document.activeElement.getAttribute('role')") == "alert"
        assert in_view(page, "#preview [role=alert]")
        page.screenshot(path="/tmp/i10-error-import.png")
    with phone(browser, tmp_path / "c", 16, "zh") as page:
        # The counter: confirm before choosing who takes the goods.
        sign_in(page, live_server, "shop", "zh")
        page.wait_for_selector("#code")
        page.fill("#code", card)
        page.keyboard.press("Enter")
        page.wait_for_selector("#customer:not([hidden])")
        page.locator(".qbtn").nth(1).click()
        page.click("#confirm")
        expect(page.locator("#msg")).to_be_visible()
        assert in_view(page, "#msg")
        page.screenshot(path="/tmp/i10-error-counter.png")


def test_the_elder_version_is_offered_once_at_first_sign_in(app, browser, live_server, tmp_path):
    load_demo()
    db.session.commit()
    with phone(browser, tmp_path, 16, "zh") as page:
        sign_in(page, live_server, "13800000001", "zh")
        page.goto(live_server + "/me")
        offer = page.locator(".offer")
        expect(offer).to_be_visible()
        assert bottom(page, "#balance") <= 740  # the offer comes after the balance
        page.screenshot(path="/tmp/i10-elder-offer.png")
        offer.locator("button.primary").click()
        page.wait_for_load_state()
        assert page.locator("html.elder").count() == 1
        assert page.locator(".offer").count() == 0
        page.screenshot(path="/tmp/i10-elder-on.png")
        page.reload()
        assert page.locator(".offer").count() == 0 and page.locator("html.elder").count() == 1
