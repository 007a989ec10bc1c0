"""A scorer records a proposal on a phone; a villager reads the notice board and objects."""

import io

import pytest
from PIL import Image
from sqlalchemy import select

from app.demo import load_demo
from app.extensions import db
from app.households.models import Household
from app.scoring.models import NoticeItem, Objection, Proposal

from .conftest import sign_in

pytestmark = pytest.mark.browser


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 360


def test_scorer_records_a_proposal_with_a_photo_on_a_phone(app, browser_page, tmp_path):
    load_demo()
    photo = tmp_path / "IMG_2041.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (1200, 900), (90, 140, 60)).save(buf, "JPEG")
    photo.write_bytes(buf.getvalue())
    page = browser_page
    sign_in(page, "scorer", "demo1234")
    assert page.url.endswith("/scoring/")  # the scorer's home
    page.screenshot(path="/tmp/scoring-1-home.png", full_page=True)
    page.click("text=记录积分申报")
    page.fill("input[name=q]", "007")
    page.click("button:has-text('查找')")
    page.screenshot(path="/tmp/scoring-2-find.png", full_page=True)
    page.click(".picks a")
    page.select_option("select[name=rule_id]", label="门前三包，庭院整洁 (+5)")
    page.fill("textarea[name=note]", "院子收拾得干净整齐")
    page.set_input_files("input[name=photo]", str(photo))
    page.screenshot(path="/tmp/scoring-3-form.png", full_page=True)
    assert fits_the_screen(page)
    page.click("button:has-text('记录')")
    page.wait_for_load_state()
    assert "申报已记录" in page.inner_text("main")
    assert page.locator("img.evidence").evaluate("i => i.naturalWidth") > 0
    assert fits_the_screen(page)
    page.screenshot(path="/tmp/scoring-4-recorded.png", full_page=True)
    db.session.rollback()
    p = db.session.scalars(select(Proposal).order_by(Proposal.id.desc())).first()
    h = db.session.scalar(select(Household).where(Household.number == "007"))
    assert [ph.household_id for ph in p.households] == [h.id]
    assert p.note == "院子收拾得干净整齐" and p.photo_id


def test_villager_reads_the_notice_board_and_objects(app, browser_page):
    load_demo()
    page = browser_page
    seen = []
    page.on("request", lambda r: seen.append(r.url))
    page.goto(page.base + "/v/shuangtang/notices")  # no login
    assert "积分公示" in page.inner_text("h1")
    assert page.locator(".notice-list li").count() == 12
    assert all(u.startswith(page.base) or u.startswith("data:") for u in seen)
    assert fits_the_screen(page)
    page.screenshot(path="/tmp/notices-1-public.png", full_page=True)

    # Check a chain head written down from the board's own table.
    row = page.locator(".chain tbody tr").nth(1)
    count = row.locator("td").nth(1).inner_text().strip()
    code = row.locator("code").inner_text().strip()
    page.fill("input[name=head]", f"{count}:{code}")
    page.click("button:has-text('核对')")
    assert "此前的记录没有被改动" in page.inner_text("#check-result")
    page.screenshot(path="/tmp/notices-2-check.png", full_page=True)

    sign_in(page, "13800000001", "demo1234")
    page.goto(page.base + "/v/shuangtang/notices")
    item = page.locator(".notice-list li", has_text="023")
    item.locator("a:has-text('提出异议')").click()
    page.fill("textarea[name=reason]", "023户已经整改，门前已清理干净")
    page.screenshot(path="/tmp/notices-3-object.png", full_page=True)
    page.click("button:has-text('提交异议')")
    page.wait_for_load_state()
    assert "异议已提交" in page.inner_text("main")
    assert "等待答复" in page.inner_text("main")
    assert fits_the_screen(page)
    page.screenshot(path="/tmp/notices-4-mine.png", full_page=True)
    db.session.rollback()
    item_id = db.session.scalar(
        select(NoticeItem.id)
        .join(Household, Household.id == NoticeItem.household_id)
        .where(Household.number == "023", NoticeItem.status == "notice")
    )
    assert db.session.scalar(select(Objection).where(Objection.item_id == item_id))


def test_scorer_runs_the_meeting_on_a_phone(app, browser_page):
    load_demo()
    page = browser_page
    sign_in(page, "scorer", "demo1234")
    page.click(".card a:has-text('十二月道德文明评议会')")
    items = page.locator(".agenda-item")
    n = items.count()
    assert n >= 3
    for i in range(n):
        item = page.locator(".agenda-item").nth(i)
        if "聚众赌博" in item.inner_text():
            item.locator("input[value=reject]").check()
            item.locator("input[name$=reason]").fill("派出所未确认，证据不足")
        else:
            item.locator("input[value=approve]").check()
        item.locator("button:has-text('作出决定')").click()
        page.wait_for_load_state()
        assert "决定已记录" in page.inner_text("main")
    page.screenshot(path="/tmp/meeting-1-decided.png", full_page=True)
    page.click("button:has-text('结束评议会')")
    page.wait_for_load_state()
    assert "会议纪要" in page.inner_text("h1")
    assert "派出所未确认" in page.inner_text("main")
    assert fits_the_screen(page)
    page.screenshot(path="/tmp/meeting-2-minutes.png", full_page=True)
    page.goto(page.base + "/v/shuangtang/notices")
    assert "参与防汛抗旱值守" in page.inner_text("main")
