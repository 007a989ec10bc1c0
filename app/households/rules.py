"""Shape rules for household and resident data, shared by forms, the import and the API."""

import re
from datetime import date

from flask_babel import lazy_gettext as _l

from ..errors import InvalidInput
from ..text import ascii_digits, clean

PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")
NUMBER_RE = re.compile(r"^[0-9A-Za-z-]{1,20}$")


def clean_text(value, field_label, *, required: bool, max_len: int) -> str:
    return clean(value, field_label, required=required, max_len=max_len)


def clean_number(value) -> str:
    text = clean_text(value, _l("Household number"), required=True, max_len=20)
    if text.endswith(".0") and text[:-2].isdigit():  # Excel turns 12 into 12.0
        text = text[:-2]
    if not NUMBER_RE.match(text):
        raise InvalidInput(_l("The household number uses digits, letters or - (at most 20)."))
    return text


def clean_phone(value) -> str | None:
    # A login phone is a username: full-width digits would make one nobody can type.
    text = ascii_digits(value)
    if text.endswith(".0"):
        text = text[:-2]
    if not text:
        return None
    if not PHONE_RE.match(text):
        raise InvalidInput(_l("%(value)s is not an 11-digit mobile number."), value=text)
    return text


def clean_birth_year(value) -> int | None:
    text = "" if value is None else str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    if not text:
        return None
    if not text.isdigit() or not 1900 <= int(text) <= date.today().year:
        raise InvalidInput(_l("%(value)s is not a birth year."), value=text)
    return int(text)


def clean_points(value) -> int:
    text = "" if value is None else str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    if not text:
        return 0
    try:
        points = int(text)
    except ValueError:
        raise InvalidInput(_l("%(value)s is not a whole number of points."), value=text) from None
    if abs(points) > 1_000_000:
        raise InvalidInput(_l("%(value)s points is too large."), value=text)
    return points
