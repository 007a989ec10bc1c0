from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ..auth.models import User
from ..extensions import db
from ..households.models import Resident
from ..ledger.models import LedgerEntry
from ..scoring.models import Decision, Objection, Proposal

LIMIT = 50  # the newest messages shown; older ones are in the points history and claims


@dataclass(frozen=True)
class Message:
    at: datetime
    kind: str  # entry | claim | objection
    record: object  # the LedgerEntry, Decision or Objection it tells about
    unread: bool


def _household_of(user: User) -> int | None:
    resident = db.session.get(Resident, user.resident_id) if user.resident_id else None
    return resident.household_id if resident else None


def _since(user: User) -> datetime:
    return user.messages_seen_at or user.created_at


def _sources(user: User):
    """(kind, time column, query) of each kind of message for this villager."""
    household_id = _household_of(user)
    entries = select(LedgerEntry).where(
        LedgerEntry.household_id == household_id, LedgerEntry.kind != "opening"
    )
    claims = (
        select(Decision)
        .join(Proposal, Proposal.id == Decision.proposal_id)
        .where(
            Proposal.created_by_id == user.id,
            Proposal.source == "claim",
            Decision.outcome != "defer",
        )
    )
    answers = select(Objection).where(
        Objection.user_id == user.id, Objection.resolved_at.is_not(None)
    )
    return [
        ("entry", LedgerEntry.created_at, entries),
        ("claim", Decision.decided_at, claims),
        ("objection", Objection.resolved_at, answers),
    ]


def unread_count(user: User) -> int:
    since = _since(user)
    total = 0
    for _kind, at, q in _sources(user):
        total += db.session.scalar(select(func.count()).select_from(q.where(at > since).subquery()))
    return total


def messages(user: User) -> list[Message]:
    since = _since(user)
    found = []
    for kind, at, q in _sources(user):
        for record in db.session.scalars(q.order_by(at.desc()).limit(LIMIT)):
            when = getattr(record, at.key)
            found.append(Message(when, kind, record, when > since))
    found.sort(key=lambda m: m.at, reverse=True)
    return found[:LIMIT]
