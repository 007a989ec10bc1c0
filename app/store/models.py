"""Venues, items, stock, gifts, redemptions and used pay codes (the rewards store)."""

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..database import utcnow
from ..extensions import db

VENUE_KINDS = ("supermarket", "canteen")
SLOTS = ("breakfast", "lunch", "dinner")


class Venue(db.Model):
    """A love supermarket or a happiness canteen of one village (兑换点)."""

    __tablename__ = "venue"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # supermarket | canteen
    name: Mapped[str] = mapped_column(String(60))
    hours: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    items: Mapped[list["Item"]] = relationship(back_populates="venue", order_by="Item.id")


class Item(db.Model):
    """Goods (with stock) or a meal (with a slot and a per-resident daily limit)."""

    __tablename__ = "store_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venue.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    points: Mapped[int]  # price; for a meal the price below the first age tier
    unit: Mapped[str] = mapped_column(String(10), default="")
    active: Mapped[bool] = mapped_column(default=True)
    stock: Mapped[int | None]  # goods only; never below zero
    low_stock: Mapped[int] = mapped_column(default=5)  # the venue page warns at or below this
    slot: Mapped[str | None] = mapped_column(String(10))  # meals only: breakfast | lunch | dinner
    daily_limit: Mapped[int | None]  # meals only: per resident per slot per day
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photo.id"))  # in the database
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    venue: Mapped[Venue] = relationship(back_populates="items")

    @property
    def is_meal(self) -> bool:
        return self.slot is not None

    @property
    def is_low(self) -> bool:
        return self.stock is not None and self.stock <= self.low_stock


class StockMove(db.Model):
    """Stock taken in (bought or donated) or corrected, with who and why. Redemptions and voids
    change stock through their own lines."""

    __tablename__ = "stock_move"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("store_item.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # intake | donation | correction
    qty: Mapped[int]  # signed
    stock_after: Mapped[int]
    donor: Mapped[str] = mapped_column(String(60), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    item = relationship("Item")
    user = relationship("User")


class Gift(db.Model):
    """Produce or firewood given to a venue and credited to the giver's household as points."""

    __tablename__ = "store_gift"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venue.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    description: Mapped[str] = mapped_column(String(120))
    points: Mapped[int]
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    household = relationship("Household")


class Redemption(db.Model):
    """One counter transaction (兑换单): lines, total, clerk, household and the member who took
    the goods. `request_id` makes a retried submission return the first one."""

    __tablename__ = "redemption"
    __table_args__ = (
        UniqueConstraint("village_id", "request_id"),
        Index("ix_redemption_household_day", "household_id", "day"),
        Index("ix_redemption_resident_day", "resident_id", "day"),
        Index("ix_redemption_venue_id", "venue_id", "id"),
        # A day's redemptions of a village (the offline list: what was spent and eaten today).
        Index("ix_redemption_village_day", "village_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venue.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    clerk_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    request_id: Mapped[str] = mapped_column(String(64))
    # What the request asked for (sha256): the same request_id with another body is refused.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))  # card | paycode
    total: Mapped[int]
    balance_after: Mapped[int]
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))  # none if free
    day: Mapped[date] = mapped_column(Date)  # the village's local day (China time)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    voided_at: Mapped[datetime | None]
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    void_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))
    # Recorded offline at a counter and synced later (app/offline): when the clerk confirmed it
    # on the device (created_at is when it was synced), the receipt number the device printed,
    # and how far it took the balance below zero (0: not at all).
    occurred_at: Mapped[datetime | None]
    receipt_no: Mapped[str | None] = mapped_column(String(40))
    overdraft: Mapped[int] = mapped_column(default=0, server_default="0")

    lines: Mapped[list["RedemptionLine"]] = relationship(
        back_populates="redemption", order_by="RedemptionLine.id"
    )
    household = relationship("Household")
    resident = relationship("Resident")
    venue = relationship("Venue")
    clerk = relationship("User", foreign_keys=[clerk_id])


class RedemptionLine(db.Model):
    __tablename__ = "redemption_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    redemption_id: Mapped[int] = mapped_column(ForeignKey("redemption.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("store_item.id"))
    name: Mapped[str] = mapped_column(String(60))
    qty: Mapped[int]
    points: Mapped[int]  # unit price charged (after any age tier)
    slot: Mapped[str | None] = mapped_column(String(10))

    redemption: Mapped[Redemption] = relationship(back_populates="lines")


class PayCode(db.Model):
    """A resident's pay code (动态码), issued by the server when the phone shows it. Accepted until
    `expires_at`, or until `held_until` once a counter looked it up; `used_at` is set by the one
    redemption that uses it (a conditional update, so two clerks cannot both use it). Nothing
    points at a pay code, so housekeeping may delete old ones."""

    __tablename__ = "pay_code"
    __table_args__ = (Index("ix_pay_code_resident", "resident_id", "issued_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(18), unique=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    held_until: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
