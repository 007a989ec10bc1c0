"""Pure rules of the store: input shapes and prices. No Flask or database import."""

from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l

from ..errors import MAX_ID, InvalidInput

LOCAL_TZ = timedelta(hours=8)  # the village's day starts at midnight China time
MAX_QTY = 99
MAX_LINES = 50
PRICE_MAX = 100_000


def local_day(at: datetime) -> date:
    return (at + LOCAL_TZ).date()


def clean_request_id(value) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= 64 or not value.isascii():
        raise InvalidInput(_l("request_id must be a text of 8 to 64 ASCII characters."))
    if not all(c.isalnum() or c in "-_:." for c in value):
        raise InvalidInput(_l("request_id may hold letters, digits and - _ : . only."))
    return value


def clean_lines(lines) -> dict[int, int]:
    """{item_id: qty} from [{item_id, qty}, ...]; the same item twice is added up."""
    if not isinstance(lines, list) or not lines:
        raise InvalidInput(_l("Choose at least one item."))
    if len(lines) > MAX_LINES:
        raise InvalidInput(_l("At most %(n)s lines in one redemption."), n=MAX_LINES)
    merged: dict[int, int] = {}
    for n, line in enumerate(lines, 1):
        if isinstance(line, dict) and set(line) - {"item_id", "qty"}:
            raise InvalidInput(_l("Line %(n)s: only item_id and qty."), n=n)
        item_id = whole(line.get("item_id")) if isinstance(line, dict) else None
        qty = whole(line.get("qty")) if isinstance(line, dict) else None
        if item_id is None or not 0 < item_id <= MAX_ID:
            raise InvalidInput(_l("Line %(n)s: item_id must be a positive whole number."), n=n)
        if qty is None or not 1 <= qty <= MAX_QTY:
            raise InvalidInput(
                _l("Line %(n)s: qty must be a whole number from 1 to %(max)s."), n=n, max=MAX_QTY
            )
        merged[item_id] = merged.get(item_id, 0) + qty
    return merged


def clean_pin(pin) -> str:
    if not isinstance(pin, str) or len(pin) != 4 or not pin.isdigit() or not pin.isascii():
        raise InvalidInput(_l("The PIN is 4 digits."))
    return pin


def whole(v) -> int | None:
    """A JSON whole number (2 and 2.0 alike, as JSON Schema counts them), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
        return int(v)
    return None


def meal_price(base: int, birth_year: int | None, tiers: list, year: int) -> int:
    """The price of a meal for a resident: the village's tier for the highest age reached (e.g.
    [[60, 5], [70, 3], [80, 0]]: 60+ pay 5, 70+ pay 3, 80+ eat free), never above the meal's
    own price; without a birth year, the meal's own price."""
    if birth_year is None:
        return base
    age = year - birth_year
    price = base
    for tier_age, points in sorted(tiers or []):
        if age >= tier_age:
            price = min(base, int(points))
    return price
