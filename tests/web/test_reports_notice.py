"""/scoring/meetings/<id>/notice: the printable notice of a meeting's approved items."""

import pytest
from sqlalchemy import select

from app.demo import load_demo
from app.extensions import db
from app.scoring.models import Meeting, NoticeItem
from app.villages.models import Village

from .. import factories
from ..conftest import csrf_token
from .helpers import text_of


@pytest.fixture
def demo(app, client):
    load_demo()
    resp = client.post(
        "/login",
        data={"username": "scorer", "password": "demo1234", "csrf_token": csrf_token(client)},
    )
    assert resp.status_code == 302
    return db.session.scalar(select(Village).where(Village.code == "shuangtang"))


def under_notice() -> Meeting:
    return db.session.scalar(
        select(Meeting).join(NoticeItem).where(NoticeItem.status == "notice").limit(1)
    )


def test_the_notice_lists_the_items_with_a_qr_and_the_chain_head(client, demo):
    m = under_notice()
    items = db.session.scalars(select(NoticeItem).where(NoticeItem.meeting_id == m.id)).all()
    html = text_of(client.get(f"/scoring/meetings/{m.id}/notice"))
    for i in items:
        assert i.rule_title in html and f"{i.points:+d}" in html
        assert i.household.head_name in html
    assert '<svg class="qr"' in html and "/v/shuangtang/notices" in html
    assert f"{demo.ledger_seq}:{demo.ledger_head[:12]}" in html
    assert "异议" in html


def test_names_follow_the_village_privacy_setting(client, demo):
    m = under_notice()
    demo.notice_show_names = False
    db.session.commit()
    item = db.session.scalar(select(NoticeItem).where(NoticeItem.meeting_id == m.id).limit(1))
    html = text_of(client.get(f"/scoring/meetings/{m.id}/notice"))
    assert item.household.number in html and item.household.head_name not in html


def test_another_villages_meeting_is_not_found(client, demo):
    m = under_notice()
    other = factories.village("xiwan", "西湾村")
    user = factories.user(other, "village_admin")
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    client.post(
        "/login",
        data={
            "username": user.username,
            "password": factories.PASSWORD,
            "csrf_token": csrf_token(client),
        },
    )
    assert client.get(f"/scoring/meetings/{m.id}/notice").status_code == 404


@pytest.mark.parametrize("role", ["clerk", "villager"])
def test_the_notice_is_for_staff(client, login_as, role):
    login_as(role)
    assert client.get("/scoring/meetings/1/notice").status_code == 403
