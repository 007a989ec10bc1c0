"""Text as people type it, made safe to store and to show: one place for every name and note.

Zero-width characters are dropped (a name of only zero-width characters is empty, so it is
refused as missing); bidirectional controls, which can make "王五" display as something else, and
other control characters are refused; whitespace (also the ideographic space) is collapsed.
Digits a phone keyboard types full-width (１３８...) are made ASCII where digits are expected.
"""

import re
import unicodedata

from flask_babel import lazy_gettext as _l

from .errors import InvalidInput

INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad"))
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_SPACE = re.compile(r"\s+")


def clean(value, label, *, required: bool = False, max_len: int = 200, multiline: bool = False):
    """A name, title or note: invisible characters dropped, controls refused, spaces tidied.
    Raises InvalidInput naming the field."""
    text = "" if value is None else str(value)
    text = unicodedata.normalize("NFC", text.translate(INVISIBLE))
    for c in text:
        if c in BIDI or (
            unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs")
            and not (multiline and c in "\r\n\t")
        ):
            raise InvalidInput(_l("%(field)s contains invisible control characters."), field=label)
    if multiline:
        text = "\n".join(_SPACE.sub(" ", line).strip() for line in text.splitlines()).strip()
    else:
        text = _SPACE.sub(" ", text).strip()
    if required and not text:
        raise InvalidInput(_l("%(field)s is required."), field=label)
    if len(text) > max_len:
        raise InvalidInput(_l("%(field)s is longer than %(n)s characters."), field=label, n=max_len)
    return text


def ascii_digits(value) -> str:
    """Full-width and other Unicode digits as ASCII; spaces, dashes and dots removed (a phone
    written 139-7123-0049 or 139 7123 0049)."""
    text = unicodedata.normalize("NFKC", "" if value is None else str(value))
    return re.sub(r"[\s\-.·]", "", text)
