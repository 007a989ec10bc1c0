"""Evidence photos: checked by content (JPEG, PNG or WebP only), size-limited, resized and
re-encoded as JPEG (which also drops EXIF such as GPS), stored under the instance folder."""

import io
import secrets
import warnings
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidInput

MAX_BYTES = 6 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel picture; beyond that it is refused, not decoded
MAX_SIDE = 1600
FORMATS = {"JPEG", "PNG", "WEBP"}


def folder(village_id: int) -> Path:
    return Path(current_app.instance_path) / "photos" / str(village_id)


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


def save(village_id: int, jpeg: bytes) -> str:
    name = secrets.token_hex(16) + ".jpg"
    path = folder(village_id)
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_bytes(jpeg)
    return name


def path_of(village_id: int, name: str) -> Path:
    return folder(village_id) / name
