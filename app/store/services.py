"""The rewards store's use cases. Each takes ids and values, runs in one transaction and raises
domain errors (app/store/errors.py); only ledger.services writes points.

A redemption keeps these rules however many clerks confirm at once: it takes the village's
ledger lock first (serialising it with every other ledger writer and with stock changes), returns
the first redemption for a request id seen before, checks the whole batch against the balance,
the stock, the meal limits and the card's daily cap, and only then lowers stock and spends points.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash

from ..audit import record
from ..auth import throttle
from ..auth.models import User, hash_secret
from ..database import transaction, utcnow
from ..errors import (
    DomainError,
    Forbidden,
    HouseholdArchived,
    InsufficientPoints,
    InvalidInput,
    NotFound,
)
from ..extensions import db
from ..households.models import Household, Resident
from ..ledger import services as ledger
from ..scoring import photos  # the one checked, re-encoding photo store
from ..text import clean
from ..villages.models import Village
from . import codes, rules
from .errors import (
    AlreadyVoided,
    CardDailyCap,
    CardReplaced,
    CodeUnknown,
    MealLimit,
    OtherVillage,
    OutOfStock,
    PinLocked,
    PinNotSet,
    PinRequired,
    RequestReused,
    TooManyCodes,
    VoidTooLate,
    WrongPin,
)
from .models import (
    SLOTS,
    VENUE_KINDS,
    Gift,
    Item,
    PayCode,
    Redemption,
    RedemptionLine,
    StockMove,
    Venue,
)

# ---------------------------------------------------------------- venues, items, stock, gifts


def _text(value, label, max_len: int, required: bool = True) -> str:
    return clean(value, label, required=required, max_len=max_len)


def _int(value, label, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(
            _l("%(field)s must be a whole number from %(lo)s to %(hi)s."), field=label, lo=lo, hi=hi
        )
    return value


def get_venue(village_id: int, venue_id: int) -> Venue:
    venue = db.session.get(Venue, venue_id)
    if venue is None or venue.village_id != village_id:
        raise NotFound()
    return venue


def get_item(village_id: int, item_id: int) -> Item:
    item = db.session.get(Item, item_id)
    if item is None or item.village_id != village_id:
        raise NotFound()
    return item


def save_venue(
    village_id: int,
    venue_id: int | None,
    *,
    kind: str,
    name: str,
    hours: str = "",
    actor_id: int | None,
) -> Venue:
    if kind not in VENUE_KINDS:
        raise InvalidInput(_l("Choose a supermarket or a canteen."))
    name = _text(name, _l("Venue name"), 60)
    hours = _text(hours, _l("Opening hours"), 120, required=False)
    with transaction():
        venue = (
            Venue(village_id=village_id) if venue_id is None else get_venue(village_id, venue_id)
        )
        venue.kind, venue.name, venue.hours = kind, name, hours
        db.session.add(venue)
        db.session.flush()
        record(village_id, actor_id, "venue.save", f"venue:{venue.id}", f"{kind} {name}")
        return venue


@dataclass
class ItemData:
    name: str
    points: int
    unit: str = ""
    active: bool = True
    stock: int | None = None  # only when a new goods item is made; later through intake
    low_stock: int = 5
    slot: str | None = None
    daily_limit: int | None = None
    photo: bytes | None = None  # a new photo's upload; checked and re-encoded here


def save_item(
    village_id: int, venue_id: int, item_id: int | None, data: ItemData, actor_id: int | None
) -> Item:
    """A goods item (a supermarket's) or a meal (a canteen's: slot and daily limit). Stock of an
    existing item changes only through intake and correction, so it is recorded."""
    name = _text(data.name, _l("Item name"), 60)
    points = _int(data.points, _l("Points"), 0, rules.PRICE_MAX)
    unit = _text(data.unit, _l("Unit"), 10, required=False)
    low = _int(data.low_stock, _l("Low stock warning"), 0, 100_000)
    jpeg = photos.process(data.photo) if data.photo else None
    with transaction():
        ledger.lock_village(village_id)
        venue = get_venue(village_id, venue_id)
        meal = venue.kind == "canteen"
        if meal and data.slot not in SLOTS:
            raise InvalidInput(_l("Choose the meal's slot."))
        limit = _int(data.daily_limit or 1, _l("Limit per day"), 1, 10) if meal else None
        if item_id is None:
            item = Item(village_id=village_id, venue_id=venue_id, stock=None if meal else 0)
            db.session.add(item)
        else:
            item = get_item(village_id, item_id)
            if item.venue_id != venue_id:
                raise NotFound()
        item.name, item.points, item.unit, item.active, item.low_stock = (
            name,
            points,
            unit,
            bool(data.active),
            low,
        )
        item.slot, item.daily_limit = (data.slot, limit) if meal else (None, None)
        if jpeg is not None:
            item.photo = photos.save(village_id, jpeg)
        db.session.flush()
        record(village_id, actor_id, "item.save", f"item:{item.id}", f"{name} {points}")
        if item_id is None and not meal and data.stock:
            take_in(village_id, item.id, data.stock, actor_id, reason=str(_l("Opening stock")))
        return item


def take_in(
    village_id: int,
    item_id: int,
    qty: int,
    actor_id: int | None,
    *,
    donor: str = "",
    reason: str = "",
) -> StockMove:
    """Goods taken into stock: bought (intake) or given (donation, with the donor's name)."""
    qty = _int(qty, _l("Quantity"), 1, 100_000)
    donor = _text(donor, _l("Donor"), 60, required=False)
    reason = _text(reason, _l("Note"), 200, required=False)
    return _move(
        village_id, item_id, "donation" if donor else "intake", qty, actor_id, donor, reason
    )


def correct_stock(
    village_id: int, item_id: int, counted: int, reason: str, actor_id: int | None
) -> StockMove:
    """Set the stock to what was counted, with why (broken, expired, miscounted)."""
    counted = _int(counted, _l("Counted stock"), 0, 1_000_000)
    reason = _text(reason, _l("Reason"), 200)
    with transaction():
        ledger.lock_village(village_id)
        item = _fresh_item(village_id, item_id)
        return _move(village_id, item_id, "correction", counted - item.stock, actor_id, "", reason)


def _fresh_item(village_id: int, item_id: int) -> Item:
    item = db.session.execute(
        select(Item)
        .where(Item.id == item_id, Item.village_id == village_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if item is None:
        raise NotFound()
    if item.stock is None:
        raise InvalidInput(_l("Meals have no stock."))
    return item


def _move(village_id, item_id, kind, qty, actor_id, donor, reason) -> StockMove:
    with transaction():
        ledger.lock_village(village_id)  # stock changes serialise with redemptions
        item = _fresh_item(village_id, item_id)
        item.stock += qty
        move = StockMove(
            village_id=village_id,
            item_id=item.id,
            kind=kind,
            qty=qty,
            stock_after=item.stock,
            donor=donor,
            reason=reason,
            user_id=actor_id,
        )
        db.session.add(move)
        db.session.flush()
        return move


def record_gift(
    village_id: int,
    venue_id: int,
    household_id: int,
    description: str,
    points: int,
    actor_id: int | None,
) -> Gift:
    """Produce or firewood given to a venue, credited to the giver's household, where the
    village allows it."""
    description = _text(description, _l("What was given"), 120)
    points = _int(points, _l("Points"), 1, 10_000)
    with transaction():
        village = ledger.lock_village(village_id)
        if not village.gifts_earn_points:
            raise Forbidden(_l("This village does not credit gifts with points."))
        venue = get_venue(village_id, venue_id)
        household = db.session.get(Household, household_id)
        if household is None or household.village_id != village_id:
            raise NotFound()
        gift = Gift(
            village_id=village_id,
            venue_id=venue.id,
            household_id=household.id,
            description=description,
            points=points,
            user_id=actor_id,
        )
        db.session.add(gift)
        db.session.flush()
        entry = ledger.award(
            village_id,
            household.id,
            points,
            f"{venue.name}: {description}",
            actor_id,
            key=f"gift:{gift.id}",
            ref=f"gift:{gift.id}",
        )
        gift.entry_id = entry.id
        return gift


def assign_clerk(village_id: int, user_id: int, venue_id: int | None, actor_id: int) -> User:
    """Bind a clerk (or an admin who also serves at a counter) to one venue, or unbind."""
    with transaction():
        user = db.session.get(User, user_id)
        if user is None or user.village_id != village_id:
            raise NotFound()
        if user.role not in ("clerk", "village_admin"):
            raise InvalidInput(_l("Only clerks and admins serve at a counter."))
        if venue_id is not None:
            get_venue(village_id, venue_id)
        user.venue_id = venue_id
        record(village_id, actor_id, "user.venue", f"user:{user.id}", f"venue:{venue_id}")
        return user


# ---------------------------------------------------------------- cards


def _household(village_id: int, household_id: int) -> Household:
    household = db.session.get(Household, household_id)
    if household is None or household.village_id != village_id:
        raise NotFound()
    return household


def reissue_card(village_id: int, household_id: int, actor_id: int | None) -> int:
    """A new card: the version goes up, so every older card stops working. Returns it."""
    with transaction():
        household = _household(village_id, household_id)
        household.card_version += 1
        record(
            village_id,
            actor_id,
            "card.reissue",
            f"household:{household.id}",
            f"version {household.card_version}",
        )
        return household.card_version


def set_card_pin(village_id: int, household_id: int, pin: str | None, actor_id: int | None) -> None:
    """Set (4 digits, stored hashed) or clear the household's card PIN."""
    pin_hash = hash_secret(rules.clean_pin(pin)) if pin else None
    with transaction():
        household = _household(village_id, household_id)
        household.card_pin_hash = pin_hash
        record(
            village_id,
            actor_id,
            "card.pin",
            f"household:{household.id}",
            "set" if pin_hash else "cleared",
        )


# ---------------------------------------------------------------- the counter

# Failed code lookups a clerk, and a counter (venue), may make in a window: a clerk who mistypes
# a few times is not slowed, a clerk trying numbers is stopped long before finding a live code
# (see codes.py for the odds). Only what a person could type by guessing - a pay code's number,
# or text that is no code of ours - is checked against the budget; any failure is counted.
CLERK_CODE_FAILURES = 10
VENUE_CODE_FAILURES = 20
CODE_FAILURE_MINUTES = 10
# Wrong PINs per card, counted in the database like failed sign-ins (several workers): a
# 4-digit PIN is only worth something if it cannot be tried 10,000 times.
PIN_MAX_FAILURES = 5
PIN_LOCK_MINUTES = 15


def issue_pay_code(village_id: int, resident_id: int) -> PayCode:
    """A pay code for a resident's phone (the page asks again every REFRESH_SECONDS): the one
    issued less than REFRESH_SECONDS ago if it is untouched, else a new one, so a page reloaded
    in a loop does not fill the table. Only an active resident of the village gets one."""
    with transaction():
        resident = db.session.get(Resident, resident_id)
        if resident is None or resident.village_id != village_id or resident.status != "active":
            raise Forbidden()
        now = utcnow()
        latest = db.session.scalar(
            select(PayCode)
            .where(PayCode.resident_id == resident_id)
            .order_by(PayCode.issued_at.desc())
            .limit(1)
        )
        if (
            latest is not None
            and latest.used_at is None
            and latest.held_until is None
            and now - latest.issued_at < timedelta(seconds=codes.REFRESH_SECONDS)
        ):
            return latest
        for _attempt in range(3):
            code = PayCode(
                number=codes.new_pay_number(),
                village_id=village_id,
                resident_id=resident_id,
                issued_at=now,
                expires_at=now + timedelta(seconds=codes.ACCEPT_SECONDS),
            )
            try:
                with db.session.begin_nested():
                    db.session.add(code)
            except IntegrityError:  # one chance in 10^17: draw again
                continue
            return code
        raise RuntimeError("could not draw a free pay code number")


@dataclass
class Scan:
    """What a scanned code names: the household, and the resident for a pay code."""

    code: codes.Code
    household: Household
    resident: Resident | None
    residents: list[Resident] = field(default_factory=list)
    pin_required: bool = False
    pay_code_id: int | None = None

    @property
    def source(self) -> str:
        return self.code.kind


def _parse(text: str) -> codes.Code | None:
    try:
        return codes.parse(text)
    except codes.Unknown:
        return None


def _code_limits(clerk_id: int, venue_id: int) -> list[throttle.Limit]:
    return [
        throttle.Limit(f"clerk:{clerk_id}", CLERK_CODE_FAILURES, CODE_FAILURE_MINUTES),
        throttle.Limit(f"venue:{venue_id}", VENUE_CODE_FAILURES, CODE_FAILURE_MINUTES),
    ]


def _live_pay_code(village_id: int, number: str, now) -> PayCode | None:
    """The pay code with this number if it is still accepted here, else None. Unknown, expired,
    used and another village's codes are all None: a counter cannot tell them apart."""
    code = db.session.execute(
        select(PayCode).where(PayCode.number == number).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if code is None or code.village_id != village_id or code.used_at is not None:
        return None
    if code.expires_at <= now and (code.held_until is None or code.held_until <= now):
        return None
    return code


def _resolve(village_id: int, code: codes.Code | None, now) -> Scan:
    """The household (and resident) a parsed code names, inside the caller's transaction.
    Raises CodeUnknown, CardReplaced or OtherVillage (a card only)."""
    if code is None:
        raise CodeUnknown()
    if code.kind == "card":
        household = db.session.execute(
            select(Household)
            .where(Household.public_id == code.household_public_id)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if household is None:
            raise CodeUnknown()
        if household.village_id != village_id:
            raise OtherVillage()
        if household.card_version != code.card_version:
            raise CardReplaced()
        resident, pay_code_id = None, None
    else:
        pay = _live_pay_code(village_id, code.number, now)
        resident = db.session.get(Resident, pay.resident_id) if pay else None
        if resident is None or resident.status != "active":
            raise CodeUnknown()
        pay_code_id = pay.id
        household = db.session.execute(
            select(Household)
            .where(Household.id == resident.household_id)
            .execution_options(populate_existing=True)
        ).scalar_one()
    residents = [r for r in household.residents if r.status == "active"]
    return Scan(code, household, resident, residents, pay_code_id=pay_code_id)


class _Guard:
    """The code-guessing budget around one lookup or redemption, inside its transaction: checks
    the budget first when the code could be a guess, counts a CodeUnknown. What it decides is
    committed even when the action fails, so the error is raised after the commit."""

    def __init__(self, village_id: int, clerk_id: int, venue_id: int, code):
        self.village_id, self.clerk_id, self.venue_id = village_id, clerk_id, venue_id
        self.limits = _code_limits(clerk_id, venue_id)
        self.guessable = code is None or not code.signed
        self.error: DomainError | None = None

    def check(self) -> bool:
        if not self.guessable:
            return True
        refused = throttle.check(self.limits)
        if refused is None:
            return True
        if refused.first:
            record(
                self.village_id,
                self.clerk_id,
                "counter.code_limit",
                f"venue:{self.venue_id}",
                f"{refused.limit.key} {refused.limit.limit}/{refused.limit.minutes}min",
            )
        self.error = TooManyCodes(minutes=refused.minutes)
        return False

    def failed(self, error: DomainError) -> None:
        if isinstance(error, CodeUnknown):
            if not self.guessable:
                throttle.check(self.limits)
            throttle.count(self.limits)
        self.error = error

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error


def lookup(village_id: int, venue_id: int, clerk_id: int, text: str) -> Scan:
    """What the clerk sees after a scan. A pay code's lookup is recorded: the code stays
    accepted for HOLD_SECONDS while the clerk picks items. Raises CodeUnknown (unknown, expired,
    used, another village's pay code), CardReplaced, OtherVillage, TooManyCodes."""
    code = _parse(text)
    guard = _Guard(village_id, clerk_id, venue_id, code)
    scan = None
    with transaction():
        if guard.check():
            now = utcnow()
            try:
                scan = _resolve(village_id, code, now)
            except (CodeUnknown, CardReplaced, OtherVillage) as e:
                guard.failed(e)
            else:
                if scan.pay_code_id is not None:
                    db.session.execute(
                        update(PayCode)
                        .where(PayCode.id == scan.pay_code_id)
                        .values(held_until=now + timedelta(seconds=codes.HOLD_SECONDS))
                    )
    guard.raise_if_failed()
    village = db.session.get(Village, village_id)
    scan.pin_required = scan.source == "card" and village.card_pin_required
    return scan


def _resident_for(scan: Scan, resident_id) -> Resident:
    if scan.resident is not None:
        if resident_id not in (None, scan.resident.id):
            raise InvalidInput(_l("A pay code names its resident; resident_id must match it."))
        return scan.resident
    if resident_id is None and len(scan.residents) == 1:
        return scan.residents[0]
    for r in scan.residents:
        if r.id == resident_id:
            return r
    raise InvalidInput(_l("Choose which member of the household takes the goods."))


def _pin_limit(household_id: int) -> throttle.Limit:
    return throttle.Limit(f"pin:{household_id}", PIN_MAX_FAILURES, PIN_LOCK_MINUTES)


def _verify_pin(village_id: int, code: codes.Code | None, pin) -> None:
    """Before the redemption's transaction: when the village requires a PIN for a card, check it
    (the hash is slow by design, so never under the ledger lock). The attempt is reserved before
    the hash is compared and given back when the PIN is right, so exactly PIN_MAX_FAILURES
    wrong PINs are ever compared in a window, however many arrive at once. Raises PinRequired,
    PinNotSet, PinLocked, WrongPin."""
    if code is None or code.kind != "card":
        return
    village = db.session.get(Village, village_id)
    if not village.card_pin_required:
        return
    household = db.session.execute(
        select(Household.id, Household.card_pin_hash).where(
            Household.public_id == code.household_public_id, Household.village_id == village_id
        )
    ).first()
    if household is None:
        return  # the redemption itself says what is wrong with the card
    if not pin:
        raise PinRequired()
    pin = rules.clean_pin(pin)
    if not household.card_pin_hash:
        raise PinNotSet()
    limit = _pin_limit(household.id)
    refused = throttle.reserve([limit])
    if refused is not None:
        raise PinLocked(minutes=refused.minutes)
    if not check_password_hash(household.card_pin_hash, pin):
        raise WrongPin()  # the reservation stays: it was a wrong PIN
    throttle.refund([limit])  # a right PIN is no failure


def _fingerprint(venue_id: int, code_text: str, wanted: dict, resident_id) -> str:
    """What a request asked for, so that a reused request_id with another body is refused."""
    body = [venue_id, (code_text or "").strip(), resident_id, sorted(wanted.items())]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def _by_request(village_id: int, request_id: str) -> Redemption | None:
    return db.session.execute(
        select(Redemption).where(
            Redemption.village_id == village_id, Redemption.request_id == request_id
        )
    ).scalar_one_or_none()


def _replay(existing: Redemption, fingerprint: str) -> tuple[Redemption, bool]:
    if existing.request_hash not in (None, fingerprint):
        raise RequestReused()
    return existing, False


def redeem(
    village_id: int,
    venue_id: int,
    clerk_id: int,
    code_text: str,
    lines,
    request_id,
    *,
    pin=None,
    resident_id=None,
) -> tuple[Redemption, bool]:
    """Turn a scanned code into goods or meals. Returns (redemption, created); the same
    request_id again returns the first redemption and created=False, or raises RequestReused
    when it came with a different body.

    Raises InvalidInput (malformed, unknown item), CodeUnknown/CardReplaced, OtherVillage,
    TooManyCodes, PinRequired/WrongPin/PinNotSet/PinLocked, InsufficientPoints, OutOfStock,
    MealLimit, CardDailyCap, HouseholdArchived. Nothing is written unless everything passes
    (but a failed code or PIN is counted).
    """
    request_id = rules.clean_request_id(request_id)
    wanted = rules.clean_lines(lines)
    if resident_id is not None:
        resident_id = rules.whole(resident_id)
        if resident_id is None or not 0 < resident_id <= rules.MAX_ID:
            raise InvalidInput(_l("resident_id must be a whole number."))
    fingerprint = _fingerprint(venue_id, code_text, wanted, resident_id)
    existing = _by_request(village_id, request_id)
    if existing is not None:  # a retry of an answered request: no lock, no PIN, no code
        return _replay(existing, fingerprint)
    code = _parse(code_text)
    _verify_pin(village_id, code, pin)
    try:
        result = _redeem(
            village_id, venue_id, clerk_id, code, wanted, request_id, fingerprint, resident_id
        )
    except IntegrityError:
        # Only a concurrent twin of this request can get here (the village lock serialises the
        # rest): the unique request id refused it, so answer with the one that won.
        db.session.rollback()
        existing = _by_request(village_id, request_id)
        if existing is None:
            raise
        result = _replay(existing, fingerprint)
    return result


def _redeem(village_id, venue_id, clerk_id, code, wanted, request_id, fingerprint, resident_id):
    guard = _Guard(village_id, clerk_id, venue_id, code)
    with transaction():
        village = ledger.lock_village(village_id)
        existing = _by_request(village_id, request_id)
        if existing is not None:
            return _replay(existing, fingerprint)
        venue = get_venue(village_id, venue_id)
        now = utcnow()
        scan = None
        if guard.check():
            try:
                scan = _resolve(village_id, code, now)
            except (CodeUnknown, CardReplaced, OtherVillage) as e:
                guard.failed(e)
        if scan is not None:
            return _record_redemption(
                village, venue, clerk_id, scan, wanted, request_id, fingerprint, resident_id, now
            )
    guard.raise_if_failed()


def _record_redemption(
    village, venue, clerk_id, scan, wanted, request_id, fingerprint, resident_id, now
):
    household = scan.household
    resident = _resident_for(scan, resident_id)
    items = {
        i.id: i
        for i in db.session.execute(
            select(Item)
            .where(Item.id.in_(wanted), Item.venue_id == venue.id, Item.active.is_(True))
            .execution_options(populate_existing=True)
        ).scalars()
    }
    missing = [i for i in wanted if i not in items]
    if missing:
        raise InvalidInput(_l("Item %(id)s is not sold at this venue."), id=missing[0])
    today = rules.local_day(now)
    prices = {
        item.id: rules.meal_price(
            item.points, resident.birth_year, village.meal_age_tiers, today.year
        )
        if item.is_meal
        else item.points
        for item in items.values()
    }
    total = sum(prices[i] * qty for i, qty in wanted.items())

    # The whole batch against the balance, then stock, meal limits and the card's cap.
    if not household.active:
        raise HouseholdArchived()
    if total > household.balance:
        raise InsufficientPoints(balance=household.balance, needed=total)
    for item_id, qty in wanted.items():
        item = items[item_id]
        if item.stock is not None and item.stock < qty:
            raise OutOfStock(item=item.name, stock=item.stock)
    _check_meal_limits(resident, items, wanted, today)
    if scan.source == "card":
        spent = _card_spent_today(household.id, today)
        if spent + total > village.card_daily_cap:
            raise CardDailyCap(cap=village.card_daily_cap, spent=spent)

    redemption = Redemption(
        village_id=village.id,
        venue_id=venue.id,
        household_id=household.id,
        resident_id=resident.id,
        clerk_id=clerk_id,
        request_id=request_id,
        request_hash=fingerprint,
        source=scan.source,
        total=total,
        balance_after=household.balance - total,
        day=today,
        created_at=now,
    )
    db.session.add(redemption)
    for item_id, qty in wanted.items():
        item = items[item_id]
        if item.stock is not None:
            item.stock -= qty
        redemption.lines.append(
            RedemptionLine(
                item_id=item.id, name=item.name, qty=qty, points=prices[item_id], slot=item.slot
            )
        )
    db.session.flush()
    if scan.pay_code_id is not None:
        used = db.session.execute(
            update(PayCode)
            .where(PayCode.id == scan.pay_code_id, PayCode.used_at.is_(None))
            .values(used_at=now, redemption_id=redemption.id)
        )
        if used.rowcount != 1:  # pragma: no cover - the village lock serialises redemptions
            raise CodeUnknown()
    if total:
        what = "、".join(f"{line.name}×{line.qty}" for line in redemption.lines)
        entry = ledger.redeem(
            village.id,
            household.id,
            total,
            f"{venue.name}: {what}",
            clerk_id,
            key=f"redemption:{request_id}",
            ref=f"redemption:{redemption.id}",
            at=now,
        )
        redemption.entry_id = entry.id
        redemption.balance_after = entry.balance_after
    db.session.flush()
    return redemption, True


def _check_meal_limits(resident: Resident, items: dict, wanted: dict, today) -> None:
    by_slot: dict[str, tuple[int, int]] = {}  # slot -> (qty in this batch, limit)
    for item_id, qty in wanted.items():
        item = items[item_id]
        if item.is_meal:
            count, limit = by_slot.get(item.slot, (0, item.daily_limit or 1))
            by_slot[item.slot] = (count + qty, min(limit, item.daily_limit or 1))
    for slot, (count, limit) in by_slot.items():
        had = db.session.scalar(
            select(func.coalesce(func.sum(RedemptionLine.qty), 0))
            .join(Redemption, Redemption.id == RedemptionLine.redemption_id)
            .where(
                Redemption.resident_id == resident.id,
                Redemption.day == today,
                Redemption.voided_at.is_(None),
                RedemptionLine.slot == slot,
            )
        )
        if had + count > limit:
            raise MealLimit(name=resident.name, count=had, slot=SLOT_LABELS[slot], limit=limit)


SLOT_LABELS = {"breakfast": _l("breakfast"), "lunch": _l("lunch"), "dinner": _l("dinner")}


def _card_spent_today(household_id: int, today) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(Redemption.total), 0)).where(
            Redemption.household_id == household_id,
            Redemption.day == today,
            Redemption.source == "card",
            Redemption.voided_at.is_(None),
        )
    )


def void(
    village_id: int,
    redemption_id: int,
    actor_id: int,
    *,
    admin: bool,
    venue_id: int | None = None,
    reason: str = "",
) -> Redemption:
    """Undo a redemption: a reversal entry gives the points back and the stock returns. A clerk
    may void only today's redemptions of the own venue; an admin any. Raises AlreadyVoided,
    VoidTooLate, NotFound."""
    reason = _text(reason, _l("Reason"), 200, required=False) or str(_l("Redemption voided"))
    with transaction():
        ledger.lock_village(village_id)
        redemption = db.session.execute(
            select(Redemption)
            .where(Redemption.id == redemption_id, Redemption.village_id == village_id)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if redemption is None:
            raise NotFound()
        if redemption.voided_at is not None:
            raise AlreadyVoided()
        if not admin and (
            redemption.venue_id != venue_id or redemption.day != rules.local_day(utcnow())
        ):
            raise VoidTooLate()
        if redemption.entry_id is not None:
            reversal = ledger.reverse(
                village_id, redemption.entry_id, f"{reason} (#{redemption.id})", actor_id
            )
            redemption.void_entry_id = reversal.id
        for line in redemption.lines:
            item = db.session.execute(
                select(Item)
                .where(Item.id == line.item_id)
                .execution_options(populate_existing=True)
            ).scalar_one()
            if item.stock is not None:
                item.stock += line.qty
        redemption.voided_at = utcnow()
        redemption.voided_by_id = actor_id
        record(village_id, actor_id, "redemption.void", f"redemption:{redemption.id}", reason)
        db.session.flush()
        return redemption


def void_balance(redemption: Redemption) -> int:
    return db.session.get(Household, redemption.household_id).balance
