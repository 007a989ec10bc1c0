"""Scoring: the rule catalogue, proposals, meetings and their decisions, the notice board and
objections. Points reach the ledger only through `services.post_due` (and `adjust`)."""

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..database import utcnow
from ..extensions import db


class Rule(db.Model):
    """A scoring item (积分细则). Editing it never changes a decision already taken: decisions
    and notice items keep the title and points they were made with."""

    __tablename__ = "scoring_rule"
    __table_args__ = (Index("ix_scoring_rule_village", "village_id", "active", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    category: Mapped[str] = mapped_column(String(20))  # a code of rules.CATEGORIES
    title: Mapped[str] = mapped_column(String(100))
    points: Mapped[int]  # + award, - deduction
    cap_count: Mapped[int | None]  # at most this many times per household ...
    cap_period: Mapped[str | None] = mapped_column(String(5))  # ... per "month" or "year"
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Meeting(db.Model):
    """A 道德文明评议会: decides the proposals on its agenda; closing freezes it."""

    __tablename__ = "scoring_meeting"
    __table_args__ = (Index("ix_scoring_meeting_village", "village_id", "held_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    held_on: Mapped[date]
    title: Mapped[str] = mapped_column(String(100))
    attendees: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | closed
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    notice_until: Mapped[datetime | None]

    @property
    def is_open(self) -> bool:
        return self.status == "open"


class Proposal(db.Model):
    """A request to award or deduct a rule's points for one or many households (积分申报),
    by a scorer or a villager's claim. It waits for a meeting's agenda (`meeting_id`)."""

    __tablename__ = "scoring_proposal"
    __table_args__ = (
        Index("ix_scoring_proposal_status", "village_id", "status", "id"),
        Index("ix_scoring_proposal_meeting", "meeting_id", "id"),
        Index("ix_scoring_proposal_claimant", "created_by_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("scoring_rule.id"))
    occurred_on: Mapped[date]
    note: Mapped[str] = mapped_column(String(500), default="")
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photo.id"))  # evidence (in `photo`)
    source: Mapped[str] = mapped_column(String(10), default="scorer")  # scorer | claim
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id"))
    # pending (waiting or on an agenda) | approved | rejected
    status: Mapped[str] = mapped_column(String(10), default="pending")
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("scoring_meeting.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    rule: Mapped[Rule] = relationship()
    resident = relationship("Resident")
    created_by = relationship("User", foreign_keys=[created_by_id])
    households: Mapped[list["ProposalHousehold"]] = relationship(
        order_by="ProposalHousehold.id", cascade="all, delete-orphan"
    )


class ProposalHousehold(db.Model):
    __tablename__ = "scoring_proposal_household"
    __table_args__ = (
        UniqueConstraint("proposal_id", "household_id"),
        Index("ix_scoring_proposal_household_h", "household_id", "proposal_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("scoring_proposal.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))

    household = relationship("Household")


class Decision(db.Model):
    """What a meeting decided about one proposal. It keeps the rule's title and the points it
    was decided with. Changeable while the meeting is open, frozen when it closes."""

    __tablename__ = "scoring_decision"
    __table_args__ = (UniqueConstraint("meeting_id", "proposal_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    meeting_id: Mapped[int] = mapped_column(ForeignKey("scoring_meeting.id"))
    proposal_id: Mapped[int] = mapped_column(ForeignKey("scoring_proposal.id"))
    outcome: Mapped[str] = mapped_column(String(10))  # approve | reject | defer
    points: Mapped[int]  # per household, signed
    rule_title: Mapped[str] = mapped_column(String(100))
    rule_points: Mapped[int]
    reason: Mapped[str] = mapped_column(String(300), default="")
    votes_for: Mapped[int | None]
    votes_against: Mapped[int | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)

    proposal: Mapped[Proposal] = relationship()


class NoticeItem(db.Model):
    """One household's line of an approved decision (公示项): under notice once the meeting
    closes, then posted to the ledger exactly once, or cancelled by an upheld objection."""

    __tablename__ = "scoring_notice_item"
    __table_args__ = (
        UniqueConstraint("decision_id", "household_id"),
        Index("ix_scoring_notice_due", "village_id", "status", "notice_until"),
        Index("ix_scoring_notice_cap", "household_id", "rule_id", "occurred_on"),
        Index("ix_scoring_notice_entry", "ledger_entry_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    decision_id: Mapped[int] = mapped_column(ForeignKey("scoring_decision.id"))
    meeting_id: Mapped[int] = mapped_column(ForeignKey("scoring_meeting.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("scoring_rule.id"))
    rule_title: Mapped[str] = mapped_column(String(100))
    points: Mapped[int]
    occurred_on: Mapped[date]
    # approved (meeting still open) | notice | posted | cancelled
    status: Mapped[str] = mapped_column(String(10), default="approved")
    notice_from: Mapped[datetime | None]
    notice_until: Mapped[datetime | None]
    ledger_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))
    posted_at: Mapped[datetime | None]

    household = relationship("Household")
    meeting: Mapped[Meeting] = relationship()
    decision: Mapped[Decision] = relationship()  # its proposal's note and photo explain it


class Objection(db.Model):
    """A villager's challenge (异议) to an item under notice; one per villager per item."""

    __tablename__ = "scoring_objection"
    __table_args__ = (
        UniqueConstraint("item_id", "user_id"),
        Index("ix_scoring_objection_open", "village_id", "status", "id"),
        Index("ix_scoring_objection_user", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("scoring_notice_item.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | upheld | dismissed
    resolution: Mapped[str] = mapped_column(String(300), default="")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    item: Mapped[NoticeItem] = relationship()
    user = relationship("User", foreign_keys=[user_id])


class ChainHead(db.Model):
    """The village ledger's chain head as recorded on a day (by `flask notices post`), shown on
    the public board so anyone can write it down and check it later."""

    __tablename__ = "scoring_chain_head"
    __table_args__ = (UniqueConstraint("village_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    day: Mapped[date]
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))
