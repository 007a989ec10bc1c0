"""QR images made with `qrcode`: inline SVG for pages and printed cards, PNG for downloads and
for decoding back in tests."""

import io
import warnings

import qrcode
from markupsafe import Markup, escape
from qrcode.constants import ERROR_CORRECT_M


def _qr(data: str) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4, box_size=10)
    qr.add_data(data)
    qr.make(fit=True)
    return qr


def svg(data: str, label: str = "QR") -> Markup:
    """An inline <svg> that scales to its box (sized by CSS), black on white. Each row's runs
    of dark modules become one rectangle, so 40 cards on a page stay small."""
    matrix = _qr(data).get_matrix()  # includes the quiet zone
    size = len(matrix)
    parts = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                parts.append(f"M{start},{y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return Markup(
        f'<svg class="qr" role="img" aria-label="{escape(label)}" viewBox="0 0 {size} {size}" '
        f'xmlns="http://www.w3.org/2000/svg" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path d="{"".join(parts)}" fill="#000"/></svg>'
    )


def png(data: str, box_size: int = 10) -> bytes:
    qr = _qr(data)
    qr.box_size = box_size
    buf = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(buf, format="PNG")
    return buf.getvalue()


MAX_PIXELS = 1600


def decode(data: bytes) -> list[str]:
    """Texts of the QR codes in an image (a photo from the counter). Raises ValueError when the
    bytes are not an image."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow only warns below twice its pixel limit: refuse such a picture too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as e:
        raise ValueError("not an image") from e
    image = image.convert("L")
    if max(image.size) > MAX_PIXELS:  # a phone photo: smaller decodes faster, as well
        image.thumbnail((MAX_PIXELS, MAX_PIXELS))
    return [r.text for r in zxingcpp.read_barcodes(image) if r.text]
