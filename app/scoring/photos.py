"""Photos (evidence and items): checked by content (JPEG, PNG or WebP only), size-limited,
resized and re-encoded as JPEG (which also drops EXIF such as GPS), stored in the database.

In the database, not on one server's disk: a second app server on the same PostgreSQL sees every
photo, and a backup of the database holds them. A stored photo is never changed (a new upload is
a new row), so its sha256 is a strong ETag and an address that names its id may be cached.
"""

import hashlib
import io
import warnings
from datetime import datetime

from flask import Response, abort, request
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import ForeignKey, LargeBinary, String, select
from sqlalchemy.orm import Mapped, mapped_column

from ..database import utcnow
from ..errors import InvalidInput
from ..extensions import db

MAX_BYTES = 6 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel picture; beyond that it is refused, not decoded
MAX_SIDE = 1600
FORMATS = {"JPEG", "PNG", "WEBP"}


YEAR = 365 * 24 * 3600


class Photo(db.Model):
    """One stored picture of a village: the bytes, their type and sha256. Proposals and items
    point at it; it is never updated."""

    __tablename__ = "photo"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # read only when served
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def process(data: bytes) -> bytes:
    """Return the JPEG to store. Raises InvalidInput for anything else."""
    if len(data) > MAX_BYTES:
        raise InvalidInput(
            _l("The photo is too large (at most %(mb)s MB)."), mb=MAX_BYTES // (1024 * 1024)
        )
    try:
        with warnings.catch_warnings():
            # Pillow only warns about a decompression bomb below twice its limit: refuse it.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
        with probe:
            fmt = probe.format
            width, height = probe.size
        if fmt not in FORMATS:
            raise InvalidInput(_l("The photo must be a JPEG, PNG or WebP picture."))
        if width * height > MAX_PIXELS:
            raise InvalidInput(_l("The photo has too many pixels."))
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            img.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            img.convert("RGB").save(out, "JPEG", quality=82, optimize=True)
    except InvalidInput:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidInput(_l("The photo has too many pixels.")) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InvalidInput(_l("The photo must be a JPEG, PNG or WebP picture.")) from None
    return out.getvalue()


def save(village_id: int, jpeg: bytes) -> int:
    """Store a checked JPEG (from `process`) inside the caller's transaction; its id."""
    photo = Photo(
        village_id=village_id,
        content_type="image/jpeg",
        sha256=hashlib.sha256(jpeg).hexdigest(),
        size=len(jpeg),
        data=jpeg,
    )
    db.session.add(photo)
    db.session.flush()
    return photo.id


def serve(village_id: int, photo_id: int | None, *, immutable: bool = False) -> Response:
    """The photo as a response, after the caller checked who may see it. `immutable`: the
    address names this photo's id (a new upload gets a new address), so the browser keeps it a
    year; otherwise it asks again each time and gets a 304 while the photo is the same. Always
    `private`: a shared cache must never hand one village's photo to someone else."""
    if photo_id is None:
        abort(404)
    row = db.session.execute(
        select(Photo.data, Photo.content_type, Photo.sha256).where(
            Photo.id == photo_id, Photo.village_id == village_id
        )
    ).one_or_none()
    if row is None:
        abort(404)
    resp = Response(row.data, mimetype=row.content_type)
    resp.set_etag(row.sha256)
    resp.headers["Cache-Control"] = (
        f"private, max-age={YEAR}, immutable" if immutable else "private, no-cache"
    )
    return resp.make_conditional(request)
