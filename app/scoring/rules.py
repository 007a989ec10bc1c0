"""Scoring rules with no Flask or database import: categories, caps, decision checks."""

from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l

from ..errors import InvalidInput

CATEGORIES = {
    "public_service": _l("Public welfare work"),
    "environment": _l("Environment and hygiene"),
    "filial": _l("Filial piety and family love"),
    "customs": _l("Changing old customs"),
    "law": _l("Law-abiding"),
    "civility": _l("New civility"),
}
CAP_PERIODS = {"month": _l("per month"), "year": _l("per year")}
OUTCOMES = {"approve": _l("Approve"), "reject": _l("Reject"), "defer": _l("Defer")}
MAX_RULE_POINTS = 10_000
MAX_HOUSEHOLDS = 500
LOCAL_TZ = timedelta(hours=8)  # the village's day starts at midnight China time


def local_today(now: datetime) -> date:
    return (now + LOCAL_TZ).date()


def period_bounds(day: date, period: str) -> tuple[date, date]:
    """The first day of the cap period holding `day`, and the first day after it."""
    if period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        start = day.replace(month=1, day=1)
        end = start.replace(year=start.year + 1)
    return start, end


def check_rule(category: str, title: str, points, cap_count, cap_period) -> None:
    if category not in CATEGORIES:
        raise InvalidInput(_l("Choose a category."))
    if not title or len(title) > 100:
        raise InvalidInput(_l("The title is required (at most 100 characters)."))
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput(_l("Points must be a whole number."))
    if not 0 < abs(points) <= MAX_RULE_POINTS:
        raise InvalidInput(
            _l("Points are between -%(max)s and %(max)s and not zero."), max=MAX_RULE_POINTS
        )
    if (cap_count is None) != (cap_period is None):
        raise InvalidInput(_l("A cap needs both a number of times and a period."))
    if cap_count is not None and (cap_period not in CAP_PERIODS or not 1 <= cap_count <= 1000):
        raise InvalidInput(_l("A cap is 1 to 1000 times per month or per year."))


def check_decision(
    outcome: str, points: int | None, rule_points: int, reason: str, votes: tuple
) -> int:
    """The points a decision gives each household (0 unless approved). Raises InvalidInput."""
    if outcome not in OUTCOMES:
        raise InvalidInput(_l("Choose approve, reject or defer."))
    for v in votes:
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10000):
            raise InvalidInput(_l("Votes are whole numbers from 0."))
    if outcome == "reject" and not reason:
        raise InvalidInput(_l("A rejection needs a reason."))
    if outcome != "approve":
        return 0
    if points is None:
        return rule_points
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput(_l("Points must be a whole number."))
    if points == 0 or (points > 0) != (rule_points > 0) or abs(points) > MAX_RULE_POINTS:
        raise InvalidInput(
            _l("Adjusted points keep the rule's sign and are not zero (the rule gives %(p)+d)."),
            p=rule_points,
        )
    if points != rule_points and not reason:
        raise InvalidInput(_l("Adjusting the points needs a reason."))
    return points


def check_occurred_on(day: date | None, today: date) -> None:
    if day is None:
        raise InvalidInput(_l("Enter the date it happened."))
    if day > today:
        raise InvalidInput(_l("The date cannot be in the future."))
    if day < today - timedelta(days=366):
        raise InvalidInput(_l("The date is more than a year ago."))
