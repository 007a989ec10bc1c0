"""Scoring use cases: one public function per user action, one transaction each.

Rules kept here (the CLI, the pages and the tests obey the same ones):
- a proposal names active households and an active rule of its own village;
- a meeting decides only the proposals on its agenda, only while it is open; a rejection and an
  adjustment need a reason; a rule's cap is checked when a proposal is approved;
- closing a meeting freezes it and puts its approved items under notice for the village's notice
  period; deferred proposals go back to wait for another meeting;
- an item under notice may be objected to once per villager; an upheld objection cancels it;
- `post_due` posts each item whose notice ended with no open objection to the ledger exactly once
  (ledger key "decision:<id>:<household>" plus the item's status change in one transaction under
  the village's ledger lock), however many times and processes run it at once.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError

from ..audit import record
from ..auth.models import User
from ..database import transaction, utcnow
from ..errors import DomainError, Forbidden, InvalidInput, NotFound
from ..extensions import db
from ..households.models import Household, Resident
from ..ledger import services as ledger
from ..text import clean
from ..villages.models import Village
from . import photos
from .models import (
    ChainHead,
    Decision,
    Meeting,
    NoticeItem,
    Objection,
    Proposal,
    ProposalHousehold,
    Rule,
)
from .rules import (
    CAP_PERIODS,
    MAX_HOUSEHOLDS,
    check_decision,
    check_occurred_on,
    check_rule,
    local_today,
    period_bounds,
)

MAX_OPEN_CLAIMS = 10  # a villager's claims waiting for a meeting


class CapReached(DomainError):
    code = "cap_reached"
    message = _l(
        "Household %(number)s already has %(count)s of at most %(cap)s for “%(rule)s” %(period)s."
    )


class MeetingClosed(DomainError):
    code = "meeting_closed"
    message = _l("This meeting is closed; its decisions can no longer change.")


class AlreadyObjected(DomainError):
    code = "already_objected"
    message = _l("You have already objected to this item.")


def _get(model, village_id: int, ident, *, lock: bool = False):
    if not isinstance(ident, int):
        raise NotFound()
    q = select(model).where(model.id == ident, model.village_id == village_id)
    if lock:
        q = q.execution_options(populate_existing=True)
    obj = db.session.execute(q).scalar_one_or_none()
    if obj is None:
        raise NotFound()
    return obj


def _text(value, label, *, required: bool, max_len: int) -> str:
    return clean(value, label, required=required, max_len=max_len, multiline=True)


# --- rule catalogue ----------------------------------------------------------------------------


@dataclass
class RuleData:
    category: str
    title: str
    points: int
    cap_count: int | None = None
    cap_period: str | None = None
    active: bool = True


def save_rule(village_id: int, data: RuleData, actor_id: int | None, rule_id: int | None = None):
    """Create or edit a rule. Decisions already taken keep their own title and points."""
    title = (data.title or "").strip()
    check_rule(data.category, title, data.points, data.cap_count, data.cap_period)
    with transaction():
        rule = Rule(village_id=village_id) if rule_id is None else _get(Rule, village_id, rule_id)
        rule.category, rule.title, rule.points = data.category, title, data.points
        rule.cap_count, rule.cap_period, rule.active = data.cap_count, data.cap_period, data.active
        db.session.add(rule)
        db.session.flush()
        record(
            village_id,
            actor_id,
            "rule.create" if rule_id is None else "rule.edit",
            f"rule:{rule.id}",
            f"{title} {data.points:+d}",
        )
        return rule


# --- proposals ---------------------------------------------------------------------------------


def create_proposal(
    village_id: int,
    *,
    household_ids: list[int],
    rule_id: int,
    occurred_on: date | None,
    note: str = "",
    photo: bytes | None = None,
    jpeg: bytes | None = None,
    resident_id: int | None = None,
    actor_id: int | None,
    source: str = "scorer",
    now: datetime | None = None,
) -> Proposal:
    """A proposal for one or many households. Raises InvalidInput / NotFound; writes nothing
    then (a photo is checked before anything is stored; `jpeg` is one already checked)."""
    ids = sorted({i for i in household_ids if isinstance(i, int)})
    if not ids or len(ids) != len(set(household_ids)):
        raise InvalidInput(_l("Choose at least one household."))
    if len(ids) > MAX_HOUSEHOLDS:
        raise InvalidInput(_l("At most %(n)s households in one proposal."), n=MAX_HOUSEHOLDS)
    check_occurred_on(occurred_on, local_today(now or utcnow()))
    note = _text(note, _l("Note"), required=False, max_len=500)
    if photo:
        jpeg = photos.process(photo)
    with transaction():
        rule = _get(Rule, village_id, rule_id)
        if not rule.active:
            raise InvalidInput(_l("This rule is no longer in use."))
        found = db.session.execute(
            select(Household.id, Household.status).where(
                Household.id.in_(ids), Household.village_id == village_id
            )
        ).all()
        if len(found) != len(ids):
            raise NotFound(_l("A chosen household does not exist in this village."))
        if any(status != "active" for _id, status in found):
            raise InvalidInput(_l("An archived household cannot get a proposal."))
        if resident_id is not None:
            resident = _get(Resident, village_id, resident_id)
            if len(ids) != 1 or resident.household_id != ids[0]:
                raise InvalidInput(_l("The resident is not a member of the household."))
        proposal = Proposal(
            village_id=village_id,
            rule_id=rule.id,
            occurred_on=occurred_on,
            note=note,
            source=source,
            resident_id=resident_id,
            created_by_id=actor_id,
            households=[ProposalHousehold(household_id=i) for i in ids],
        )
        if jpeg:
            proposal.photo_id = photos.save(village_id, jpeg)
        db.session.add(proposal)
        db.session.flush()
        return proposal


def create_claim(
    village_id: int,
    user_id: int,
    *,
    rule_id: int,
    occurred_on: date | None,
    note: str = "",
    photo: bytes | None = None,
    now: datetime | None = None,
) -> Proposal:
    """A villager's claim (申报) for the own household. Only award rules may be claimed."""
    user = db.session.get(User, user_id)
    if user is None or user.village_id != village_id or user.role != "villager":
        raise Forbidden()
    resident = db.session.get(Resident, user.resident_id) if user.resident_id else None
    if resident is None or resident.village_id != village_id:
        raise Forbidden()
    rule = _get(Rule, village_id, rule_id)
    if rule.points < 0:
        raise InvalidInput(_l("A claim is for an award, not a deduction."))
    jpeg = photos.process(photo) if photo else None  # before the lock: it takes a while
    with transaction():
        # The count and the insert under one lock: 20 claims sent at once still stop at the limit.
        ledger.lock_village(village_id)
        waiting = db.session.scalar(
            select(func.count(Proposal.id)).where(
                Proposal.created_by_id == user_id, Proposal.status == "pending"
            )
        )
        if waiting >= MAX_OPEN_CLAIMS:
            raise InvalidInput(
                _l("You already have %(n)s claims waiting for a meeting."), n=MAX_OPEN_CLAIMS
            )
        return create_proposal(
            village_id,
            household_ids=[resident.household_id],
            rule_id=rule_id,
            occurred_on=occurred_on,
            note=note,
            jpeg=jpeg,
            resident_id=resident.id,
            actor_id=user_id,
            source="claim",
            now=now,
        )


def may_see_proposal(user, proposal: Proposal) -> bool:
    """Admins and scorers of the village; a villager only for the own household."""
    if user.village_id != proposal.village_id:
        return False
    if user.role in ("village_admin", "scorer"):
        return True
    if user.role == "villager" and user.resident_id:
        resident = db.session.get(Resident, user.resident_id)
        return resident is not None and any(
            ph.household_id == resident.household_id for ph in proposal.households
        )
    return False


# --- meetings ----------------------------------------------------------------------------------


def _open_meeting(village_id: int, meeting_id: int) -> Meeting:
    meeting = _get(Meeting, village_id, meeting_id, lock=True)
    if not meeting.is_open:
        raise MeetingClosed()
    return meeting


def create_meeting(
    village_id: int,
    *,
    held_on: date | None,
    title: str,
    attendees: str = "",
    actor_id: int | None,
    add_pending: bool = True,
) -> Meeting:
    """A new open meeting; with `add_pending`, every proposal waiting for a meeting joins its
    agenda."""
    if held_on is None:
        raise InvalidInput(_l("Enter the meeting's date."))
    title = _text(title, _l("Title"), required=True, max_len=100)
    attendees = _text(attendees, _l("Attendees"), required=False, max_len=2000)
    with transaction():
        meeting = Meeting(
            village_id=village_id,
            held_on=held_on,
            title=title,
            attendees=attendees,
            created_by_id=actor_id,
        )
        db.session.add(meeting)
        db.session.flush()
        if add_pending:
            add_to_agenda(village_id, meeting.id, None, actor_id)
        return meeting


def update_meeting(
    village_id: int, meeting_id: int, *, held_on: date | None, title: str, attendees: str
) -> Meeting:
    if held_on is None:
        raise InvalidInput(_l("Enter the meeting's date."))
    title = _text(title, _l("Title"), required=True, max_len=100)
    attendees = _text(attendees, _l("Attendees"), required=False, max_len=2000)
    with transaction():
        ledger.lock_village(village_id)
        meeting = _open_meeting(village_id, meeting_id)
        meeting.held_on, meeting.title, meeting.attendees = held_on, title, attendees
        return meeting


def add_to_agenda(
    village_id: int, meeting_id: int, proposal_ids: list[int] | None, actor_id: int | None
) -> int:
    """Put waiting proposals (all of them when `proposal_ids` is None) on the agenda."""
    with transaction():
        ledger.lock_village(village_id)
        meeting = _open_meeting(village_id, meeting_id)
        q = (
            update(Proposal)
            .where(
                Proposal.village_id == village_id,
                Proposal.status == "pending",
                Proposal.meeting_id.is_(None),
            )
            .values(meeting_id=meeting.id)
            .execution_options(synchronize_session=False)
        )
        if proposal_ids is not None:
            q = q.where(Proposal.id.in_(proposal_ids))
        return db.session.execute(q).rowcount


def _cap_check(village_id: int, rule: Rule, proposal: Proposal) -> None:
    if rule.cap_count is None:
        return
    start, end = period_bounds(proposal.occurred_on, rule.cap_period)
    for ph in proposal.households:
        count = db.session.scalar(
            select(func.count(NoticeItem.id)).where(
                NoticeItem.household_id == ph.household_id,
                NoticeItem.rule_id == rule.id,
                NoticeItem.occurred_on >= start,
                NoticeItem.occurred_on < end,
                NoticeItem.status != "cancelled",
            )
        )
        if count + 1 > rule.cap_count:
            raise CapReached(
                number=ph.household.number,
                count=count,
                cap=rule.cap_count,
                rule=rule.title,
                period=str(CAP_PERIODS[rule.cap_period]),
            )


def decide(
    village_id: int,
    meeting_id: int,
    proposal_id: int,
    *,
    outcome: str,
    points: int | None = None,
    reason: str = "",
    votes_for: int | None = None,
    votes_against: int | None = None,
    actor_id: int | None,
    now: datetime | None = None,
) -> Decision:
    """Decide one agenda item: approve (points may be adjusted, with a reason), reject (with a
    reason) or defer. May be changed until the meeting closes. Raises CapReached when approving
    would exceed the rule's cap for a household, MeetingClosed, InvalidInput, NotFound."""
    reason = _text(reason, _l("Reason"), required=False, max_len=300)
    with transaction():
        ledger.lock_village(village_id)  # caps are counted and written without interleaving
        meeting = _open_meeting(village_id, meeting_id)
        proposal = _get(Proposal, village_id, proposal_id, lock=True)
        if proposal.meeting_id != meeting.id:
            raise InvalidInput(_l("This proposal is not on the meeting's agenda."))
        rule = proposal.rule
        given = check_decision(outcome, points, rule.points, reason, (votes_for, votes_against))
        decision = db.session.execute(
            select(Decision).where(
                Decision.meeting_id == meeting.id, Decision.proposal_id == proposal.id
            )
        ).scalar_one_or_none()
        if decision is not None:  # a change of mind while the meeting is open
            db.session.execute(
                NoticeItem.__table__.delete().where(NoticeItem.decision_id == decision.id)
            )
        if outcome == "approve":
            _cap_check(village_id, rule, proposal)
        if decision is None:
            decision = Decision(
                village_id=village_id, meeting_id=meeting.id, proposal_id=proposal.id
            )
        decision.outcome, decision.points, decision.reason = outcome, given, reason
        decision.votes_for, decision.votes_against = votes_for, votes_against
        decision.decided_by_id, decision.decided_at = actor_id, now or utcnow()
        decision.rule_title, decision.rule_points = rule.title, rule.points
        db.session.add(decision)
        db.session.flush()
        proposal.status = {"approve": "approved", "reject": "rejected"}.get(outcome, "pending")
        if outcome == "approve":
            for ph in proposal.households:
                db.session.add(
                    NoticeItem(
                        village_id=village_id,
                        decision_id=decision.id,
                        meeting_id=meeting.id,
                        household_id=ph.household_id,
                        rule_id=rule.id,
                        rule_title=rule.title,
                        points=given,
                        occurred_on=proposal.occurred_on,
                    )
                )
        db.session.flush()
        return decision


def decide_all_as_proposed(
    village_id: int, meeting_id: int, actor_id: int | None, now: datetime | None = None
) -> int:
    """Approve every undecided agenda item with its rule's points, in one step: each is still
    recorded as its own decision, by `decide`, in one transaction, so either all of them are
    decided or none (a cap reached names its household and rule). Returns how many."""
    with transaction():
        ledger.lock_village(village_id)
        meeting = _open_meeting(village_id, meeting_id)
        undecided = db.session.scalars(
            select(Proposal.id)
            .where(
                Proposal.meeting_id == meeting.id,
                ~exists().where(
                    Decision.proposal_id == Proposal.id, Decision.meeting_id == meeting.id
                ),
            )
            .order_by(Proposal.id)
        ).all()
        for proposal_id in undecided:
            decide(
                village_id,
                meeting.id,
                proposal_id,
                outcome="approve",
                actor_id=actor_id,
                now=now,
            )
        return len(undecided)


def close_meeting(
    village_id: int, meeting_id: int, actor_id: int | None, now: datetime | None = None
) -> Meeting:
    """Freeze the meeting: approved items go under notice for the village's notice period,
    deferred proposals wait for another meeting. Refused while an agenda item is undecided, and
    before the meeting's own date (its notice period would end before the meeting)."""
    now = now or utcnow()
    with transaction():
        village = ledger.lock_village(village_id)
        meeting = _open_meeting(village_id, meeting_id)
        if meeting.held_on > local_today(now):
            raise InvalidInput(
                _l("This meeting is dated %(date)s: it can be closed on that day or later."),
                date=meeting.held_on.isoformat(),
            )
        undecided = db.session.scalar(
            select(func.count(Proposal.id)).where(
                Proposal.meeting_id == meeting.id,
                ~exists().where(
                    Decision.proposal_id == Proposal.id, Decision.meeting_id == meeting.id
                ),
            )
        )
        if undecided:
            raise InvalidInput(
                _l("%(n)s agenda items are not decided yet: decide or defer each one."),
                n=undecided,
            )
        deferred = select(Decision.proposal_id).where(
            Decision.meeting_id == meeting.id, Decision.outcome == "defer"
        )
        db.session.execute(
            update(Proposal)
            .where(Proposal.id.in_(deferred))
            .values(meeting_id=None, status="pending")
            .execution_options(synchronize_session=False)
        )
        until = now + timedelta(days=village.notice_days)
        db.session.execute(
            update(NoticeItem)
            .where(NoticeItem.meeting_id == meeting.id, NoticeItem.status == "approved")
            .values(status="notice", notice_from=now, notice_until=until)
            .execution_options(synchronize_session=False)
        )
        meeting.status, meeting.closed_at, meeting.closed_by_id = "closed", now, actor_id
        meeting.notice_until = until
        record(village_id, actor_id, "meeting.close", f"meeting:{meeting.id}", meeting.title)
        return meeting


# --- notice, objections, posting ---------------------------------------------------------------


def object_to(
    village_id: int, user_id: int, item_id: int, reason: str, now: datetime | None = None
) -> Objection:
    """A villager's objection to an item under notice: at most one per villager per item."""
    reason = _text(reason, _l("Reason"), required=True, max_len=500)
    now = now or utcnow()
    user = db.session.get(User, user_id)
    if user is None or user.village_id != village_id or user.role != "villager":
        raise Forbidden()
    try:
        with transaction():
            ledger.lock_village(village_id)  # an objection and the item's posting never cross
            item = _get(NoticeItem, village_id, item_id, lock=True)
            if item.status != "notice" or item.notice_until <= now:
                raise InvalidInput(_l("This item is no longer under notice."))
            if db.session.scalar(
                select(Objection.id).where(
                    Objection.item_id == item.id, Objection.user_id == user_id
                )
            ):
                raise AlreadyObjected()
            objection = Objection(
                village_id=village_id, item_id=item.id, user_id=user_id, reason=reason
            )
            db.session.add(objection)
            db.session.flush()
            return objection
    except IntegrityError:  # a double tap: the other request's objection won
        raise AlreadyObjected() from None


def resolve_objection(
    village_id: int,
    objection_id: int,
    *,
    uphold: bool,
    resolution: str,
    actor_id: int | None,
    now: datetime | None = None,
) -> Objection:
    """Uphold (the item is cancelled and never posted; the item's other open objections are
    upheld with it) or dismiss. Refused once the item is posted."""
    resolution = _text(resolution, _l("Reply"), required=True, max_len=300)
    now = now or utcnow()
    with transaction():
        ledger.lock_village(village_id)  # never interleaves with posting the same item
        objection = _get(Objection, village_id, objection_id, lock=True)
        if objection.status != "open":
            raise InvalidInput(_l("This objection is already resolved."))
        item = _get(NoticeItem, village_id, objection.item_id, lock=True)
        if item.status != "notice":
            raise InvalidInput(_l("This item is no longer under notice."))
        targets = [objection]
        if uphold:
            item.status = "cancelled"
            targets = db.session.scalars(
                select(Objection)
                .where(Objection.item_id == item.id, Objection.status == "open")
                .execution_options(populate_existing=True)
            ).all()
        for o in targets:
            o.status = "upheld" if uphold else "dismissed"
            o.resolution, o.resolved_by_id, o.resolved_at = resolution, actor_id, now
        record(
            village_id,
            actor_id,
            "objection.uphold" if uphold else "objection.dismiss",
            f"objection:{objection.id}",
            resolution,
        )
        return objection


def _open_objection(item_id):
    return exists().where(Objection.item_id == item_id, Objection.status == "open")


def post_item(village_id: int, item_id: int, now: datetime | None = None) -> bool:
    """Post one item whose notice ended, if it still waits and has no open objection. The
    status change and the ledger entry commit together under the village's ledger lock, and
    the entry's key makes a second post return the first entry."""
    now = now or utcnow()
    with transaction():
        ledger.lock_village(village_id)
        item = db.session.execute(
            select(NoticeItem)
            .where(
                NoticeItem.id == item_id,
                NoticeItem.village_id == village_id,
                NoticeItem.status == "notice",
                NoticeItem.notice_until <= now,
                ~_open_objection(NoticeItem.id),
            )
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if item is None:
            return False
        meeting = db.session.get(Meeting, item.meeting_id)
        write = ledger.award if item.points > 0 else ledger.deduct
        entry = write(
            village_id,
            item.household_id,
            abs(item.points),
            f"{item.rule_title}（{meeting.title}）",
            None,
            key=f"decision:{item.decision_id}:{item.household_id}",
            ref=f"meeting:{item.meeting_id}/rule:{item.rule_id}",
        )
        item.status, item.ledger_entry_id, item.posted_at = "posted", entry.id, now
        return True


def post_due(now: datetime | None = None, village_id: int | None = None) -> int:
    """Post every item whose notice period ended with no open objection; record each village's
    chain head for the day and rank its households afresh. Returns how many items this run
    posted."""
    now = now or utcnow()
    q = select(NoticeItem.village_id, NoticeItem.id).where(
        NoticeItem.status == "notice",
        NoticeItem.notice_until <= now,
        ~_open_objection(NoticeItem.id),
    )
    if village_id is not None:
        q = q.where(NoticeItem.village_id == village_id)
    due = db.session.execute(q.order_by(NoticeItem.id)).all()
    db.session.rollback()
    posted = sum(1 for vid, iid in due if post_item(vid, iid, now))
    villages = select(Village.id)
    if village_id is not None:
        villages = villages.where(Village.id == village_id)
    for vid in db.session.scalars(villages).all():
        record_head(vid, now)
        ledger.recompute_ranks(vid, now)  # ranks are as of this run (shown with its time)
    return posted


def record_head(village_id: int, now: datetime | None = None) -> ChainHead:
    """Write down today's chain head of the village (the latest run of the day wins)."""
    day = local_today(now or utcnow())
    try:
        with transaction():
            village = ledger.lock_village(village_id)
            head = db.session.execute(
                select(ChainHead).where(ChainHead.village_id == village_id, ChainHead.day == day)
            ).scalar_one_or_none()
            if head is None:
                head = ChainHead(village_id=village_id, day=day)
                db.session.add(head)
            head.seq, head.hash = village.ledger_seq, village.ledger_head
            return head
    except IntegrityError:  # another run recorded it at the same moment
        return db.session.execute(
            select(ChainHead).where(ChainHead.village_id == village_id, ChainHead.day == day)
        ).scalar_one()


# --- direct adjustment -------------------------------------------------------------------------


def adjust(village_id: int, household_id: int, points, reason: str, actor_id: int):
    """A village admin's direct correction: a signed ledger entry with a reason, audited."""
    reason = _text(reason, _l("Reason"), required=True, max_len=300)
    _get(Household, village_id, household_id)
    return ledger.adjust(village_id, household_id, points, reason, actor_id)
