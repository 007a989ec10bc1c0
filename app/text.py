"""Text as people type it, made safe to store and to show: one place for every name and note.

Invisible characters are dropped: zero-width spaces and joiners, bidirectional controls (which can
make "王五" display as something else) and every other control or format character, so a name of
only such characters is empty and refused as missing; whitespace (also the ideographic space) is
collapsed. Digits a phone keyboard types full-width (１３８...) are made ASCII where digits are
expected.
"""

import re
import unicodedata

from flask_babel import lazy_gettext as _l

from .errors import InvalidInput

# Bidirectional controls are category Cf too; listed to say why they matter.
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_SPACE = re.compile(r"\s+")


def _visible(c: str, multiline: bool) -> bool:
    if multiline and c in "\r\n\t":
        return True
    return c not in BIDI and unicodedata.category(c) not in ("Cc", "Cf", "Cs")


def clean(value, label, *, required: bool = False, max_len: int = 200, multiline: bool = False):
    """A name, title or note: invisible characters dropped, spaces tidied. Raises InvalidInput
    naming the field when it is required and nothing visible is left, or when it is too long."""
    text = "" if value is None else str(value)
    text = unicodedata.normalize("NFC", "".join(c for c in text if _visible(c, multiline)))
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
