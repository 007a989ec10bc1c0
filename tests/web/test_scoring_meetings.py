# ruff: noqa: F811 - `scene` is the fixture of test_scoring, taken by name
"""The evaluation meeting as it is run (issue 10): the remaining items decided as proposed in one
step, each still recorded; a meeting dated in the future cannot be closed."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.database import utcnow
from app.errors import InvalidInput
from app.extensions import db
from app.scoring import services
from app.scoring.models import Decision, Meeting, NoticeItem
from app.scoring.rules import local_today

from .. import factories
from .helpers import count, fresh, post, text_of
from .test_scoring import TODAY, scene  # noqa: F401 - the fixture, used by name


def second_proposal(village, scene):
    h3 = factories.household(village, number="0003", head="张秀兰")
    p2 = services.create_proposal(
        village.id, household_ids=[h3.id], rule_id=scene["r"], occurred_on=TODAY, actor_id=None
    )
    services.add_to_agenda(village.id, scene["m"], None, None)
    return p2.id


def test_decide_all_approves_each_remaining_item_as_proposed(client, login_as, scene, village):
    p2 = second_proposal(village, scene)
    login_as("scorer")
    d = f"d{scene['p']}"
    post(
        client,
        f"/scoring/meetings/{scene['m']}/decide/{scene['p']}",
        {f"{d}-outcome": "approve", f"{d}-points": "8", f"{d}-reason": "半天"},
    )
    page = text_of(client.get(f"/scoring/meetings/{scene['m']}"))
    assert "其余事项全部按提议通过" in page
    resp = post(client, f"/scoring/meetings/{scene['m']}/decide-all", {})
    assert resp.status_code == 302
    fresh()
    decisions = {
        x.proposal_id: x
        for x in db.session.scalars(select(Decision).where(Decision.meeting_id == scene["m"]))
    }
    assert decisions[scene["p"]].points == 8  # decided before: kept
    assert decisions[p2].outcome == "approve" and decisions[p2].points == 10  # as proposed
    assert "已按提议通过 1 项" in text_of(client.get(f"/scoring/meetings/{scene['m']}"))
    # Nothing left: a second press decides nothing more.
    post(client, f"/scoring/meetings/{scene['m']}/decide-all", {})
    assert count(Decision, Decision.meeting_id == scene["m"]) == 2


def test_decide_all_is_all_or_nothing(client, login_as, scene, village, monkeypatch):
    p2 = second_proposal(village, scene)
    login_as("scorer")
    real = services.decide

    def refuse_the_second(village_id, meeting_id, proposal_id, **kw):
        if proposal_id == p2:
            raise InvalidInput("上限")
        return real(village_id, meeting_id, proposal_id, **kw)

    monkeypatch.setattr(services, "decide", refuse_the_second)
    resp = post(client, f"/scoring/meetings/{scene['m']}/decide-all", {})
    assert resp.status_code == 302
    fresh()
    assert count(Decision, Decision.meeting_id == scene["m"]) == 0
    assert "上限" in text_of(client.get(f"/scoring/meetings/{scene['m']}"))


@pytest.mark.parametrize("role", ["villager", "clerk", "signed_out"])
def test_decide_all_is_for_meeting_staff_only(client, login_as, scene, role):
    if role != "signed_out":
        login_as(role)
    resp = post(client, f"/scoring/meetings/{scene['m']}/decide-all", {})
    assert resp.status_code in (302, 403)
    if resp.status_code == 302:
        assert "/login" in resp.headers["Location"]
    assert count(Decision, Decision.meeting_id == scene["m"]) == 0


def test_decide_all_in_another_village_is_not_found(client, login_as, scene):
    other = factories.village("other", "别村")
    login_as("scorer", of_village=other)
    assert post(client, f"/scoring/meetings/{scene['m']}/decide-all", {}).status_code == 404
    assert count(Decision, Decision.meeting_id == scene["m"]) == 0


def test_a_meeting_dated_in_the_future_cannot_be_closed(client, login_as, scene, village):
    tomorrow = local_today(utcnow()) + timedelta(days=1)
    m = services.create_meeting(village.id, held_on=tomorrow, title="下月", actor_id=None)
    # Its (empty) agenda is all decided, yet it cannot close before its day.
    login_as("scorer")
    page = text_of(client.get(f"/scoring/meetings/{m.id}"))
    assert "当天或之后才能结束会议" in page and "结束评议会</button>" not in page
    resp = post(client, f"/scoring/meetings/{m.id}/close", {})
    assert resp.status_code == 302
    fresh()
    assert db.session.get(Meeting, m.id).status == "open"
    assert count(NoticeItem, NoticeItem.meeting_id == m.id, NoticeItem.status == "notice") == 0
    with pytest.raises(InvalidInput):
        services.close_meeting(village.id, m.id, None)
    # On its day it closes.
    services.close_meeting(village.id, m.id, None, now=utcnow() + timedelta(days=1, hours=1))
    assert db.session.get(Meeting, m.id).status == "closed"
