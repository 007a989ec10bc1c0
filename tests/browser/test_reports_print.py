"""On a phone (360 px) and on A4 paper: the import preview, the report with its charts, the
points certificate and its public verification, the printed notice. Screenshots and PDFs go to
/tmp/issue9-*.png|pdf to be looked at."""

import re

import pytest
from sqlalchemy import select

from app.demo import load_demo
from app.extensions import db
from app.households.models import Household
from app.scoring.models import Meeting, NoticeItem

from ..services.test_import_registers import register_xlsx
from .conftest import sign_in

pytestmark = pytest.mark.browser


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 360


def pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", data))


def print_pdf(page, name: str) -> bytes:
    page.emulate_media(media="print")
    data = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    with open(f"/tmp/issue9-{name}.pdf", "wb") as f:
        f.write(data)
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi, to look at
    page.screenshot(path=f"/tmp/issue9-{name}-print.png", full_page=True)
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 360, "height": 740})
    return data


def test_admin_imports_a_register_on_a_phone_with_the_preview_in_view(app, browser_page, tmp_path):
    load_demo()
    path = tmp_path / "双塘村花名册.xlsx"
    path.write_bytes(register_xlsx())
    page = browser_page
    sign_in(page, "admin", "demo1234")
    page.goto(page.base + "/admin/households/import")
    page.set_input_files("input[type=file]", str(path))
    page.click("button.primary")
    page.wait_for_load_state()
    heading = page.locator("#preview h1")
    assert "预览：新增 4 户" in heading.inner_text()
    assert heading.bounding_box()["y"] < 740  # in view at the top, not below the fold
    assert fits_the_screen(page)
    page.screenshot(path="/tmp/issue9-import-preview.png", full_page=True)
    page.click("#preview button.primary")
    page.wait_for_load_state()
    assert "已导入 4 户" in page.content()
    db.session.rollback()
    assert db.session.scalar(select(Household.contact_phone).where(Household.number == "043")) == (
        "0710-3456789"
    )


def test_report_reads_at_360_px_and_prints(app, browser_page):
    load_demo()
    page = browser_page
    sign_in(page, "admin", "demo1234")
    page.goto(page.base + "/admin/reports?year=2026")
    assert page.locator("svg.chart").count() >= 3
    assert fits_the_screen(page)
    page.screenshot(path="/tmp/issue9-report.png", full_page=True)
    print_pdf(page, "report")


def test_certificate_prints_on_one_a4_page_and_verifies_in_public(app, browser_page, browser):
    load_demo()
    page = browser_page
    sign_in(page, "admin", "demo1234")
    page.goto(page.base + "/admin/certificates")
    page.fill("input[name=number]", "001")
    page.click("button.primary")
    page.wait_for_load_state()
    assert fits_the_screen(page)
    page.screenshot(path="/tmp/issue9-certificate.png", full_page=True)
    assert pdf_pages(print_pdf(page, "certificate")) == 1
    url = page.locator("code.url").inner_text()
    public = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    p2 = public.new_page()
    p2.goto(url)
    assert "真实有效" in p2.content()
    assert p2.evaluate("document.documentElement.scrollWidth") <= 360
    p2.screenshot(path="/tmp/issue9-verify.png", full_page=True)
    public.close()


def test_printed_notice_prints_cleanly(app, browser_page):
    load_demo()
    meeting_id = db.session.scalar(
        select(Meeting.id).join(NoticeItem).where(NoticeItem.status == "notice").limit(1)
    )
    page = browser_page
    sign_in(page, "scorer", "demo1234")
    page.goto(page.base + f"/scoring/meetings/{meeting_id}/notice")
    assert fits_the_screen(page)
    page.screenshot(path="/tmp/issue9-notice.png", full_page=True)
    assert pdf_pages(print_pdf(page, "notice")) == 1
