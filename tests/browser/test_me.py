import pytest
from sqlalchemy import select

from app.demo import load_demo
from app.extensions import db
from app.households.models import Household

from .conftest import sign_in

pytestmark = pytest.mark.browser


def test_demo_villager_reads_the_balance_on_a_phone(app, browser_page):
    load_demo()
    db.session.rollback()
    balance = db.session.scalar(select(Household.balance).where(Household.number == "001"))
    page = browser_page
    sign_in(page, "13800000001", "demo1234")
    requests_seen = []
    page.on("request", lambda r: requests_seen.append(r.url))
    page.goto(page.base + "/me")
    assert page.locator("#balance").inner_text().strip() == str(balance)
    assert page.locator(".entries li").count() > 0
    # Budget: a villager's page loads nothing from other sites, in at most 5 requests.
    assert all(u.startswith(page.base) or u.startswith("data:") for u in requests_seen)
    assert len(requests_seen) <= 5, requests_seen
    # Readable at 360 px: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path="/tmp/screen-me.png", full_page=True)


def test_villager_page_weighs_under_30_kb(app, client):
    load_demo()
    from tests.conftest import csrf_token

    client.post(
        "/login",
        data={"username": "13800000001", "password": "demo1234", "csrf_token": csrf_token(client)},
    )
    html = client.get("/me", headers={"Accept-Encoding": "identity"}).data
    css = client.get("/static/app.css").data
    assert len(html) + len(css) < 30 * 1024, (len(html), len(css))
