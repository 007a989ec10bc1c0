"""Offline redemptions the server could not honour as they were made (for the village admin)."""

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..database import utcnow
from ..extensions import db

CONFLICT_REASONS = (
    "allowance",
    "card_replaced",
    "archived",
    "no_list",
    "meal_limit",
    "card_cap",
    "other",
)


class OfflineConflict(db.Model):
    """A redemption a counter recorded offline that the sync could not honour: beyond the
    household's offline allowance, for a card reissued before the sale, for an archived
    household, beyond the card's daily cap, for a meal beyond the resident's daily limit.
    Nothing was posted and no stock moved: the admin decides (accept posts it as an offline
    redemption, dismiss writes it off with a reason). The request id is unique per village here
    too, so a replayed sync finds it and records nothing more."""

    __tablename__ = "offline_conflict"
    __table_args__ = (UniqueConstraint("village_id", "request_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venue.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    clerk_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    request_id: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    receipt_no: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(300))  # the card token as scanned (no name in it)
    lines: Mapped[list] = mapped_column(JSON)  # [[item_id, qty], ...] as the counter sent them
    total: Mapped[int]
    reason: Mapped[str] = mapped_column(String(20))  # one of CONFLICT_REASONS
    occurred_at: Mapped[datetime]
    day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # when it was synced
    status: Mapped[str] = mapped_column(String(10), default="open")  # open|accepted|dismissed
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    note: Mapped[str] = mapped_column(String(200), default="")
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemption.id"))

    household = relationship("Household")
    resident = relationship("Resident")
    venue = relationship("Venue")
