"""The scoring path through its services: proposal → meeting → notice → objection → post."""

import io
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.database import utcnow
from app.errors import Forbidden, InvalidInput, NotFound
from app.extensions import db
from app.households.models import Household
from app.ledger.chain import verify
from app.ledger.models import LedgerEntry
from app.scoring import photos, services
from app.scoring.models import (
    Decision,
    Meeting,
    NoticeItem,
    Objection,
    Proposal,
    Rule,
)
from app.scoring.services import AlreadyObjected, CapReached, MeetingClosed, RuleData
from app.villages.models import AuditLog

from .. import factories

TODAY = date.today() - timedelta(days=1)  # safely "not in the future" in any time zone


def fresh():
    db.session.rollback()


def count(model, *where) -> int:
    fresh()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def rule(village, points=10, cap=None, period=None, title="参加清洁日义务劳动", category=None):
    category = category or ("public_service" if points > 0 else "environment")
    return services.save_rule(village.id, RuleData(category, title, points, cap, period), None)


def propose(village, households, r, **kw):
    return services.create_proposal(
        village.id,
        household_ids=[h.id for h in households],
        rule_id=r.id,
        occurred_on=kw.pop("occurred_on", TODAY),
        actor_id=None,
        **kw,
    )


def meeting(village, title="五月评议会", held_on=TODAY):
    return services.create_meeting(village.id, held_on=held_on, title=title, actor_id=None)


# A meeting closed "six days ago" must have been held by then (a future meeting cannot close).
WEEK_AGO = TODAY - timedelta(days=7)


def villager(village, household=None):
    from app.households.services import save_resident

    h = household or factories.household(village)
    res = save_resident(village.id, h.id, name="村民", phone=None, birth_year=1960, actor_id=None)
    return factories.user(village, "villager", resident=res, username=f"v{res.id}")


def jpeg(size=(800, 600), fmt="JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(out, fmt)
    return out.getvalue()


def balance(h_id):
    fresh()
    return db.session.get(Household, h_id).balance


def test_full_path_proposal_meeting_notice_objection_post(village):
    a, b, c = (factories.household(village) for _ in range(3))
    award = rule(village, 10)
    p = propose(village, [a, b, c], award, note="清洁日")
    m = meeting(village)
    assert db.session.get(Proposal, p.id).meeting_id == m.id  # waiting proposals join the agenda
    services.decide(village.id, m.id, p.id, outcome="approve", actor_id=None)
    closed_at = utcnow()
    services.close_meeting(village.id, m.id, None, now=closed_at)
    items = {i.household_id: i for i in db.session.scalars(select(NoticeItem))}
    assert {i.status for i in items.values()} == {"notice"}
    assert items[a.id].notice_until == closed_at + timedelta(days=5)  # the village's setting

    objector = villager(village)
    o = services.object_to(village.id, objector.id, items[b.id].id, "他那天没来")
    services.resolve_objection(village.id, o.id, uphold=True, resolution="核实属实", actor_id=None)
    o2 = services.object_to(village.id, objector.id, items[c.id].id, "有疑问")

    # Not yet: the notice period has not ended.
    assert services.post_due(now=closed_at + timedelta(days=4)) == 0
    later = closed_at + timedelta(days=5, seconds=1)
    assert services.post_due(now=later) == 1  # a; b is cancelled, c has an open objection
    assert balance(a.id) == 10 and balance(b.id) == 0 and balance(c.id) == 0
    services.resolve_objection(village.id, o2.id, uphold=False, resolution="经核实", actor_id=None)
    assert services.post_due(now=later) == 1
    assert services.post_due(now=later) == 0
    assert balance(c.id) == 10
    fresh()
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.household_id == a.id))
    assert entry.ref == f"meeting:{m.id}/rule:{award.id}"
    assert entry.key.startswith("decision:")
    assert db.session.get(NoticeItem, items[b.id].id).status == "cancelled"
    assert db.session.get(Objection, o.id).status == "upheld"
    assert db.session.get(Objection, o2.id).status == "dismissed"
    assert verify() == []


def test_deduction_follows_the_same_path_and_may_go_below_zero(village):
    h = factories.household(village)
    p = propose(village, [h], rule(village, -10, title="焚烧秸秆"))
    m = meeting(village, held_on=WEEK_AGO)
    services.decide(village.id, m.id, p.id, outcome="approve", actor_id=None)
    services.close_meeting(village.id, m.id, None, now=utcnow() - timedelta(days=6))
    assert services.post_due() == 1
    assert balance(h.id) == -10


def test_adjusted_points_need_a_reason_and_keep_the_rules_sign(village):
    h = factories.household(village)
    p = propose(village, [h], rule(village, 10))
    m = meeting(village)
    for kw in ({"points": 5}, {"points": -5, "reason": "x"}, {"points": 0, "reason": "x"}):
        with pytest.raises(InvalidInput):
            services.decide(village.id, m.id, p.id, outcome="approve", actor_id=None, **kw)
    with pytest.raises(InvalidInput):
        services.decide(village.id, m.id, p.id, outcome="reject", actor_id=None)
    assert count(Decision) == 0 and count(NoticeItem) == 0
    d = services.decide(
        village.id,
        m.id,
        p.id,
        outcome="approve",
        points=5,
        reason="只来半天",
        actor_id=None,
        votes_for=7,
        votes_against=2,
    )
    assert (d.points, d.votes_for, d.votes_against) == (5, 7, 2)


def test_caps_are_enforced_when_deciding(village):
    h, other = factories.household(village), factories.household(village)
    capped = rule(village, 5, cap=1, period="month", title="庭院整洁")
    first = propose(village, [h], capped)
    second = propose(village, [h, other], capped)
    m = meeting(village)
    services.decide(village.id, m.id, first.id, outcome="approve", actor_id=None)
    with pytest.raises(CapReached) as e:
        services.decide(village.id, m.id, second.id, outcome="approve", actor_id=None)
    assert h.number in str(e.value)
    assert count(NoticeItem) == 1 and count(Decision) == 1
    # Rejecting the first frees the cap for the second.
    services.decide(village.id, m.id, first.id, outcome="reject", reason="重复", actor_id=None)
    services.decide(village.id, m.id, second.id, outcome="approve", actor_id=None)
    assert count(NoticeItem) == 2


def test_cap_counts_items_of_earlier_meetings_but_not_cancelled_ones(village):
    h = factories.household(village)
    capped = rule(village, 5, cap=1, period="year", title="红事简办")
    p1 = propose(village, [h], capped)
    m1 = meeting(village)
    services.decide(village.id, m1.id, p1.id, outcome="approve", actor_id=None)
    services.close_meeting(village.id, m1.id, None)
    p2 = propose(village, [h], capped)
    m2 = meeting(village, "六月评议会")
    with pytest.raises(CapReached):
        services.decide(village.id, m2.id, p2.id, outcome="approve", actor_id=None)
    item = db.session.scalar(select(NoticeItem))
    o = services.object_to(village.id, villager(village).id, item.id, "不实")
    services.resolve_objection(village.id, o.id, uphold=True, resolution="属实", actor_id=None)
    services.decide(village.id, m2.id, p2.id, outcome="approve", actor_id=None)


def test_closing_freezes_and_refuses_undecided_items(village):
    h = factories.household(village)
    p, q = propose(village, [h], rule(village)), propose(village, [h], rule(village, 3, title="b"))
    m = meeting(village)
    services.decide(village.id, m.id, p.id, outcome="approve", actor_id=None)
    with pytest.raises(InvalidInput):
        services.close_meeting(village.id, m.id, None)
    services.decide(village.id, m.id, q.id, outcome="defer", actor_id=None)
    services.close_meeting(village.id, m.id, None)
    fresh()
    assert db.session.get(Meeting, m.id).status == "closed"
    deferred = db.session.get(Proposal, q.id)
    assert deferred.meeting_id is None and deferred.status == "pending"
    with pytest.raises(MeetingClosed):
        services.decide(village.id, m.id, p.id, outcome="reject", reason="x", actor_id=None)
    with pytest.raises(MeetingClosed):
        services.close_meeting(village.id, m.id, None)
    m2 = meeting(village, "下一次")
    assert db.session.get(Proposal, q.id).meeting_id == m2.id


def test_editing_a_rule_does_not_change_what_was_decided(village):
    h = factories.household(village)
    r = rule(village, 10)
    p = propose(village, [h], r)
    m = meeting(village, held_on=WEEK_AGO)
    services.decide(village.id, m.id, p.id, outcome="approve", actor_id=None)
    services.close_meeting(village.id, m.id, None, now=utcnow() - timedelta(days=6))
    services.save_rule(village.id, RuleData("public_service", "改名了", 50), None, r.id)
    services.post_due()
    fresh()
    assert db.session.get(Decision, 1).rule_title == "参加清洁日义务劳动"
    assert balance(h.id) == 10


def test_a_villager_objects_once_per_item(village):
    h = factories.household(village)
    p = propose(village, [h], rule(village))
    m = meeting(village)
    services.decide(village.id, m.id, p.id, outcome="approve", actor_id=None)
    services.close_meeting(village.id, m.id, None)
    item = db.session.scalar(select(NoticeItem))
    v = villager(village)
    services.object_to(village.id, v.id, item.id, "第一次")
    with pytest.raises(AlreadyObjected):
        services.object_to(village.id, v.id, item.id, "第二次")
    assert count(Objection) == 1
    with pytest.raises(InvalidInput):
        services.object_to(village.id, villager(village).id, item.id, "   ")
    scorer = factories.user(village, "scorer")
    with pytest.raises(Forbidden):
        services.object_to(village.id, scorer.id, item.id, "我是评议员")
    assert count(Objection) == 1


def test_objection_after_the_notice_period_is_refused(village):
    h = factories.household(village)
    p = propose(village, [h], rule(village))
    m = meeting(village, held_on=WEEK_AGO)
    services.decide(village.id, m.id, p.id, outcome="approve", actor_id=None)
    services.close_meeting(village.id, m.id, None, now=utcnow() - timedelta(days=6))
    item = db.session.scalar(select(NoticeItem))
    with pytest.raises(InvalidInput):
        services.object_to(village.id, villager(village).id, item.id, "晚了")


def test_post_due_in_four_threads_posts_each_item_once(app, village):
    households = [factories.household(village) for _ in range(6)]
    p = propose(village, households, rule(village, 10))
    m = meeting(village, held_on=WEEK_AGO)
    services.decide(village.id, m.id, p.id, outcome="approve", actor_id=None)
    services.close_meeting(village.id, m.id, None, now=utcnow() - timedelta(days=6))
    db.session.commit()
    results, errors = [], []
    start = threading.Barrier(4)

    def run():
        with app.app_context():
            try:
                start.wait()
                results.append(services.post_due())
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(results) == 6
    assert count(LedgerEntry) == 6
    assert all(balance(h.id) == 10 for h in households)
    assert verify() == []


def test_another_villages_household_rule_and_meeting_are_not_found(village):
    other = factories.village("other", "别村")
    theirs = factories.household(other)
    mine = factories.household(village)
    r = rule(village)
    with pytest.raises(NotFound):
        propose(village, [theirs], r)
    their_rule = rule(other)
    with pytest.raises(NotFound):
        propose(village, [mine], their_rule)
    p = propose(village, [mine], r)
    m_other = meeting(other)
    with pytest.raises(NotFound):
        services.decide(other.id, m_other.id, p.id, outcome="approve", actor_id=None)
    assert count(Proposal) == 1 and count(Decision) == 0


def test_bad_proposals_write_nothing(village, app):
    h = factories.household(village)
    r = rule(village)
    cases = [
        dict(household_ids=[]),
        dict(occurred_on=None),
        dict(occurred_on=date.today() + timedelta(days=3)),
        dict(occurred_on=date.today() - timedelta(days=400)),
        dict(note="长" * 501),
        dict(photo=b"this is text, not a photo"),
    ]
    for case in cases:
        kw = dict(household_ids=[h.id], rule_id=r.id, occurred_on=TODAY, actor_id=None) | case
        with pytest.raises(InvalidInput):
            services.create_proposal(village.id, **kw)
    services.save_rule(village.id, RuleData("public_service", "停用的", 5, active=False), None)
    inactive = db.session.scalar(select(Rule).where(Rule.active.is_(False)))
    with pytest.raises(InvalidInput):
        propose(village, [h], inactive)
    assert count(Proposal) == 0
    assert count(photos.Photo) == 0


def test_bad_rules_write_nothing(village):
    for data in (
        RuleData("nonsense", "x", 5),
        RuleData("public_service", "", 5),
        RuleData("public_service", "x", 0),
        RuleData("public_service", "x", 10**6),
        RuleData("public_service", "x", 5, cap_count=2),
        RuleData("public_service", "x", 5, cap_count=0, cap_period="month"),
        RuleData("public_service", "x", 5, cap_count=2, cap_period="week"),
    ):
        with pytest.raises(InvalidInput):
            services.save_rule(village.id, data, None)
    assert count(Rule) == 0


def test_photo_is_checked_by_content_resized_and_stored_in_the_database(village, app):
    import hashlib

    h = factories.household(village)
    p = propose(village, [h], rule(village), photo=jpeg((3000, 2000), "PNG"))
    stored = db.session.get(photos.Photo, p.photo_id)
    assert stored.village_id == village.id and stored.content_type == "image/jpeg"
    assert stored.sha256 == hashlib.sha256(stored.data).hexdigest()
    assert stored.size == len(stored.data)
    with Image.open(io.BytesIO(stored.data)) as img:
        assert img.format == "JPEG" and max(img.size) == photos.MAX_SIDE
    webp = propose(village, [h], rule(village, title="b"), photo=jpeg((100, 100), "WEBP"))
    assert webp.photo_id
    assert not (Path(app.instance_path) / "photos").exists()  # nothing on this server's disk


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a this is a text file renamed photo.jpg",
        b"\xff\xd8\xff\xe0 truncated jpeg",
        "gif",
        "bytes",
        "pixels",
    ],
)
def test_bad_photos_are_refused(village, data):
    if data == "gif":
        out = io.BytesIO()
        Image.new("RGB", (10, 10)).save(out, "GIF")
        data = out.getvalue()
    elif data == "bytes":
        data = b"\xff\xd8" + b"0" * (photos.MAX_BYTES + 1)
    elif data == "pixels":
        out = io.BytesIO()
        Image.new("1", (8000, 6000)).save(out, "PNG")  # 48 megapixels, a small file
        data = out.getvalue()
    with pytest.raises(InvalidInput):
        photos.process(data)


def test_claim_is_for_the_own_household_and_awards_only(village):
    v = villager(village)
    award = rule(village)
    p = services.create_claim(village.id, v.id, rule_id=award.id, occurred_on=TODAY, note="做好事")
    assert p.source == "claim"
    assert [ph.household_id for ph in p.households] == [v.resident.household_id]
    with pytest.raises(InvalidInput):
        services.create_claim(
            village.id, v.id, rule_id=rule(village, -5, title="扣分").id, occurred_on=TODAY
        )
    scorer = factories.user(village, "scorer")
    with pytest.raises(Forbidden):
        services.create_claim(village.id, scorer.id, rule_id=award.id, occurred_on=TODAY)
    assert count(Proposal) == 1


def test_direct_adjustment_is_a_ledger_entry_and_audited(village):
    h = factories.household(village, opening=20)
    admin = factories.user(village, "village_admin")
    services.adjust(village.id, h.id, -7, "更正录入错误", admin.id)
    assert balance(h.id) == 13
    assert count(AuditLog, AuditLog.action == "ledger.adjust") == 1
    with pytest.raises(InvalidInput):
        services.adjust(village.id, h.id, 5, "  ", admin.id)
    with pytest.raises(InvalidInput):
        services.adjust(village.id, h.id, 0, "零", admin.id)
    other = factories.village("other", "别村")
    with pytest.raises(NotFound):
        services.adjust(other.id, h.id, 5, "别村", admin.id)
    assert count(LedgerEntry) == 2


def test_post_due_records_the_days_chain_head(village):
    from app.ledger.chain import head_is_in_chain
    from app.scoring.models import ChainHead

    h = factories.household(village, opening=5)
    services.post_due()
    head = db.session.scalar(select(ChainHead))
    assert head.seq == 1
    assert head_is_in_chain(village.id, head.seq, head.hash[:12])
    assert not head_is_in_chain(village.id, head.seq, "0" * 12)
    assert h


def test_a_double_tapped_objection_is_recorded_once(app, village):
    h = factories.household(village)
    p = propose(village, [h], rule(village))
    m = meeting(village)
    services.decide(village.id, m.id, p.id, outcome="approve", actor_id=None)
    services.close_meeting(village.id, m.id, None)
    item_id = db.session.scalar(select(NoticeItem.id))
    user_id = villager(village).id
    village_id = village.id
    db.session.commit()
    outcomes = []
    start = threading.Barrier(4)

    def tap():
        with app.app_context():
            try:
                start.wait()
                services.object_to(village_id, user_id, item_id, "同一个异议")
                outcomes.append("ok")
            except AlreadyObjected:
                outcomes.append("already")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=tap) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already"] * 3 + ["ok"]
    assert count(Objection) == 1
