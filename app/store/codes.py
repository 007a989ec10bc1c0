"""What a QR code holds and how the counter reads it back.

A card token names a household's public id and card version, signed with the app's secret;
reissuing the card bumps the version, so the old token stops working.

A pay code is issued and stored by the server (`PayCode`): an 18-digit number, "8" and 17 random
digits, as hard to guess as a shop's payment code. The QR holds the number inside a signed token
(so a camera scan is checked before the database is asked); the page shows the number for
typing. A code is accepted for ACCEPT_SECONDS after it is issued, or for HOLD_SECONDS after a
counter looked it up (the clerk picking items), and is used up by one redemption. Neither a card
nor a pay code holds a name or a phone number.
"""

import re
import secrets
import unicodedata
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

REFRESH_SECONDS = 20  # the pay code page shows a new code this often
ACCEPT_SECONDS = 60  # a code is accepted this long after it was issued...
HOLD_SECONDS = 300  # ...or this long after a counter's lookup of it
PAY_PREFIX = "8"
PAY_DIGITS = 18  # "8" + 17 random digits: 10^17 numbers
MAX_CODE = 300

_TOKEN_IN_URL = re.compile(r"/q/([A-Za-z0-9_.\-]+)")
_SPACES = re.compile(r"[\s\u3000-]+")


@dataclass(frozen=True)
class Code:
    kind: str  # card | paycode
    household_public_id: str | None = None
    card_version: int | None = None
    number: str | None = None  # a pay code's 18 digits
    signed: bool = True  # False for a pay code typed as a number: a guess is possible


class Unknown(Exception):
    """Not a code this app made (forged, mistyped, or from another install)."""


def _serializer(kind: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"village-points-{kind}")


def card_token(public_id: str, version: int) -> str:
    return _serializer("card").dumps([public_id, version])


def new_pay_number() -> str:
    return PAY_PREFIX + "".join(secrets.choice("0123456789") for _ in range(PAY_DIGITS - 1))


def pay_token(number: str) -> str:
    return _serializer("pay").dumps(["p", number])


def grouped(number: str) -> str:
    """18 digits as an elderly person reads them aloud: 8123 4567 8901 2345 67."""
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def _is_pay_number(text: str) -> bool:
    return len(text) == PAY_DIGITS and text.isascii() and text.isdigit() and text[0] == PAY_PREFIX


def parse(text: str) -> Code:
    """Read a token, a `/q/<token>` URL or a typed pay code number (spaces allowed). Raises
    Unknown. Whether a pay code is still valid is the database's to say (see services)."""
    text = (text or "").strip()
    if not text or len(text) > MAX_CODE:
        raise Unknown()
    # A clerk's Chinese keyboard may type full-width digits (８１２３...).
    text = unicodedata.normalize("NFKC", text)
    digits = _SPACES.sub("", text)
    if digits.isdigit():
        if not _is_pay_number(digits):
            raise Unknown()
        return Code("paycode", number=digits, signed=False)
    m = _TOKEN_IN_URL.search(text)
    token = m.group(1) if m else text
    for kind in ("card", "pay"):
        try:
            payload = _serializer(kind).loads(token)
        except BadSignature:
            continue
        if not (isinstance(payload, list) and len(payload) == 2):
            raise Unknown()
        a, b = payload
        if kind == "card" and isinstance(a, str) and isinstance(b, int):
            return Code("card", household_public_id=a, card_version=b)
        if kind == "pay" and a == "p" and isinstance(b, str) and _is_pay_number(b):
            return Code("paycode", number=b)
        raise Unknown()
    raise Unknown()
