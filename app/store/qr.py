"""QR images made with `qrcode`: inline SVG for pages and printed cards, PNG for downloads and
for decoding back in tests."""

import io

import qrcode
import qrcode.image.svg
from markupsafe import Markup
from qrcode.constants import ERROR_CORRECT_M


def _qr(data: str) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4, box_size=10)
    qr.add_data(data)
    qr.make(fit=True)
    return qr


def svg(data: str, label: str = "QR") -> Markup:
    """An inline <svg> that scales to its box (sized by CSS), black on white."""
    img = _qr(data).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    text = img.to_string(encoding="unicode")
    # Drop the fixed size so that CSS decides it; keep the viewBox.
    text = text.replace("<svg ", f'<svg role="img" aria-label="{label}" class="qr" ', 1)
    for attr in ("width", "height"):
        text = _drop_attr(text, attr)
    return Markup(text)  # noqa: S704 - made by qrcode from our own URL, no user text


def _drop_attr(svg_text: str, attr: str) -> str:
    head, sep, rest = svg_text.partition(">")
    start = head.find(f' {attr}="')
    if start == -1:
        return svg_text
    end = head.index('"', start + len(attr) + 3)
    return head[:start] + head[end + 1 :] + sep + rest


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
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise ValueError("not an image") from e
    image = image.convert("L")
    if max(image.size) > MAX_PIXELS:  # a phone photo: smaller decodes faster, as well
        image.thumbnail((MAX_PIXELS, MAX_PIXELS))
    return [r.text for r in zxingcpp.read_barcodes(image) if r.text]
