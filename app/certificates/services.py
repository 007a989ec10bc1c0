"""Points certificates (积分证明): issued, verified, revoked.

A certificate freezes what it states (household, head, balance, points earned in each of the last
three years, stars, rank, date) in `figures` and signs them, with its serial and village, by an
HMAC of the app's secret key. Verification recomputes the signature from the stored row: a figure
or serial changed in the database after issue shows as not genuine. The serial is 80 random bits
(16 characters of Crockford's base 32), so nobody finds a valid one by trying; lookups of
unknown serials are also limited per client address (see views).
"""

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..audit import record
from ..database import transaction, utcnow
from ..errors import InvalidInput, NotFound
from ..extensions import db
from ..households.models import Household
from ..ledger.models import HouseholdRank, HouseholdYear
from ..ledger.services import LOCAL_TZ, local_year
from ..villages.models import Village
from ..villages.settings import stars_for
from .models import Certificate

YEARS = 3


# Crockford's base 32: no I, L, O or U, so a serial read off paper has no 1/I/L or 0/O to confuse.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_serial() -> str:
    """16 characters of 5 random bits each: 80 bits."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def normalise_serial(text: str) -> str:
    """As typed from paper: case, spaces and dashes don't matter; O is 0, I and L are 1."""
    raw = "".join(c for c in (text or "").upper() if c.isalnum()).translate(LOOKALIKES)[:16]
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def _sign(village_code: str, serial: str, figures: dict) -> str:
    message = json.dumps(
        {"v": village_code, "s": serial, "f": figures}, sort_keys=True, ensure_ascii=False
    ).encode()
    key = ("certificate:" + current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def figures_for(household: Household, now: datetime) -> dict:
    """What a certificate states, read from stored rows (balance, per-year earned, rank): the
    same figures the household's own page shows."""
    village = db.session.get(Village, household.village_id)
    year = local_year(now)
    years = list(range(year - YEARS + 1, year + 1))
    earned = dict(
        db.session.execute(
            select(HouseholdYear.year, HouseholdYear.earned).where(
                HouseholdYear.household_id == household.id, HouseholdYear.year.in_(years)
            )
        ).all()
    )
    ranked = db.session.get(HouseholdRank, household.id)
    if ranked is not None and ranked.year != year:
        ranked = None
    return {
        "village": village.name,
        "number": household.number,
        "head": household.head_name,
        "balance": household.balance,
        "earned": [[y, earned.get(y, 0)] for y in years],
        "stars": stars_for(earned.get(year, 0), village.star_thresholds or []),
        "rank": ranked.rank if ranked else None,
        "ranked_of": ranked.of if ranked else None,
        "date": (now + LOCAL_TZ).date().isoformat(),
    }


def issue(village_id: int, household_id: int, actor_id: int | None) -> Certificate:
    """Issue a certificate for a household of the village; recorded in the audit log."""
    with transaction():
        household = db.session.get(Household, household_id)
        if household is None or household.village_id != village_id:
            raise NotFound()
        village = db.session.get(Village, village_id)
        figures = figures_for(household, utcnow())
        serial = new_serial()
        cert = Certificate(
            village_id=village_id,
            household_id=household.id,
            serial=serial,
            figures=figures,
            signature=_sign(village.code, serial, figures),
            issued_by_id=actor_id,
        )
        db.session.add(cert)
        db.session.flush()
        record(
            village_id,
            actor_id,
            "certificate.issue",
            f"certificate:{serial}",
            f"{household.number} {figures['balance']}",
        )
        return cert


def revoke(village_id: int, serial: str, reason: str, actor_id: int | None) -> Certificate:
    from ..text import clean

    reason = clean(reason, _l("Reason"), required=True, max_len=200)
    with transaction():
        cert = db.session.scalar(select(Certificate).where(Certificate.serial == serial))
        if cert is None or cert.village_id != village_id:
            raise NotFound()
        if cert.revoked_at is not None:
            raise InvalidInput(_l("This certificate is already revoked."))
        cert.revoked_at, cert.revoked_by_id, cert.revoke_reason = utcnow(), actor_id, reason
        record(village_id, actor_id, "certificate.revoke", f"certificate:{serial}", reason)
        return cert


@dataclass
class Verdict:
    certificate: Certificate | None
    genuine: bool
    revoked: bool

    @property
    def state(self) -> str:
        if self.certificate is None:
            return "unknown"
        if not self.genuine:
            return "altered"
        return "revoked" if self.revoked else "valid"


def verify(village: Village, serial: str) -> Verdict:
    cert = db.session.scalar(select(Certificate).where(Certificate.serial == serial))
    if cert is None or cert.village_id != village.id:
        return Verdict(None, False, False)
    expected = _sign(village.code, cert.serial, cert.figures)
    return Verdict(cert, hmac.compare_digest(expected, cert.signature), cert.revoked_at is not None)
