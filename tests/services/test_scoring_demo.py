"""The demo village's scoring data: what the issue promises a visitor will find."""

from datetime import timedelta

from sqlalchemy import func, select

from app.auth.models import User
from app.database import utcnow
from app.demo import load_demo
from app.extensions import db
from app.ledger.chain import verify
from app.scoring.models import Meeting, NoticeItem, Objection, Proposal, ProposalHousehold, Rule


def test_demo_has_a_catalogue_and_meetings_in_every_state(app):
    assert load_demo()
    n = db.session.scalar(select(func.count(Rule.id)))
    assert 18 <= n <= 25
    categories = set(db.session.scalars(select(Rule.category)))
    assert categories == {"public_service", "environment", "filial", "customs", "law", "civility"}
    meetings = db.session.scalars(select(Meeting).order_by(Meeting.held_on)).all()
    posted, under_notice, open_ = meetings
    statuses = lambda m: set(  # noqa: E731
        db.session.scalars(select(NoticeItem.status).where(NoticeItem.meeting_id == m.id))
    )
    assert statuses(posted) == {"posted"}
    assert statuses(under_notice) == {"notice"}
    assert abs(under_notice.closed_at - (utcnow() - timedelta(days=1))) < timedelta(minutes=5)
    assert open_.is_open
    assert (
        db.session.scalar(select(func.count(Proposal.id)).where(Proposal.meeting_id == open_.id))
        >= 3
    )
    assert db.session.scalar(select(func.count(Objection.id))) == 1
    assert verify() == []


def test_demo_claims_are_the_villagers_own_household(app):
    load_demo()
    villager = db.session.scalar(select(User).where(User.username == "13800000001"))
    own = villager.resident.household_id
    claimed = db.session.scalars(
        select(ProposalHousehold.household_id)
        .join(Proposal, Proposal.id == ProposalHousehold.proposal_id)
        .where(Proposal.source == "claim")
    ).all()
    assert claimed and set(claimed) == {own}
