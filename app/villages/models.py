from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..database import utcnow
from ..extensions import db

GENESIS_HASH = "0" * 64


class Village(db.Model):
    """The tenant: every other record belongs to exactly one village."""

    __tablename__ = "village"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Settings (see villages/settings.py for meaning, defaults and validation).
    notice_days: Mapped[int] = mapped_column(default=5)
    star_thresholds: Mapped[list] = mapped_column(JSON, default=lambda: [50, 100, 200, 300, 500])
    card_pin_required: Mapped[bool] = mapped_column(default=False)
    card_daily_cap: Mapped[int] = mapped_column(default=500)
    meal_age_tiers: Mapped[list] = mapped_column(JSON, default=lambda: [[60, 5], [70, 3], [80, 0]])
    gifts_earn_points: Mapped[bool] = mapped_column(default=False)
    notice_show_names: Mapped[bool] = mapped_column(default=True)
    # After its notice period a decision stays public this many days, then only the village's own
    # users see it (a cancelled one is never public).
    notice_public_days: Mapped[int] = mapped_column(default=30, server_default="30")
    # Most points a household may redeem per day at a counter that is offline (0: offline
    # redemptions are off); see app/offline.
    offline_daily_cap: Mapped[int] = mapped_column(default=100, server_default="100")

    # Head of the village's hash-chained ledger. The ledger service locks this row for every
    # append, which serialises a village's ledger writes on PostgreSQL.
    ledger_seq: Mapped[int] = mapped_column(default=0)
    ledger_head: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)


class AuditLog(db.Model):
    """Who did what and when: settings changes, adjustments, user management."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
