import secrets
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..database import utcnow
from ..extensions import db


def new_public_id() -> str:
    return secrets.token_urlsafe(9)


class Household(db.Model):
    """The points account (户). Its balance is written only by ledger.services."""

    __tablename__ = "household"
    __table_args__ = (
        UniqueConstraint("village_id", "number"),
        # The list and its searches: each reads one of these in the order it shows.
        Index("ix_household_village_status_number", "village_id", "status", "number"),
        Index("ix_household_village_status_head", "village_id", "status", "head_name", "number"),
        Index("ix_household_village_group", "village_id", "group_name", "status", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    public_id: Mapped[str] = mapped_column(String(16), unique=True, default=new_public_id)
    number: Mapped[str] = mapped_column(String(20))  # 户号
    head_name: Mapped[str] = mapped_column(String(50))
    group_name: Mapped[str] = mapped_column(String(50), default="")  # 村民小组
    address: Mapped[str] = mapped_column(String(200), default="")
    # A landline or any number to reach the household: not a login (a login phone is a mobile,
    # kept on the resident).
    contact_phone: Mapped[str] = mapped_column(String(30), default="", server_default="")
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | archived
    balance: Mapped[int] = mapped_column(default=0)
    card_version: Mapped[int] = mapped_column(default=1)
    card_pin_hash: Mapped[str | None] = mapped_column(String(256))  # 4-digit card PIN, hashed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    residents: Mapped[list["Resident"]] = relationship(
        back_populates="household", order_by="Resident.id"
    )

    @property
    def active(self) -> bool:
        return self.status == "active"


class Resident(db.Model):
    """A member of a household; may have a phone login (a villager user)."""

    __tablename__ = "resident"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(20))
    birth_year: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    household: Mapped[Household] = relationship(back_populates="residents")


class ImportBatch(db.Model):
    """A checked import file waiting for the admin's confirmation, then the record that it was
    imported. Keyed by the file's SHA-256 within the village: the same file confirmed twice is
    written once, and the confirmation writes exactly the rows the preview showed (stored here,
    not parsed again)."""

    __tablename__ = "import_batch"
    __table_args__ = (UniqueConstraint("village_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200), default="")
    rows: Mapped[list] = mapped_column(JSON, default=list)  # the households to write
    status: Mapped[str] = mapped_column(String(10), default="preview")  # preview | imported
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_at: Mapped[datetime | None]
