"""The audit record: who changed what, and when. Written inside the caller's transaction."""

from .extensions import db
from .villages.models import AuditLog


def record(
    village_id: int | None, user_id: int | None, action: str, target: str = "", detail: str = ""
) -> None:
    db.session.add(
        AuditLog(
            village_id=village_id,
            user_id=user_id,
            action=action,
            target=target[:120],
            detail=detail,
        )
    )
