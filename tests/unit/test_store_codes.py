"""QR images made by the app decode back to the same URL (zxing-cpp); code parsing."""

import re

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from app.store import codes, qr
from app.store.rules import clean_lines, meal_price

URL = "http://127.0.0.1:5000/q/" + "WyJYWWJtM2tDMFdrWWsiLDJd.Zm9yZ2VkLWJ1dC1sb25nLWVub3VnaA"


def rasterize(svg: str, scale: int = 8) -> Image.Image:
    """Draw the app's SVG (one rectangle per run: M x,y h w v1 h-w z) onto an image."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))
    img = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(img)
    for x, y, w in re.findall(r"M(\d+),(\d+)h(\d+)v1h-\d+z", svg):
        x, y, w = int(x), int(y), int(w)
        draw.rectangle([x * scale, y * scale, (x + w) * scale - 1, (y + 1) * scale - 1], fill=0)
    return img


def test_the_inline_svg_decodes_back_to_the_same_url():
    found = zxingcpp.read_barcodes(rasterize(str(qr.svg(URL))))
    assert [r.text for r in found] == [URL]


def test_the_png_decodes_back_to_the_same_url():
    assert qr.decode(qr.png(URL)) == [URL]


def test_a_photo_like_image_decodes(tmp_path):
    # Scaled, blurred a little, on a grey background: what a phone photo of a card looks like.
    from io import BytesIO

    from PIL import ImageFilter

    card = rasterize(str(qr.svg(URL)), scale=6).filter(ImageFilter.GaussianBlur(1.2))
    photo = Image.new("L", (card.width + 400, card.height + 300), 170)
    photo.paste(card, (180, 120))
    buf = BytesIO()
    photo.convert("RGB").save(buf, format="JPEG", quality=70)
    assert qr.decode(buf.getvalue()) == [URL]


def test_decode_refuses_what_is_not_an_image():
    with pytest.raises(ValueError):
        qr.decode(b"%PDF-1.4 not an image")


def test_svg_escapes_its_label():
    assert "<b>" not in str(qr.svg("x", label="<b>"))


def test_card_and_pay_codes_round_trip(app):
    card = codes.parse("https://v.example/q/" + codes.card_token("abcDEF123", 3))
    assert (card.kind, card.household_public_id, card.card_version) == ("card", "abcDEF123", 3)
    assert card.signed
    number = codes.new_pay_number()
    pay = codes.parse("https://v.example/q/" + codes.pay_token(number))
    assert (pay.kind, pay.number, pay.signed) == ("paycode", number, True)
    typed = codes.parse(number)
    assert (typed.kind, typed.number, typed.signed) == ("paycode", number, False)
    assert codes.parse(f"  {number}\n").number == number  # a USB scanner may add a newline
    assert codes.parse(codes.grouped(number)).number == number  # read aloud in groups
    full_width = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert codes.parse(full_width).number == number  # a Chinese keyboard's digits


def test_pay_numbers_are_18_random_digits(app):
    numbers = {codes.new_pay_number() for _ in range(2000)}
    assert len(numbers) == 2000
    assert all(len(n) == 18 and n.isdigit() and n[0] == "8" for n in numbers)
    # Every position after the prefix takes every digit (no counter, no resident id inside).
    for pos in range(1, 18):
        assert {n[pos] for n in numbers} == set("0123456789")


def test_tokens_carry_no_name_or_phone(app):
    token = codes.pay_token(codes.new_pay_number())
    payload = token.split(".")[0]
    import base64
    import json

    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert decoded[0] == "p" and len(decoded) == 2 and len(decoded[1]) == 18


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "0123456789",
        "12345",
        "abc",
        "x" * 301,
        "/q/",
        "http://x/q/!!!",
        "8" * 17,  # one digit short
        "8" * 19,
        "7" + "1" * 17,  # not a pay code's prefix
    ],
)
def test_garbage_is_unknown(app, text):
    with pytest.raises(codes.Unknown):
        codes.parse(text)


def test_a_forged_pay_token_is_unknown(app):
    token = codes.pay_token(codes.new_pay_number())
    with pytest.raises(codes.Unknown):
        codes.parse(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))


def test_meal_price_tiers():
    tiers = [[60, 5], [70, 3], [80, 0]]
    assert [meal_price(8, 2026 - age, tiers, 2026) for age in (30, 60, 69, 70, 80, 95)] == [
        8,
        5,
        5,
        3,
        0,
        0,
    ]
    assert meal_price(4, 1950, tiers, 2026) == 3  # never above the meal's own price
    assert meal_price(4, 1940, tiers, 2026) == 0
    assert meal_price(8, None, tiers, 2026) == 8


def test_clean_lines_adds_up_the_same_item():
    assert clean_lines([{"item_id": 1, "qty": 2}, {"item_id": 1, "qty": 3}]) == {1: 5}
