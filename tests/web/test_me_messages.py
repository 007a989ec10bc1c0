# ruff: noqa: F811 - `scene` is the fixture of test_scoring, taken by name
"""/me explains each line (the proposal's note and photo, the meeting, the way to object while
an item is under notice); the messages list (消息) with its unread count; a claim starts with no
rule chosen (issue 10, item 5)."""

import re

from sqlalchemy import select

from app.extensions import db
from app.ledger import services as ledger
from app.scoring import services
from app.scoring.models import NoticeItem, Proposal

from .helpers import count, fresh, post, text_of
from .test_scoring import scene, sign_in  # noqa: F401 - the fixture, used by name


def decide_and_close(village, scene, note_reason="半天"):
    services.decide(
        village.id,
        scene["m"],
        scene["p"],
        outcome="approve",
        points=8,
        reason=note_reason,
        actor_id=None,
    )
    services.close_meeting(village.id, scene["m"], None)
    return db.session.scalar(select(NoticeItem).where(NoticeItem.meeting_id == scene["m"]))


def test_me_shows_an_item_under_notice_with_its_note_photo_meeting_and_a_way_to_object(
    client, scene, village
):
    db.session.get(Proposal, scene["p"]).note = "打扫了村口"
    db.session.commit()
    item = decide_and_close(village, scene)
    sign_in(client, scene["owner"])
    page = text_of(client.get("/me"))
    notice = page.split('id="under-notice"', 1)[1].split("</section>", 1)[0]
    assert "公示中" in page and "清洁日" in notice and "+8" in notice
    assert "打扫了村口" in notice and "评议会理由：半天" in notice and "五月" in notice
    assert f"/scoring/proposals/{scene['p']}/photo" in notice
    assert f"/v/{scene['code']}/notices/{item.id}#object" in notice
    # Once posted, the history line still explains itself.
    from datetime import timedelta

    from app.database import utcnow

    services.post_due(now=utcnow() + timedelta(days=60))
    page = text_of(client.get("/me"))
    assert 'id="under-notice"' not in page
    history = page.split("积分流水", 1)[1]
    assert "打扫了村口" in history and "五月" in history


def test_messages_count_unread_and_opening_the_list_reads_them(client, scene, village):
    sign_in(client, scene["owner"])
    client.get("/me/messages")  # nothing new after this
    assert "条新消息" not in text_of(client.get("/me"))
    household = scene["h"]
    ledger.award(village.id, household, 5, "帮助邻居", None)
    db.session.commit()
    page = text_of(client.get("/me"))
    assert re.search(r"1 条新消息", page), page
    messages = text_of(client.get("/me/messages"))
    assert "帮助邻居" in messages and "新" in messages
    assert "条新消息" not in text_of(client.get("/me"))


def test_a_decided_claim_and_an_answered_objection_are_messages(client, scene, village):
    from app.auth.models import User

    objector = db.session.scalar(select(User).where(User.username == scene["objector"]))
    sign_in(client, scene["objector"])
    client.get("/me/messages")
    services.resolve_objection(
        village.id, scene["o"], uphold=False, resolution="核实无误", actor_id=None
    )
    db.session.commit()
    assert "1 条新消息" in text_of(client.get("/me"))
    page = text_of(client.get("/me/messages"))
    assert "异议未被采纳" in page and "核实无误" in page
    assert objector.id


def test_messages_are_the_villagers_own(client, login_as, scene, village):
    ledger.award(village.id, scene["h2"], 7, "别户的加分", None)
    db.session.commit()
    sign_in(client, scene["owner"])
    assert "别户的加分" not in text_of(client.get("/me/messages"))
    for role in ("clerk", "scorer", "village_admin"):
        login_as(role)
        assert client.get("/me/messages").status_code == 403


def test_a_claim_starts_with_no_rule_and_an_untouched_submit_is_refused(client, scene):
    sign_in(client, scene["owner"])
    form = text_of(client.get("/me/claims/new"))
    select_html = form.split('name="rule_id"', 1)[1].split("</select>", 1)[0]
    assert re.search(r'<option selected value="">', select_html)
    assert select_html.count("selected") == 1
    before = count(Proposal)
    resp = post(client, "/me/claims/new", {"rule_id": "", "occurred_on": "2026-01-01"})
    assert resp.status_code == 422 and "请选择积分细则" in text_of(resp)
    assert 'aria-invalid="true"' in text_of(resp)
    fresh()
    assert count(Proposal) == before


def test_the_pay_code_without_javascript_does_not_claim_to_refresh(client, scene):
    sign_in(client, scene["owner"])
    page = text_of(client.get("/me/code"))
    how = page.split('id="how">', 1)[1].split("</p>", 1)[0]
    assert "刷新页面可获得新码" in how and "自动" not in how
