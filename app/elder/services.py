"""The 长辈版 choice of one user (MIIT 2021 elderly-friendly design: text size adjustable in the
app, a visible entry to the elder version on every page)."""

from ..auth.models import User
from ..database import transaction
from ..errors import NotFound
from ..extensions import db


def set_elder_mode(user_id: int, on: bool) -> None:
    """Turn 长辈版 on or off for the user; the offer made at first sign-in counts as answered.

    Raises NotFound for an unknown user."""
    with transaction():
        user = db.session.get(User, user_id)
        if user is None:
            raise NotFound()
        user.elder_mode = on
        user.elder_offered = True
