"""Village settings: parsing and rules, with no Flask or database import."""

from flask_babel import lazy_gettext as _l

from ..errors import InvalidInput
from ..offline.settings import (  # noqa: F401 - the offline counter's setting, listed here
    OFFLINE_CAP_HINT,
    OFFLINE_CAP_LABEL,
    OFFLINE_CAP_MAX,
    OFFLINE_CAP_RANGE,
)

# name -> (label, kind)
SETTINGS = {
    "notice_days": (_l("Notice period (days)"), "int"),
    "star_thresholds": (_l("Star thresholds (points earned this year, for 1 to 5 stars)"), "ints"),
    "card_pin_required": (_l("Require the household PIN for a card at the counter"), "bool"),
    "card_daily_cap": (_l("Most points a card may spend in one day"), "int"),
    "meal_age_tiers": (_l("Meal price tiers by age (age:points, ...)"), "tiers"),
    "gifts_earn_points": (_l("Gifts of produce or firewood earn points"), "bool"),
    "notice_show_names": (_l("Notice board shows the head's name"), "bool"),
    "offline_daily_cap": (OFFLINE_CAP_LABEL, "int"),
    "notice_public_days": (
        _l("Days a decision stays on the public board after its notice period"),
        "int",
    ),
}


def parse_thresholds(text: str) -> list[int]:
    try:
        values = [int(p) for p in text.replace("，", ",").split(",") if p.strip()]
    except ValueError:
        raise InvalidInput(_l("Star thresholds are whole numbers separated by commas.")) from None
    if not 1 <= len(values) <= 5 or any(v <= 0 for v in values) or values != sorted(set(values)):
        raise InvalidInput(_l("Give 1 to 5 positive thresholds, each larger than the one before."))
    return values


def parse_tiers(text: str) -> list[list[int]]:
    tiers = []
    for part in text.replace("，", ",").replace("：", ":").split(","):
        if not part.strip():
            continue
        age, sep, points = part.partition(":")
        try:
            tier = [int(age), int(points)]
        except ValueError:
            raise InvalidInput(_l("Write each tier as age:points, for example 60:5.")) from None
        if not sep or not 0 < tier[0] < 130 or not 0 <= tier[1] <= 10000:
            raise InvalidInput(_l("Write each tier as age:points, for example 60:5."))
        tiers.append(tier)
    ages = [t[0] for t in tiers]
    if ages != sorted(set(ages)):
        raise InvalidInput(_l("Tiers must go from the youngest age to the oldest."))
    return tiers


def format_value(value) -> str:
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            return ", ".join(f"{a}:{p}" for a, p in value)
        return ", ".join(str(v) for v in value)
    return str(value)


def stars_for(earned: int, thresholds: list[int]) -> int:
    """How many stars points earned this year give: one per threshold reached."""
    return sum(1 for t in thresholds if earned >= t)
