from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..database import utcnow
from ..extensions import db


class Certificate(db.Model):
    """A points certificate (积分证明) as issued: the figures it states are frozen in `figures`
    and signed with the app's secret (`signature`), so a changed figure or serial is detected.
    Never deleted; revoking keeps the row and says when and why."""

    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    figures: Mapped[dict] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(String(64))
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    revoke_reason: Mapped[str] = mapped_column(String(200), default="")
