"""Read-side queries for scoring pages: every list is paginated over an index."""

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..households.models import Household
from .models import (
    ChainHead,
    Decision,
    Meeting,
    NoticeItem,
    Objection,
    Proposal,
    ProposalHousehold,
)

HEAD_DAYS = 7
HOUSEHOLD_CHOICES = 500


def with_households():
    return selectinload(Proposal.households).selectinload(ProposalHousehold.household)


def proposals(village_id: int, status: str):
    q = select(Proposal).where(Proposal.village_id == village_id)
    if status == "waiting":
        q = q.where(Proposal.status == "pending", Proposal.meeting_id.is_(None))
    elif status in ("pending", "approved", "rejected"):
        q = q.where(Proposal.status == status)
    return q.order_by(Proposal.id.desc()).options(with_households(), selectinload(Proposal.rule))


def agenda(meeting_id: int):
    return (
        select(Proposal)
        .where(Proposal.meeting_id == meeting_id)
        .order_by(Proposal.id)
        .options(with_households(), selectinload(Proposal.rule))
    )


def waiting_count(village_id: int) -> int:
    from sqlalchemy import func

    return db.session.scalar(
        select(func.count(Proposal.id)).where(
            Proposal.village_id == village_id,
            Proposal.status == "pending",
            Proposal.meeting_id.is_(None),
        )
    )


def search_households(village_id: int, q: str, limit: int = 20) -> list[Household]:
    """Active households by number (its start) or the head's name (its first characters): two
    reads along indexes, so the picker is as quick in a village of 100,000 as of 100."""
    base = select(Household).where(Household.village_id == village_id, Household.status == "active")
    if not q:
        return db.session.scalars(base.order_by(Household.number).limit(limit)).all()
    end = q + "\U0010ffff"
    by_number = db.session.scalars(
        base.where(Household.number >= q, Household.number < end)
        .order_by(Household.number)
        .limit(limit)
    ).all()
    by_name = db.session.scalars(
        base.where(Household.head_name >= q, Household.head_name < end)
        .order_by(Household.head_name, Household.number)
        .limit(limit)
    ).all()
    seen, found = set(), []
    for h in [*by_number, *by_name]:
        if h.id not in seen:
            seen.add(h.id)
            found.append(h)
    return found[:limit]


def households_for_batch(village_id: int, group: str) -> list[Household]:
    query = select(Household).where(
        Household.village_id == village_id, Household.status == "active"
    )
    if group:
        query = query.where(Household.group_name == group)
    return db.session.scalars(query.order_by(Household.number).limit(HOUSEHOLD_CHOICES)).all()


def groups(village_id: int) -> list[str]:
    return [
        g
        for g in db.session.scalars(
            select(Household.group_name)
            .where(Household.village_id == village_id)
            .distinct()
            .order_by(Household.group_name)
        )
        if g
    ]


def board(village_id: int):
    return (
        select(NoticeItem)
        .where(NoticeItem.village_id == village_id, NoticeItem.status == "notice")
        .order_by(NoticeItem.notice_until, NoticeItem.id)
        .options(selectinload(NoticeItem.household), selectinload(NoticeItem.meeting))
    )


def heads(village_id: int) -> list[ChainHead]:
    return db.session.scalars(
        select(ChainHead)
        .where(ChainHead.village_id == village_id)
        .order_by(ChainHead.day.desc())
        .limit(HEAD_DAYS)
    ).all()


def items_for_entries(entry_ids: list[int]) -> dict[int, NoticeItem]:
    """The notice item behind each of these ledger entries (for "why" on /me)."""
    if not entry_ids:
        return {}
    rows = db.session.scalars(
        select(NoticeItem).where(NoticeItem.ledger_entry_id.in_(entry_ids)).options(*_EXPLAINED)
    ).all()
    return {r.ledger_entry_id: r for r in rows}


# What /me shows to explain an item: the meeting, and the proposal's note and photo.
_EXPLAINED = (
    selectinload(NoticeItem.meeting),
    selectinload(NoticeItem.decision).selectinload(Decision.proposal),
)


def under_notice_for(household_id: int) -> list[NoticeItem]:
    """The household's items now under notice: decided, not yet in the balance, open to an
    objection until their notice period ends."""
    return list(
        db.session.scalars(
            select(NoticeItem)
            .where(NoticeItem.household_id == household_id, NoticeItem.status == "notice")
            .order_by(NoticeItem.notice_until, NoticeItem.id)
            .options(*_EXPLAINED)
        )
    )


def my_objections(user_id: int, item_ids: list[int]) -> set[int]:
    if not item_ids:
        return set()
    return set(
        db.session.scalars(
            select(Objection.item_id).where(
                Objection.user_id == user_id, Objection.item_id.in_(item_ids)
            )
        )
    )


def objections(village_id: int, status: str):
    q = select(Objection).where(Objection.village_id == village_id)
    if status in ("open", "upheld", "dismissed"):
        q = q.where(Objection.status == status)
    return q.order_by(Objection.id.desc()).options(
        selectinload(Objection.item).selectinload(NoticeItem.household),
        selectinload(Objection.user),
    )


def meetings(village_id: int):
    return (
        select(Meeting)
        .where(Meeting.village_id == village_id)
        .order_by(Meeting.held_on.desc(), Meeting.id.desc())
    )
