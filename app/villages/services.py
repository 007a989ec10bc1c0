"""Villages, their first admin, and their settings (every change audited)."""

import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..audit import record
from ..auth.services import create_user
from ..database import transaction
from ..errors import InvalidInput, NotFound
from ..extensions import db
from ..text import clean
from .models import Village
from .settings import OFFLINE_CAP_MAX, OFFLINE_CAP_RANGE, SETTINGS, format_value

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


def create_village(
    code: str, name: str, admin_username: str, admin_password: str, actor_id: int | None
) -> Village:
    """A village and its first village admin, in one transaction."""
    code = (code or "").strip().lower()
    if not CODE_RE.match(code):
        raise InvalidInput(_l("The village code uses 2 to 40 lowercase letters, digits or -."))
    name = clean(name, _l("Village name"), required=True, max_len=100)
    with transaction():
        if db.session.scalar(select(Village.id).where(Village.code == code)):
            raise InvalidInput(_l("The village code %(code)s is already used."), code=code)
        village = Village(code=code, name=name)
        db.session.add(village)
        try:
            db.session.flush()
        except IntegrityError:  # another request took the code after the check above
            raise InvalidInput(
                _l("The village code %(code)s is already used."), code=code
            ) from None
        create_user(
            village_id=village.id,
            role="village_admin",
            username=admin_username,
            password=admin_password,
            display_name=name,
            actor_id=actor_id,
        )
        record(village.id, actor_id, "village.create", f"village:{village.id}", code)
        return village


def update_settings(village_id: int, values: dict, actor_id: int) -> list[str]:
    """Apply parsed setting values; record each change (who, when, old, new). Returns the
    names that changed."""
    unknown = set(values) - set(SETTINGS)
    if unknown:
        raise InvalidInput(_l("Unknown setting."))
    if "notice_days" in values and not 1 <= values["notice_days"] <= 60:
        raise InvalidInput(_l("The notice period is 1 to 60 days."))
    if "notice_public_days" in values and not 0 <= values["notice_public_days"] <= 365:
        raise InvalidInput(_l("A decision stays public 0 to 365 days after its notice."))
    if "offline_daily_cap" in values and not 0 <= values["offline_daily_cap"] <= OFFLINE_CAP_MAX:
        raise InvalidInput(OFFLINE_CAP_RANGE)
    if "card_daily_cap" in values and not 0 <= values["card_daily_cap"] <= 1_000_000:
        raise InvalidInput(_l("The card's daily cap is 0 to 1000000 points."))
    with transaction():
        village = db.session.get(Village, village_id)
        if village is None:
            raise NotFound()
        changed = []
        for name, new in values.items():
            old = getattr(village, name)
            if old != new:
                setattr(village, name, new)
                record(
                    village_id,
                    actor_id,
                    "settings.change",
                    name,
                    f"{format_value(old)} → {format_value(new)}",
                )
                changed.append(name)
        return changed
