from datetime import datetime

from ..auth.models import User
from ..database import transaction, utcnow
from ..errors import NotFound
from ..extensions import db


def mark_seen(user_id: int, now: datetime | None = None) -> None:
    """Every message up to now has been read (the list was opened). Raises NotFound."""
    with transaction():
        user = db.session.get(User, user_id)
        if user is None:
            raise NotFound()
        user.messages_seen_at = now or utcnow()
