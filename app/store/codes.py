"""What a QR code holds and how the counter reads it back.

A card token names a household's public id and card version; reissuing the card bumps the
version, so the old token stops working. A pay code names a resident and a 20-second window; it
is accepted at a scan for about 60 s and is used up by the redemption that follows (see
`UsedPayCode`). Both are signed with the app's secret; neither holds a name or a phone number.
The numeric fallback code is the resident id followed by six digits of an HMAC over the resident
and the window, so it can be typed and checked without storing anything.
"""

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

WINDOW = 20  # seconds: a pay code's page shows a new code every window
SCAN_WINDOWS = 3  # a code is accepted at a scan in its own window and the two after (40-60 s)
REDEEM_WINDOWS = 30  # ...and at the redemption that follows, for 10 minutes
DIGITS = 6
MAX_CODE = 300

_TOKEN_IN_URL = re.compile(r"/q/([A-Za-z0-9_.\-]+)")


@dataclass(frozen=True)
class Code:
    kind: str  # card | paycode
    household_public_id: str | None = None
    card_version: int | None = None
    resident_id: int | None = None
    window: int | None = None

    @property
    def code_id(self) -> str:
        return f"{self.resident_id}:{self.window}"


class Unknown(Exception):
    """Not a code this app made (forged, mistyped, or from another install)."""


def _serializer(kind: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"village-points-{kind}")


def window_now(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // WINDOW)


def card_token(public_id: str, version: int) -> str:
    return _serializer("card").dumps([public_id, version])


def pay_token(resident_id: int, window: int) -> str:
    return _serializer("pay").dumps([resident_id, window])


def pay_number(resident_id: int, window: int) -> str:
    mac = hmac.new(
        current_app.config["SECRET_KEY"].encode(),
        f"pay:{resident_id}:{window}".encode(),
        hashlib.sha256,
    ).digest()
    return f"{resident_id}{int.from_bytes(mac[:8], 'big') % 10**DIGITS:0{DIGITS}d}"


def seconds_left(window: int, now: float | None = None) -> int:
    """How long the code of `window` is still accepted at a scan."""
    end = (window + SCAN_WINDOWS) * WINDOW
    return max(0, int(end - (time.time() if now is None else now)))


def parse(text: str, now: float | None = None) -> Code:
    """Read a token, a `/q/<token>` URL or a numeric pay code. Raises Unknown. The caller
    checks the window's age (see `age`)."""
    text = (text or "").strip()
    if not text or len(text) > MAX_CODE:
        raise Unknown()
    if text.isdigit():
        return _parse_number(text, now)
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
        if kind == "pay" and isinstance(a, int) and isinstance(b, int):
            return Code("paycode", resident_id=a, window=b)
        raise Unknown()
    raise Unknown()


def _parse_number(text: str, now: float | None) -> Code:
    if len(text) <= DIGITS or len(text) > DIGITS + 12 or text[0] == "0":
        raise Unknown()
    resident_id = int(text[:-DIGITS])
    current = window_now(now)
    # The newest window first: one clock tick ahead of us is still fine.
    for w in range(current + 1, current - REDEEM_WINDOWS - 1, -1):
        if hmac.compare_digest(pay_number(resident_id, w), text):
            return Code("paycode", resident_id=resident_id, window=w)
    raise Unknown()


def age(code: Code, now: float | None = None) -> int:
    """How many windows ago a pay code was made (0 = this window; -1 = a tick ahead)."""
    return window_now(now) - (code.window or 0)
