"""Scoring pages: who may open what, bad input writes nothing, and the whole path in the
browser's shoes (forms, uploads, the public board, objections, /me)."""

import io
import re
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from app.database import utcnow
from app.extensions import db
from app.households.models import Household
from app.households.services import save_resident
from app.ledger.models import LedgerEntry
from app.scoring import services
from app.scoring.models import Meeting, NoticeItem, Objection, Proposal, ProposalHousehold, Rule
from app.scoring.services import RuleData
from app.villages.models import Village

from .. import factories
from ..conftest import csrf_token
from .helpers import assert_chinese_error, count, fresh, location_path, post, snapshot, text_of

TODAY = date.today() - timedelta(days=1)
ROLES = ["signed_out", "county_admin", "village_admin", "scorer", "clerk", "villager"]
ADMIN = {"village_admin"}
STAFF = {"village_admin", "scorer"}
VILLAGER = {"villager"}
SIGNED_IN_VILLAGE = {"village_admin", "scorer", "clerk", "villager"}


def jpeg(size=(640, 480), fmt="JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 60)).save(out, fmt)
    return out.getvalue()


def sign_in(client, username: str) -> None:
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    resp = client.post(
        "/login",
        data={
            "username": username,
            "password": factories.PASSWORD,
            "csrf_token": csrf_token(client),
        },
    )
    assert resp.status_code == 302


def make_villager(village, household, phone):
    res = save_resident(
        village.id,
        household.id,
        name="村民" + phone[-2:],
        phone=phone,
        birth_year=1960,
        actor_id=None,
    )
    return factories.user(village, "villager", resident=res)


@pytest.fixture
def scene(app, village):
    """A village mid-way: an open meeting with one proposal (with a photo) on its agenda, and a
    closed meeting whose one item is under notice with one objection."""
    h = factories.household(village, number="0001", head="李桂英")
    h2 = factories.household(village, number="0002", head="王德胜")
    owner = make_villager(village, h, "13900000001")
    objector = make_villager(village, h2, "13900000002")
    r = services.save_rule(village.id, RuleData("public_service", "清洁日", 10), None)
    old = services.create_proposal(
        village.id, household_ids=[h2.id], rule_id=r.id, occurred_on=TODAY, actor_id=None
    )
    m_closed = services.create_meeting(village.id, held_on=TODAY, title="四月", actor_id=None)
    services.decide(village.id, m_closed.id, old.id, outcome="approve", actor_id=None)
    services.close_meeting(village.id, m_closed.id, None)
    item = db.session.scalar(select(NoticeItem))
    o = services.object_to(village.id, objector.id, item.id, "有疑问")
    p = services.create_proposal(
        village.id,
        household_ids=[h.id],
        rule_id=r.id,
        occurred_on=TODAY,
        photo=jpeg(),
        actor_id=None,
    )
    m = services.create_meeting(village.id, held_on=TODAY, title="五月", actor_id=None)
    return dict(
        h=h.id,
        h2=h2.id,
        r=r.id,
        p=p.id,
        m=m.id,
        mc=m_closed.id,
        i=item.id,
        o=o.id,
        owner=owner.username,
        objector=objector.username,
        code=village.code,
    )


ROUTES = [
    ("GET", "/scoring/", None, STAFF, 200),
    ("GET", "/scoring/rules", None, STAFF, 200),
    ("GET", "/scoring/rules/new", None, ADMIN, 200),
    ("POST", "/scoring/rules/new", {}, ADMIN, 422),
    ("GET", "/scoring/rules/{r}", None, ADMIN, 200),
    ("POST", "/scoring/rules/{r}", {"category": "public_service", "title": ""}, ADMIN, 422),
    ("GET", "/scoring/proposals", None, STAFF, 200),
    ("GET", "/scoring/proposals?status=all", None, STAFF, 200),
    ("GET", "/scoring/proposals/new?q=0001", None, STAFF, 200),
    ("GET", "/scoring/proposals/new?household={h}", None, STAFF, 200),
    ("POST", "/scoring/proposals/new?household={h}", {}, STAFF, 422),
    ("GET", "/scoring/proposals/batch", None, STAFF, 200),
    ("POST", "/scoring/proposals/batch", {}, STAFF, 422),
    ("GET", "/scoring/proposals/{p}", None, STAFF, 200),
    ("GET", "/scoring/meetings", None, STAFF, 200),
    ("GET", "/scoring/meetings/new", None, STAFF, 200),
    ("POST", "/scoring/meetings/new", {"title": ""}, STAFF, 422),
    ("GET", "/scoring/meetings/{m}", None, STAFF, 200),
    ("POST", "/scoring/meetings/{m}/edit", {"title": ""}, STAFF, 422),
    ("POST", "/scoring/meetings/{m}/decide/{p}", {}, STAFF, 422),
    ("GET", "/scoring/meetings/{mc}/minutes", None, STAFF, 200),
    ("GET", "/scoring/objections", None, ADMIN, 200),
    ("POST", "/scoring/objections/{o}", {}, ADMIN, 422),
    ("GET", "/scoring/adjust", None, ADMIN, 200),
    ("POST", "/scoring/adjust", {}, ADMIN, 422),
    ("GET", "/me/claims", None, VILLAGER, 200),
    ("GET", "/me/claims/new", None, VILLAGER, 200),
    ("POST", "/me/claims/new", {}, VILLAGER, 422),
    ("GET", "/me/objections", None, VILLAGER, 200),
    ("POST", "/v/{code}/notices/{i}/object", {}, VILLAGER, 422),
    ("GET", "/notices", None, SIGNED_IN_VILLAGE, 302),
    ("POST", "/scoring/meetings/{m}/agenda", {}, STAFF, 302),
    # Refused while the agenda has an undecided item: a message, nothing written.
    ("POST", "/scoring/meetings/{m}/close", {}, STAFF, 302),
]


def _request(client, method, path, data):
    return client.get(path) if method == "GET" else post(client, path, data)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_exactly_its_scoring_pages_and_refusals_write_nothing(
    client, login_as, scene, role
):
    if role != "signed_out":
        login_as(role)
    before = snapshot()
    wrong = []
    for method, template, data, allowed, ok_status in ROUTES:
        path = template.format(**scene)
        resp = _request(client, method, path, data)
        if role == "signed_out":
            good = resp.status_code == 302 and location_path(resp) == "/login"
        else:
            expected = ok_status if role in allowed else 403
            good = resp.status_code == expected
        if not good:
            wrong.append((role, method, path, resp.status_code))
    assert wrong == []
    assert snapshot() == before


@pytest.mark.parametrize("role", ROLES)
def test_the_notice_board_is_public(client, login_as, scene, role):
    if role != "signed_out":
        login_as(role)
    board = client.get(f"/v/{scene['code']}/notices")
    assert board.status_code == 200
    assert "王德胜" in text_of(board) and "清洁日" in text_of(board)
    assert client.get(f"/v/{scene['code']}/notices/{scene['i']}").status_code == 200
    assert client.get("/v/nowhere/notices").status_code == 404


CROSS = [
    ("GET", "/scoring/rules/{r}", None),
    ("POST", "/scoring/rules/{r}", {"category": "public_service", "title": "改", "points": "5"}),
    ("GET", "/scoring/proposals/{p}", None),
    ("GET", "/scoring/proposals/{p}/photo", None),
    ("GET", "/scoring/proposals/new?household={h}", None),
    ("POST", "/scoring/proposals/new?household={h}", {"rule_id": "{r}", "occurred_on": "x"}),
    ("GET", "/scoring/meetings/{m}", None),
    ("POST", "/scoring/meetings/{m}/edit", {"held_on": "2026-01-01", "title": "改"}),
    ("POST", "/scoring/meetings/{m}/agenda", {}),
    ("POST", "/scoring/meetings/{m}/decide/{p}", {"d{p}-outcome": "approve"}),
    ("POST", "/scoring/meetings/{m}/close", {}),
    ("GET", "/scoring/meetings/{mc}/minutes", None),
    ("POST", "/scoring/objections/{o}", {"decision": "uphold", "resolution": "别村"}),
]


@pytest.mark.parametrize("role", ["scorer", "village_admin"])
def test_staff_of_another_village_get_404_and_write_nothing(client, login_as, scene, role):
    other = factories.village("xiwan", "西湾村")
    login_as(role, of_village=other)
    before = snapshot()
    wrong = []
    for method, template, data in CROSS:
        if (
            role == "scorer"
            and "objections" in template
            or role == "scorer"
            and "rules/" in template
        ):
            continue  # admin-only pages: a scorer is refused before any lookup
        path = template.format(**scene)
        form = {k.format(**scene): v.format(**scene) for k, v in (data or {}).items()}
        resp = _request(client, method, path, form)
        if resp.status_code != 404:
            wrong.append((method, path, resp.status_code))
    assert wrong == []
    assert snapshot() == before
    # Their own adjustment form does not find our household numbers either.
    if role == "village_admin":
        resp = post(client, "/scoring/adjust", {"household": "0001", "points": "5", "reason": "x"})
        assert_chinese_error(resp)
        assert snapshot() == before


def test_villager_of_another_village_cannot_object(client, login_as, scene):
    other = factories.village("xiwan", "西湾村")
    login_as("villager", of_village=other)
    before = snapshot()
    resp = post(client, f"/v/{scene['code']}/notices/{scene['i']}/object", {"reason": "别村的"})
    assert resp.status_code == 403
    assert snapshot() == before


def test_scorer_records_a_proposal_with_a_photo(client, login_as, scene):
    login_as("scorer")
    found = client.get("/scoring/proposals/new?q=李桂英")
    assert f"household={scene['h']}" in text_of(found)
    resp = post(
        client,
        f"/scoring/proposals/new?household={scene['h']}",
        {
            "rule_id": str(scene["r"]),
            "occurred_on": TODAY.isoformat(),
            "note": "打扫村道",
            "photo": (io.BytesIO(jpeg((2400, 1800))), "IMG_0001.JPG"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302, text_of(resp)
    fresh()
    p = db.session.scalars(select(Proposal).order_by(Proposal.id.desc())).first()
    assert p.note == "打扫村道" and p.photo_id and p.source == "scorer"
    photo = client.get(f"/scoring/proposals/{p.id}/photo")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    # Never in a shared cache; the browser asks each time (the access check runs) and gets a 304.
    assert photo.headers["Cache-Control"] == "private, no-cache"
    again = client.get(
        f"/scoring/proposals/{p.id}/photo", headers={"If-None-Match": photo.headers["ETag"]}
    )
    assert again.status_code == 304 and not again.data
    with Image.open(io.BytesIO(photo.data)) as img:
        assert max(img.size) == 1600


def test_photo_is_served_only_to_staff_and_the_households_villagers(client, login_as, scene):
    url = f"/scoring/proposals/{scene['p']}/photo"
    assert location_path(client.get(url)) == "/login"
    sign_in(client, scene["owner"])
    assert client.get(url).status_code == 200
    sign_in(client, scene["objector"])  # a villager of another household
    assert client.get(url).status_code == 404
    login_as("clerk")
    assert client.get(url).status_code == 403


@pytest.mark.parametrize(
    "upload",
    [
        (b"just some notes, not a picture\n" * 10, "evidence.jpg"),
        (b"GIF89a" + b"\x00" * 100, "photo.png"),
        ("huge", "big.jpg"),
        ("pixels", "wide.png"),
    ],
)
def test_bad_photos_are_refused_with_a_chinese_message_and_nothing_written(
    client, login_as, scene, upload
):
    data, name = upload
    if data == "huge":
        data = b"\xff\xd8\xff" + b"\x00" * (6 * 1024 * 1024 + 10)
    elif data == "pixels":
        out = io.BytesIO()
        Image.new("1", (9000, 6000)).save(out, "PNG")
        data = out.getvalue()
    login_as("scorer")
    before = snapshot()
    resp = post(
        client,
        f"/scoring/proposals/new?household={scene['h']}",
        {
            "rule_id": str(scene["r"]),
            "occurred_on": TODAY.isoformat(),
            "photo": (io.BytesIO(data), name),
        },
        content_type="multipart/form-data",
    )
    assert_chinese_error(resp)
    assert snapshot() == before


def test_a_claim_with_a_bad_photo_writes_nothing(client, scene):
    sign_in(client, scene["owner"])
    before = snapshot()
    resp = post(
        client,
        "/me/claims/new",
        {
            "rule_id": str(scene["r"]),
            "occurred_on": TODAY.isoformat(),
            "photo": (io.BytesIO(b"%PDF-1.4 not an image"), "scan.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert_chinese_error(resp)
    assert snapshot() == before


BAD_FORMS = [
    ("/scoring/rules/new", {"category": "public_service", "title": "x", "points": "abc"}),
    ("/scoring/rules/new", {"category": "public_service", "title": "x", "points": "0"}),
    ("/scoring/rules/new", {"category": "bogus", "title": "x", "points": "5"}),
    (
        "/scoring/rules/new",
        {"category": "public_service", "title": "x", "points": "5", "cap_count": "2"},
    ),
    ("/scoring/proposals/new?household={h}", {"rule_id": "{r}", "occurred_on": "昨天"}),
    ("/scoring/proposals/new?household={h}", {"rule_id": "{r}", "occurred_on": "2099-01-01"}),
    ("/scoring/proposals/new?household={h}", {"rule_id": "99999", "occurred_on": "{today}"}),
    (
        "/scoring/proposals/new?household={h}",
        {"rule_id": "{r}", "occurred_on": "{today}", "resident_id": "99999"},
    ),
    ("/scoring/proposals/batch", {"rule_id": "{r}", "occurred_on": "{today}"}),
    (
        "/scoring/proposals/batch",
        {"rule_id": "{r}", "occurred_on": "{today}", "household_ids": "99999"},
    ),
    ("/scoring/meetings/new", {"held_on": "2026-13-40", "title": "x"}),
    ("/scoring/meetings/{m}/edit", {"held_on": "{today}", "title": ""}),
    ("/scoring/meetings/{m}/decide/{p}", {"d{p}-outcome": "reject"}),
    ("/scoring/meetings/{m}/decide/{p}", {"d{p}-outcome": "approve", "d{p}-points": "3"}),
    ("/scoring/meetings/{m}/decide/{p}", {"d{p}-outcome": "approve", "d{p}-points": "x"}),
    ("/scoring/meetings/{m}/decide/{p}", {"d{p}-outcome": "maybe"}),
    ("/scoring/meetings/{m}/decide/{p}", {"d{p}-outcome": "defer", "d{p}-votes_for": "-1"}),
    ("/scoring/meetings/{mc}/decide/{p}", {"d{p}-outcome": "approve"}),
    ("/scoring/objections/{o}", {"decision": "uphold", "resolution": ""}),
    ("/scoring/objections/{o}", {"decision": "perhaps", "resolution": "x"}),
    ("/scoring/adjust", {"household": "0001", "points": "0", "reason": "x"}),
    ("/scoring/adjust", {"household": "0001", "points": "5", "reason": ""}),
    ("/scoring/adjust", {"household": "9999", "points": "5", "reason": "x"}),
    ("/scoring/adjust", {"household": "0001", "points": "五", "reason": "x"}),
]


def test_every_forms_bad_input_gets_a_chinese_message_and_writes_nothing(client, login_as, scene):
    login_as("village_admin")
    before = snapshot()
    fill = dict(scene, today=TODAY.isoformat())
    wrong = []
    for path, data in BAD_FORMS:
        form = {k.format(**fill): v.format(**fill) for k, v in data.items()}
        resp = post(client, path.format(**fill), form)
        try:
            assert_chinese_error(resp)
        except AssertionError as e:
            wrong.append((path, data, str(e)[:300]))
    assert wrong == []
    assert snapshot() == before


def test_villager_bad_claims_and_objections_write_nothing(client, scene):
    sign_in(client, scene["objector"])
    before = snapshot()
    for path, data in [
        ("/me/claims/new", {"rule_id": "{r}", "occurred_on": ""}),
        ("/me/claims/new", {"rule_id": "{r}", "occurred_on": "{today}", "note": "长" * 501}),
        ("/v/{code}/notices/{i}/object", {"reason": "  "}),
        ("/v/{code}/notices/{i}/object", {"reason": "再说一次"}),  # already objected
    ]:
        fill = dict(scene, today=TODAY.isoformat())
        form = {k: v.format(**fill) for k, v in data.items()}
        assert_chinese_error(post(client, path.format(**fill), form))
    assert snapshot() == before


def test_villager_objects_once_and_sees_the_outcome(client, login_as, scene):
    sign_in(client, scene["owner"])
    url = f"/v/{scene['code']}/notices/{scene['i']}/object"
    assert post(client, url, {"reason": "他那天不在村里"}).status_code == 302
    assert count(Objection) == 2
    again = post(client, url, {"reason": "再次异议"})
    assert "已对此项提出过异议" in assert_chinese_error(again)[0]
    assert count(Objection) == 2
    fresh()
    mine = db.session.scalar(select(Objection).where(Objection.reason == "他那天不在村里"))
    login_as("village_admin")
    resp = post(
        client,
        f"/scoring/objections/{mine.id}",
        {"decision": "uphold", "resolution": "经核实属实，撤销"},
    )
    assert resp.status_code == 302
    sign_in(client, scene["owner"])
    page = text_of(client.get("/me/objections"))
    assert "经核实属实，撤销" in page and "异议成立" in page
    fresh()
    assert db.session.get(NoticeItem, scene["i"]).status == "cancelled"
    assert services.post_due(now=utcnow() + timedelta(days=30)) == 0


def test_meeting_decided_and_closed_through_the_pages(client, login_as, scene, village):
    login_as("scorer")
    d = f"d{scene['p']}"
    resp = post(
        client,
        f"/scoring/meetings/{scene['m']}/decide/{scene['p']}",
        {
            f"{d}-outcome": "approve",
            f"{d}-points": "8",
            f"{d}-reason": "半天",
            f"{d}-votes_for": "9",
            f"{d}-votes_against": "1",
        },
    )
    assert resp.status_code == 302
    assert post(client, f"/scoring/meetings/{scene['m']}/close", {}).status_code == 302
    fresh()
    assert db.session.get(Meeting, scene["m"]).status == "closed"
    minutes = text_of(client.get(f"/scoring/meetings/{scene['m']}/minutes"))
    assert "会议纪要" in minutes and "+8" in minutes and "半天" in minutes
    board = text_of(client.get(f"/v/{scene['code']}/notices"))
    assert "李桂英" in board and "+8" in board


def test_batch_proposal_for_a_group(client, login_as, scene, village):
    extra = [factories.household(village, group="二组") for _ in range(3)]
    login_as("scorer")
    page = text_of(client.get("/scoring/proposals/batch?group=二组"))
    assert all(h.number in page for h in extra) and "0001" not in page
    resp = post(
        client,
        "/scoring/proposals/batch?group=二组",
        {
            "rule_id": str(scene["r"]),
            "occurred_on": TODAY.isoformat(),
            "household_ids": [str(h.id) for h in extra],
        },
    )
    assert resp.status_code == 302, text_of(resp)[:1500]
    fresh()
    p = db.session.scalars(select(Proposal).order_by(Proposal.id.desc())).first()
    assert sorted(ph.household_id for ph in p.households) == sorted(h.id for h in extra)
    assert count(ProposalHousehold) == 5


def test_notice_board_hides_names_when_the_village_says_so(client, scene, village):
    db.session.get(Village, village.id).notice_show_names = False
    db.session.commit()
    board = text_of(client.get(f"/v/{scene['code']}/notices"))
    assert "0002" in board and "王德胜" not in board


def test_board_checks_a_written_down_chain_head(client, scene, village):
    h = db.session.get(Household, scene["h"])
    from app.ledger import services as ledger

    ledger.award(village.id, h.id, 5, "测试", None)
    first = db.session.scalar(select(LedgerEntry).where(LedgerEntry.seq == 1))
    ok = text_of(client.get(f"/v/{scene['code']}/notices?head=1:{first.hash[:12]}"))
    assert "仍在今天的台账中" in ok
    bad = text_of(client.get(f"/v/{scene['code']}/notices?head=1:{'a' * 12}"))
    assert "不在今天的台账中" in bad
    junk = text_of(client.get(f"/v/{scene['code']}/notices?head=hello"))
    assert "条数:校验码" in junk


def test_me_says_why_links_the_notice_and_shows_stars_and_rank(client, scene, village):
    fresh()
    db.session.get(Village, village.id).star_thresholds = [5, 10, 20]
    db.session.commit()
    services.decide(village.id, scene["m"], scene["p"], outcome="approve", actor_id=None)
    db.session.get(Meeting, scene["m"]).held_on = TODAY - timedelta(days=7)  # held by then
    db.session.commit()
    services.close_meeting(village.id, scene["m"], None, now=utcnow() - timedelta(days=6))
    services.post_due()
    item = db.session.scalar(select(NoticeItem).where(NoticeItem.meeting_id == scene["m"]))
    sign_in(client, scene["owner"])
    page = text_of(client.get("/me"))
    assert "清洁日" in page and "五月" in page
    assert f"/v/{scene['code']}/notices/{item.id}" in page
    assert len(re.findall(r'<span class="on"[^>]*>★</span>', page)) == 2
    assert "全村 2 户中第 1 名" in page and "截至" in page  # as of the run of notices post


def test_admin_direct_adjustment(client, login_as, scene):
    login_as("village_admin")
    resp = post(client, "/scoring/adjust", {"household": "0001", "points": "-3", "reason": "更正"})
    assert resp.status_code == 302
    fresh()
    assert db.session.get(Household, scene["h"]).balance == -3
    e = db.session.scalar(select(LedgerEntry))
    assert e.kind == "adjust" and e.reason == "更正"


def test_rule_edit_through_the_page(client, login_as, scene):
    login_as("village_admin")
    resp = post(
        client,
        f"/scoring/rules/{scene['r']}",
        {
            "category": "environment",
            "title": "环境整治",
            "points": "6",
            "cap_count": "2",
            "cap_period": "month",
            "active": "y",
        },
    )
    assert resp.status_code == 302
    fresh()
    r = db.session.get(Rule, scene["r"])
    assert (r.title, r.points, r.cap_count, r.cap_period) == ("环境整治", 6, 2, "month")
