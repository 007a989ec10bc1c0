from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..database import utcnow
from ..extensions import db

KINDS = ("opening", "award", "deduct", "redeem", "reverse", "adjust")


class LedgerEntry(db.Model):
    """One signed change of a household's balance (积分流水). Never updated, never deleted."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        UniqueConstraint("village_id", "seq"),
        # The same request (a retry, a replayed sync, a notice posted twice) is recorded once.
        UniqueConstraint("village_id", "key"),
        Index("ix_ledger_entry_household_id_id", "household_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    seq: Mapped[int]  # position in the village's chain, 1, 2, 3...
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int]
    balance_after: Mapped[int]
    reason: Mapped[str] = mapped_column(String(300))
    ref: Mapped[str] = mapped_column(String(80), default="")  # e.g. "decision:12", "redemption:7"
    key: Mapped[str | None] = mapped_column(String(80))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    household = relationship("Household")
    created_by = relationship("User")


class HouseholdYear(db.Model):
    """Points a household *earned* in a year (awards, deductions, adjustments and their
    reversals; never redemptions), kept by the ledger service beside each entry so star ratings
    and ranks are read, not summed."""

    __tablename__ = "household_year"
    __table_args__ = (
        UniqueConstraint("household_id", "year"),
        Index("ix_household_year_rank", "village_id", "year", "earned"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    year: Mapped[int]
    earned: Mapped[int] = mapped_column(default=0)


class HouseholdRank(db.Model):
    """A household's rank in its village by points earned in `year`, as of `computed_at`.

    Counting the households above one on every page view grows with the village (33,000 rows
    for a mid-ranked household of 100,000), so ranks are computed for the whole village at once
    when points post (`flask notices post`, daily) and read by primary key; pages show the time
    they are as of. Every active household is ranked, those with no points or a negative year
    too, by standard competition ranking (1, 2, 2, 4)."""

    __tablename__ = "household_rank"

    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    year: Mapped[int]
    rank: Mapped[int]
    of: Mapped[int]  # how many households were ranked
    earned: Mapped[int]
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerCheckpoint(db.Model):
    """Where `flask ledger verify` last found a village's chain sound: the next run starts
    there (and first checks that this entry still hashes the same)."""

    __tablename__ = "ledger_checkpoint"

    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64), default="")
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)
    full_verified_at: Mapped[datetime | None]
