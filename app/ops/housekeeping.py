"""`flask housekeeping`: delete rows that only ever mattered for minutes or hours, so that traffic
that leaves no record (pay codes shown and never used, wrong passwords, sessions nobody signed
out of) does not make the database grow for ever.

- pay codes (`pay_code`): once no longer accepted (past `expires_at` and any `held_until`) and
  older than PAY_CODE_RETENTION_DAYS. A redemption keeps its own record; nothing points at a pay
  code.
- attempt counters (`login_throttle`): when their window started more than
  THROTTLE_RETENTION_DAYS ago and no lock is running. Every window is minutes long, so such a
  counter would start again from zero anyway.
- sessions (`user_session`): SESSION_RETENTION_DAYS after they expired (an expired session is
  already refused at sign-in; the row only says the browser existed).
- import previews (`import_batch` still in `preview`): IMPORT_PREVIEW_RETENTION_DAYS after the
  file was checked and never confirmed (a confirmed import stays: it is what stops the same file
  being imported twice).

Ledger entries, redemptions and audit records are never touched. The retentions are shown to
village admins on the settings page.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, or_

from ..auth.models import LoginThrottle, UserSession
from ..database import transaction, utcnow
from ..extensions import db
from ..households.models import ImportBatch
from ..store.models import PayCode


@dataclass(frozen=True)
class Retention:
    pay_code_days: int
    throttle_days: int
    session_days: int
    import_preview_days: int


def retention() -> Retention:
    c = current_app.config
    return Retention(
        c["PAY_CODE_RETENTION_DAYS"],
        c["THROTTLE_RETENTION_DAYS"],
        c["SESSION_RETENTION_DAYS"],
        c["IMPORT_PREVIEW_RETENTION_DAYS"],
    )


def run(now: datetime | None = None) -> dict[str, int]:
    """Delete what is past its retention; how many rows of each table went."""
    now = now or utcnow()
    keep = retention()
    deleted = {}
    with transaction():
        cutoff = now - timedelta(days=keep.pay_code_days)
        deleted["pay_code"] = db.session.execute(
            delete(PayCode).where(
                PayCode.expires_at < cutoff,
                or_(PayCode.held_until.is_(None), PayCode.held_until < cutoff),
            )
        ).rowcount
        cutoff = now - timedelta(days=keep.throttle_days)
        deleted["login_throttle"] = db.session.execute(
            delete(LoginThrottle).where(
                LoginThrottle.window_start < cutoff,
                or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
            )
        ).rowcount
        cutoff = now - timedelta(days=keep.session_days)
        deleted["user_session"] = db.session.execute(
            delete(UserSession).where(UserSession.expires_at < cutoff)
        ).rowcount
        cutoff = now - timedelta(days=keep.import_preview_days)
        deleted["import_batch"] = db.session.execute(
            delete(ImportBatch).where(
                ImportBatch.status == "preview", ImportBatch.created_at < cutoff
            )
        ).rowcount
    return deleted
