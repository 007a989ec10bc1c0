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
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, Text, bindparam, cast, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from werkzeug.security import check_password_hash

from ..audit import record
from ..auth import throttle
from ..auth.models import User, hash_secret
from ..database import Pipe, Sent, batched_reads, transaction, utcnow
from ..errors import (
    DomainError,
    Forbidden,
    HouseholdArchived,
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
            item.photo_id = photos.save(village_id, jpeg)
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


@dataclass(frozen=True)
class ScannedHousehold:
    id: int
    village_id: int
    public_id: str
    number: str
    head_name: str
    balance: int
    status: str
    card_version: int
    card_pin_hash: str | None


@dataclass(frozen=True)
class ScannedResident:
    id: int
    name: str
    birth_year: int | None


@dataclass
class Scan:
    """What a scanned code names, as plain values: the household, and the resident for a pay
    code (for a card, the members to choose from)."""

    code: codes.Code
    household: ScannedHousehold
    resident: ScannedResident | None
    residents: list[ScannedResident] = field(default_factory=list)
    pin_required: bool = False
    pay_code_id: int | None = None

    @property
    def source(self) -> str:
        return self.code.kind

    @property
    def token(self) -> str:
        """The code as a signed token: what the counter sends with the redemption, so a number
        typed once is not a guess the second time."""
        if self.code.kind == "card":
            return codes.card_token(self.household.public_id, self.household.card_version)
        return codes.pay_token(self.code.number)


_h = Household.__table__
_r = Resident.__table__
_HOUSEHOLD_COLUMNS = (
    _h.c.id,
    _h.c.village_id,
    _h.c.public_id,
    _h.c.number,
    _h.c.head_name,
    _h.c.balance,
    _h.c.status,
    _h.c.card_version,
    _h.c.card_pin_hash,
)
_CARD_HOUSEHOLD = select(*_HOUSEHOLD_COLUMNS).where(_h.c.public_id == bindparam("public_id"))
_PAY_CODE = select(
    PayCode.id,
    PayCode.village_id,
    PayCode.used_at,
    PayCode.expires_at,
    PayCode.held_until,
    _r.c.id,
    _r.c.name,
    _r.c.birth_year,
    _r.c.status,
    *_HOUSEHOLD_COLUMNS,
).where(
    PayCode.number == bindparam("number"),
    _r.c.id == PayCode.resident_id,
    _h.c.id == _r.c.household_id,
)
_payer = _r.alias("payer")
# A household's active members, found by the code itself (a card's public id, a pay code's
# number), so they are sent with the household's read instead of waiting for its id.
_MEMBERS_OF_CARD = (
    select(_r.c.id, _r.c.name, _r.c.birth_year)
    .where(
        _r.c.household_id
        == select(_h.c.id).where(_h.c.public_id == bindparam("public_id")).scalar_subquery(),
        _r.c.status == "active",
    )
    .order_by(_r.c.id)
)
_MEMBERS_OF_PAY_CODE = (
    select(_r.c.id, _r.c.name, _r.c.birth_year)
    .where(
        _r.c.household_id
        == select(_payer.c.household_id)
        .where(_payer.c.id == PayCode.resident_id, PayCode.number == bindparam("number"))
        .scalar_subquery(),
        _r.c.status == "active",
    )
    .order_by(_r.c.id)
)


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


def _send_code_reads(pipe: Pipe, code: codes.Code | None) -> tuple[Sent, Sent] | None:
    """The reads a code needs (its household or pay code, and the household's members), sent."""
    if code is None:
        return None
    if code.kind == "card":
        params = {"public_id": code.household_public_id}
        return pipe.run(_CARD_HOUSEHOLD, params), pipe.run(_MEMBERS_OF_CARD, params)
    params = {"number": code.number}
    return pipe.run(_PAY_CODE, params), pipe.run(_MEMBERS_OF_PAY_CODE, params)


def _resolve(village_id: int, code: codes.Code | None, now) -> Scan:
    """The household (and resident) a parsed code names, read at once (see `_scan_of`)."""
    with batched_reads() as pipe:
        sent = _send_code_reads(pipe, code)
    rows = (sent[0].first(), sent[1].all()) if sent else (None, [])
    return _scan_of(village_id, code, *rows, now)


def _scan_of(village_id: int, code: codes.Code | None, row, members: list, now) -> Scan:
    """The household (and resident) a parsed code names, from the rows `_send_code_reads`
    read. Raises CodeUnknown, CardReplaced or OtherVillage (a card only: a card cannot be
    guessed, so it may say where it is from). Unknown, expired, used and another village's pay
    codes are all CodeUnknown: a counter cannot tell them apart."""
    if code is None:
        raise CodeUnknown()
    if code.kind == "card":
        if row is None:
            raise CodeUnknown()
        household = ScannedHousehold(*row)
        if household.village_id != village_id:
            raise OtherVillage()
        if household.card_version != code.card_version:
            raise CardReplaced()
        resident, pay_code_id = None, None
    else:
        live = (
            row is not None
            and row[1] == village_id
            and row[2] is None
            and (row[3] > now or (row[4] is not None and row[4] > now))
            and row[8] == "active"
        )
        if not live:
            raise CodeUnknown()
        pay_code_id = row[0]
        resident = ScannedResident(row[5], row[6], row[7])
        household = ScannedHousehold(*row[9:])
    residents = [ScannedResident(*r) for r in members]
    return Scan(code, household, resident, residents, pay_code_id=pay_code_id)


def _guarded(village_id: int, clerk_id: int, venue_id: int, code, evaluate):
    """Run `evaluate()` against the code-guessing budget of the clerk and the counter. What a
    person could guess (a typed number, text that is no code of ours) is counted before it is
    evaluated and refused unevaluated while the budget is spent, so the limit is exact however
    many requests arrive at once; a right one gives its count back. A signed QR cannot be
    guessed: it is evaluated always, and counted only when it fails."""
    limits = _code_limits(clerk_id, venue_id)
    guessable = code is None or not code.signed
    if guessable:
        refused = throttle.reserve(limits)
        if refused is not None:
            if refused.first:
                _record_code_limit(village_id, clerk_id, venue_id, refused)
            raise TooManyCodes(minutes=refused.minutes)
    try:
        result = evaluate()
    except CodeUnknown:
        if not guessable:
            refused = throttle.reserve(limits)
            if refused is not None and refused.first:
                _record_code_limit(village_id, clerk_id, venue_id, refused)
        raise
    except DomainError:
        if guessable:  # the code was right; something else (stock, points...) said no
            throttle.refund(limits)
        raise
    if guessable:
        throttle.refund(limits)
    return result


def _record_code_limit(village_id, clerk_id, venue_id, refused: throttle.Refused) -> None:
    """The village admin sees in the audit log that a counter ran out of failed codes."""
    with transaction():
        record(
            village_id,
            clerk_id,
            "counter.code_limit",
            f"venue:{venue_id}",
            f"{refused.limit.key} {refused.limit.limit}/{refused.limit.minutes}min",
        )


def lookup(village_id: int, venue_id: int, clerk_id: int, text: str) -> Scan:
    """What the clerk sees after a scan. A pay code's lookup is recorded: the code stays
    accepted for HOLD_SECONDS while the clerk picks items. Raises CodeUnknown (unknown, expired,
    used, another village's pay code), CardReplaced, OtherVillage, TooManyCodes."""
    code = _parse(text)

    def evaluate() -> Scan:
        with transaction():
            now = utcnow()
            scan = _resolve(village_id, code, now)
            if scan.pay_code_id is not None:
                held = db.session.execute(
                    update(PayCode)
                    .where(PayCode.id == scan.pay_code_id, PayCode.used_at.is_(None))
                    .values(held_until=now + timedelta(seconds=codes.HOLD_SECONDS))
                )
                if held.rowcount != 1:  # used by another counter a moment ago
                    raise CodeUnknown()
            return scan

    scan = _guarded(village_id, clerk_id, venue_id, code, evaluate)
    village = db.session.get(Village, village_id)
    scan.pin_required = scan.source == "card" and village.card_pin_required
    return scan


def _pin_limit(household_id: int) -> throttle.Limit:
    return throttle.Limit(f"pin:{household_id}", PIN_MAX_FAILURES, PIN_LOCK_MINUTES)


def _verify_pin(village_id: int, card_pin_required: bool, household_id: int, pin_hash, pin):
    """Before the redemption's transaction: when the village requires a PIN for a card, check it
    (the hash is slow by design, so never under the ledger lock). The attempt is reserved before
    the hash is compared and given back when the PIN is right, so exactly PIN_MAX_FAILURES
    wrong PINs are ever compared in a window, however many arrive at once. Raises PinRequired,
    PinNotSet, PinLocked, WrongPin."""
    if not card_pin_required:
        return
    if not pin:
        raise PinRequired()
    pin = rules.clean_pin(pin)
    if not pin_hash:
        raise PinNotSet()
    limit = _pin_limit(household_id)
    refused = throttle.reserve([limit])
    if refused is not None:
        raise PinLocked(minutes=refused.minutes)
    if not check_password_hash(pin_hash, pin):
        raise WrongPin()  # the reservation stays: it was a wrong PIN
    throttle.refund([limit])  # a right PIN is no failure


def _fingerprint(venue_id: int, code_text: str, wanted: dict, resident_id) -> str:
    """What a request asked for, so that a reused request_id with another body is refused."""
    body = [venue_id, (code_text or "").strip(), resident_id, sorted(wanted.items())]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


_KNOWN_REQUEST = select(Redemption.id).where(
    Redemption.village_id == bindparam("v"), Redemption.request_id == bindparam("r")
)


def _by_request(village_id: int, request_id: str) -> Redemption | None:
    return db.session.execute(
        select(Redemption)
        .where(Redemption.village_id == village_id, Redemption.request_id == request_id)
        .options(selectinload(Redemption.lines))
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Line:
    item_id: int
    name: str
    qty: int
    points: int  # unit price charged (after any age tier)
    slot: str | None
    goods: bool  # has stock
    daily_limit: int | None


@dataclass(frozen=True)
class Receipt:
    """A redemption as the counter shows it, built from values in hand: answering a clerk
    never loads back what was just written."""

    id: int
    village_id: int
    venue_id: int
    venue: str
    household_id: int
    household_public_id: str
    household_number: str
    household_head: str
    resident_id: int
    resident_name: str
    clerk_id: int
    source: str
    request_id: str
    total: int
    balance_after: int
    entry_id: int | None
    lines: tuple[Line, ...]
    created_at: datetime
    voided: bool = False


def receipt_of(r: Redemption) -> Receipt:
    """The receipt of a redemption read from the database (a replay, a void, a list)."""
    household, resident, venue = r.household, r.resident, r.venue
    return Receipt(
        id=r.id,
        village_id=r.village_id,
        venue_id=r.venue_id,
        venue=venue.name,
        household_id=r.household_id,
        household_public_id=household.public_id,
        household_number=household.number,
        household_head=household.head_name,
        resident_id=r.resident_id,
        resident_name=resident.name,
        clerk_id=r.clerk_id,
        source=r.source,
        request_id=r.request_id,
        total=r.total,
        balance_after=r.balance_after,
        entry_id=r.entry_id,
        lines=tuple(
            Line(line.item_id, line.name, line.qty, line.points, line.slot, False, None)
            for line in r.lines
        ),
        created_at=r.created_at,
        voided=r.voided_at is not None,
    )


def _replay(existing: Redemption, fingerprint: str) -> tuple[Receipt, bool]:
    if existing.request_hash not in (None, fingerprint):
        raise RequestReused()
    return receipt_of(existing), False


@dataclass(frozen=True)
class _Household:
    id: int
    public_id: str
    number: str
    head_name: str


@dataclass(frozen=True)
class _Resident:
    id: int
    name: str


@dataclass
class _Plan:
    """Everything about a redemption that can be known before the ledger lock: who, what, at
    what price, as plain values (ORM objects would reload themselves inside the lock). The
    locked part only re-checks what may have changed, in the statements that write."""

    village_id: int
    venue_id: int
    venue: str
    household: _Household
    resident: _Resident
    source: str
    pay_code_id: int | None
    card_version: int | None
    card_daily_cap: int
    lines: list[Line]

    @property
    def total(self) -> int:
        return sum(line.points * line.qty for line in self.lines)


# As plain values (an integer, the JSON's text), so the row needs no SQLAlchemy conversion and
# goes straight from the driver (`Pipe`); `_settings` turns them back.
_SETTINGS_AND_VENUE = select(
    cast(Village.card_pin_required, Integer),
    cast(Village.meal_age_tiers, Text),
    Village.card_daily_cap,
    Venue.name,
).where(
    Venue.id == bindparam("venue_id"),
    Venue.village_id == Village.id,
    Village.id == bindparam("village_id"),
)
_ITEMS: dict[int, object] = {}


def _items_statement(count: int):
    """The active items of a venue among `count` ids (i0, i1, ...): one statement per count,
    built once (a `Pipe` keeps each one's compiled form; an expanding IN would be compiled
    for every request)."""
    if count not in _ITEMS:
        _ITEMS[count] = select(
            Item.id, Item.name, Item.points, Item.stock, Item.slot, Item.daily_limit
        ).where(
            Item.id.in_([bindparam(f"i{k}") for k in range(count)]),
            Item.venue_id == bindparam("venue_id"),
            Item.active.is_(True),
        )
    return _ITEMS[count]


@dataclass
class _Reads:
    """What a redemption reads before the lock, all sent at once."""

    known: bool  # the request id was answered already
    settings: tuple | None
    holder: tuple | None  # the card's household, or the pay code with its resident
    members: list
    items: list
    redemption_id: int | None  # PostgreSQL: its id, drawn


def _read_plan(village_id: int, venue_id: int, request_id: str, code, wanted: dict) -> _Reads:
    """Every read the redemption needs before the lock, sent together: on PostgreSQL one wait
    for the server instead of five. Nothing is judged here (a guessable code is judged only
    after it was counted, in `_plan`)."""
    items_params = {f"i{k}": item_id for k, item_id in enumerate(wanted)}
    with batched_reads() as pipe:
        known = pipe.run(_KNOWN_REQUEST, {"v": village_id, "r": request_id})
        settings = pipe.run(_SETTINGS_AND_VENUE, {"venue_id": venue_id, "village_id": village_id})
        code_reads = _send_code_reads(pipe, code)
        items = pipe.run(_items_statement(len(wanted)), {**items_params, "venue_id": venue_id})
        redemption_id = send_next_redemption_id(pipe)  # a sequence is not the lock
    return _Reads(
        known=known.first() is not None,
        settings=settings.first(),
        holder=code_reads[0].first() if code_reads else None,
        members=code_reads[1].all() if code_reads else [],
        items=items.all(),
        redemption_id=redemption_id.scalar() if redemption_id is not None else None,
    )


def _plan(
    reads: _Reads, village_id: int, venue_id: int, code, wanted: dict, resident_id, pin
) -> _Plan:
    """From what was read before the lock, what the redemption will write; raise what can be
    known already."""
    if reads.settings is None:
        raise NotFound()
    pin_required, tiers_text, daily_cap, venue_name = reads.settings
    pin_required, tiers = bool(pin_required), json.loads(tiers_text)
    scan = _scan_of(village_id, code, reads.holder, reads.members, utcnow())
    household = scan.household
    if scan.source == "card":
        _verify_pin(village_id, pin_required, household.id, household.card_pin_hash, pin)
    resident = _resident_for(scan, resident_id)
    by_id = {row[0]: row for row in reads.items}
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise InvalidInput(_l("Item %(id)s is not sold at this venue."), id=missing[0])
    year = rules.local_day(utcnow()).year
    lines = []
    for item_id, qty in wanted.items():
        _id, name, points, stock, slot, daily_limit = by_id[item_id]
        lines.append(
            Line(
                item_id=item_id,
                name=name,
                qty=qty,
                points=points
                if slot is None
                else rules.meal_price(points, resident.birth_year, tiers, year),
                slot=slot,
                goods=stock is not None,
                daily_limit=daily_limit,
            )
        )
    return _Plan(
        village_id=village_id,
        venue_id=venue_id,
        venue=venue_name,
        household=_Household(
            household.id, household.public_id, household.number, household.head_name
        ),
        resident=_Resident(resident.id, resident.name),
        source=scan.source,
        pay_code_id=scan.pay_code_id,
        card_version=household.card_version if scan.source == "card" else None,
        card_daily_cap=daily_cap,
        lines=lines,
    )


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
) -> tuple[Receipt, bool]:
    """Turn a scanned code into goods or meals. Returns (receipt, created); the same
    request_id again returns the first redemption and created=False, or raises RequestReused
    when it came with a different body.

    Raises InvalidInput (malformed, unknown item), CodeUnknown/CardReplaced, OtherVillage,
    TooManyCodes, PinRequired/WrongPin/PinNotSet/PinLocked, InsufficientPoints, OutOfStock,
    MealLimit, CardDailyCap, HouseholdArchived. Nothing is written unless everything passes
    (but a failed code or PIN is counted).

    Everything that does not need the ledger lock - checking the request, reading the code,
    the household, the items and their prices, the PIN - happens before it; under the lock only
    what may have changed meanwhile is checked, in the statements that write.
    """
    request_id = rules.clean_request_id(request_id)
    wanted = rules.clean_lines(lines)
    if resident_id is not None:
        resident_id = rules.whole(resident_id)
        if resident_id is None or not 0 < resident_id <= rules.MAX_ID:
            raise InvalidInput(_l("resident_id must be a whole number."))
    fingerprint = _fingerprint(venue_id, code_text, wanted, resident_id)
    code = _parse(code_text)
    reads = _read_plan(village_id, venue_id, request_id, code, wanted)
    if reads.known:
        # A retry of an answered request: no lock, no PIN, no code counted.
        return _replay(_by_request(village_id, request_id), fingerprint)
    plan = _guarded(
        village_id,
        clerk_id,
        venue_id,
        code,
        lambda: _plan(reads, village_id, venue_id, code, wanted, resident_id, pin),
    )
    try:
        return _write(plan, clerk_id, request_id, fingerprint, reads.redemption_id), True
    except IntegrityError:
        # Only a concurrent twin of this request gets here (the ledger lock serialises the
        # rest): the unique request id refused it, so answer with the one that won.
        db.session.rollback()
        existing = _by_request(village_id, request_id)
        if existing is None:
            raise
        return _replay(existing, fingerprint)
    except _CodeGone:  # used or expired between the reading and the lock
        db.session.rollback()
        _guarded(village_id, clerk_id, venue_id, code, _raise_unknown)
        raise AssertionError("unreachable") from None


class _CodeGone(Exception):
    pass


def _raise_unknown():
    raise CodeUnknown()


_redemption = Redemption.__table__
_line = RedemptionLine.__table__
_item = Item.__table__
_pay_code = PayCode.__table__
# The locked path's statements, built once (see ledger/services.py).
_NEXT_REDEMPTION_ID = text("SELECT nextval(pg_get_serial_sequence('redemption', 'id'))")
_MAX_ID_PLUS_ONE = select(func.coalesce(func.max(_redemption.c.id), 0) + 1)
_USE_PAY_CODE = (
    update(_pay_code)
    .where(
        _pay_code.c.id == bindparam("p_id"),
        _pay_code.c.used_at.is_(None),
        or_(
            _pay_code.c.expires_at > bindparam("p_now"), _pay_code.c.held_until > bindparam("p_now")
        ),
    )
    .values(used_at=bindparam("p_now"))
)
_BALANCE_OF = select(Household.balance, Household.status).where(Household.id == bindparam("id"))
_INSERT_REDEMPTION = insert(_redemption)
_INSERT_LINE = insert(_line)


def insert_redemption(pipe: Pipe, lines, **redemption) -> None:
    """Send a redemption row (its id given) and its lines: two statements, under the lock the
    caller holds, nothing to wait for. The counter and the offline sync both record through
    here."""
    pipe.run(_INSERT_REDEMPTION, redemption)
    pipe.many(
        _INSERT_LINE,
        [
            dict(
                redemption_id=redemption["id"],
                item_id=line.item_id,
                name=line.name,
                qty=line.qty,
                points=line.points,
                slot=line.slot,
            )
            for line in lines
        ],
    )


_TAKE_STOCK = (
    update(_item)
    .where(
        _item.c.id == bindparam("i_id"),
        _item.c.active.is_(True),
        _item.c.stock >= bindparam("i_qty"),
    )
    .values(stock=_item.c.stock - bindparam("i_qty"))
)
_SPENT_TODAY = (
    select(func.coalesce(func.sum(Redemption.total), 0))
    .where(
        Redemption.household_id == bindparam("household_id"),
        Redemption.day == bindparam("today"),
        Redemption.source == "card",
        Redemption.voided_at.is_(None),
    )
    .scalar_subquery()
)
_CARD_CHECK = select(Household.card_version, _SPENT_TODAY).where(
    Household.id == bindparam("household_id")
)


def send_next_redemption_id(pipe: Pipe) -> Sent | None:
    """On PostgreSQL a redemption's id comes from its sequence, drawn before the lock (other
    villages insert at the same time), so nothing under the lock waits for it; read it with
    `.scalar()`. None on SQLite, where the lock is the database's: max + 1 under it. (A
    ledger entry's id is never drawn before the lock: drawn under it, a village's entries'
    ids follow their chain order, which `verify` relies on.)"""
    return pipe.run(_NEXT_REDEMPTION_ID) if pipe.postgresql else None


def next_redemption_id() -> int | None:
    """A redemption id from the sequence on PostgreSQL (before any lock); None on SQLite."""
    sent = send_next_redemption_id(Pipe())
    return None if sent is None else sent.scalar()


def _write(plan: _Plan, clerk_id: int, request_id: str, fingerprint: str, redemption_id):
    """The locked part. On PostgreSQL a redemption for points is sent whole with its COMMIT
    (`_write_at_once`): the lock is held for one round trip to the server. Whatever it refuses
    - and free meals, SQLite - goes the way that reads each check's answer
    (`_write_checking`), which says why."""
    if redemption_id is not None and plan.total:
        receipt = _write_at_once(plan, clerk_id, request_id, fingerprint, redemption_id)
        if receipt is not None:
            return receipt
    return _write_checking(plan, clerk_id, request_id, fingerprint, redemption_id)


def _entry_fields(plan: _Plan, clerk_id: int, request_id: str, redemption_id: int, now) -> dict:
    """What a redemption's ledger entry says, the same on both ways of writing it: its
    idempotency key (the request) and its reference (the redemption)."""
    return dict(
        kind="redeem",
        reason=_reason(plan),
        actor_id=clerk_id,
        key=f"redemption:{request_id}",
        ref=f"redemption:{redemption_id}",
        at=now,
    )


def _reason(plan: _Plan) -> str:
    return f"{plan.venue}: " + "、".join(f"{line.name}×{line.qty}" for line in plan.lines)


_GOODS_GUARDS: dict[int, str] = {}
_PAY_CODE_GUARD = (
    "p AS (UPDATE pay_code SET used_at = CAST(:p_now AS TIMESTAMP) WHERE id = :p_id"
    " AND used_at IS NULL AND (expires_at > CAST(:p_now AS TIMESTAMP)"
    " OR held_until > CAST(:p_now AS TIMESTAMP)) RETURNING id)"
)
# The rules of `_check_card` (and `_check_stock`, `_check_meal_limits` below), as conditions
# on the household's UPDATE.
_CARD_CONDITION = (
    "card_version = :c_version AND (SELECT coalesce(sum(r.total), 0) FROM redemption AS r"
    " WHERE r.household_id = :l_h AND r.day = CAST(:c_today AS DATE) AND r.source = 'card'"
    " AND r.voided_at IS NULL) - :l_points <= :c_cap"
)
# The redemption and its lines, written by the posting's statement from its entry (e).
_REDEMPTION_FOLLOWER = (
    "r AS (INSERT INTO redemption (id, village_id, venue_id, household_id, resident_id,"
    " clerk_id, request_id, request_hash, source, total, balance_after, entry_id, day,"
    " created_at, overdraft) SELECT CAST(:r_id AS INTEGER), CAST(:l_v AS INTEGER),"
    " CAST(:r_venue AS INTEGER), CAST(:l_h AS INTEGER), CAST(:r_resident AS INTEGER),"
    " CAST(:l_actor AS INTEGER), CAST(:r_request AS TEXT), CAST(:r_hash AS TEXT),"
    " CAST(:r_source AS TEXT), CAST(:r_total AS INTEGER), e.balance_after, e.id,"
    " CAST(:r_day AS DATE), CAST(:l_at AS TIMESTAMP), 0 FROM e RETURNING id)"
)
_LINES_FOLLOWERS: dict[int, str] = {}


def _lines_follower(count: int) -> str:
    """Insert `count` lines (n_i0, n_n0, n_q0, n_p0, n_s0, ...) of the redemption r, in order."""
    if count not in _LINES_FOLLOWERS:
        rows = ", ".join(
            f"({k}, CAST(:n_i{k} AS INTEGER), CAST(:n_n{k} AS TEXT), CAST(:n_q{k} AS INTEGER),"
            f" CAST(:n_p{k} AS INTEGER), CAST(:n_s{k} AS TEXT))"
            for k in range(count)
        )
        _LINES_FOLLOWERS[count] = (
            "n AS (INSERT INTO redemption_line (redemption_id, item_id, name, qty, points, slot)"
            " SELECT r.id, w.item_id, w.name, w.qty, w.points, w.slot FROM r, (VALUES "
            + rows
            + ") AS w (k, item_id, name, qty, points, slot) ORDER BY w.k)"
        )
    return _LINES_FOLLOWERS[count]


def _meal_condition(k: int) -> str:
    """`_check_meal_limits` for the k-th slot (m_s{k}) of the batch: the resident's meals of it
    today, not voided, and the batch's (m_c{k}) within its limit (m_l{k})."""
    return (
        "(SELECT coalesce(sum(ml.qty), 0) FROM redemption_line AS ml JOIN redemption AS mr"
        " ON mr.id = ml.redemption_id WHERE mr.resident_id = :m_resident"
        " AND mr.day = CAST(:m_today AS DATE) AND mr.voided_at IS NULL"
        f" AND ml.slot = CAST(:m_s{k} AS TEXT)) + :m_c{k} <= :m_l{k}"
    )


def _goods_guard(count: int) -> str:
    """Lower the stock of `count` goods (g_i0, g_q0, ...) where each has enough and is on sale."""
    if count not in _GOODS_GUARDS:
        rows = ", ".join(
            f"(CAST(:g_i{k} AS INTEGER), CAST(:g_q{k} AS INTEGER))" for k in range(count)
        )
        _GOODS_GUARDS[count] = (
            "s AS (UPDATE store_item SET stock = store_item.stock - w.qty FROM (VALUES "
            + rows
            + ") AS w (id, qty) WHERE store_item.id = w.id AND store_item.active"
            " AND store_item.stock >= w.qty RETURNING store_item.id)"
        )
    return _GOODS_GUARDS[count]


def _write_at_once(plan: _Plan, clerk_id: int, request_id: str, fingerprint: str, redemption_id):
    """PostgreSQL: the lock, the pay code's use, the stock, the balance with the card's rules,
    the entry and the redemption, sent with the COMMIT in one pipeline: no answer is read
    under the lock, so it is held for one round trip and the commit. Every check is a condition
    of the balance's UPDATE; if one fails the entry has no balance and the transaction fails
    whole (nothing written): returns None, for `_write_checking` to find out why."""
    total, household = plan.total, plan.household
    now = utcnow()
    today = rules.local_day(now)
    goods = {line.item_id: line.qty for line in plan.lines if line.goods}
    guards, conditions, params = [], [], {}
    if goods:
        guards.append(_goods_guard(len(goods)))
        conditions.append("(SELECT count(*) FROM s) = :g_n")
        params["g_n"] = len(goods)
        for k, (item_id, qty) in enumerate(goods.items()):
            params[f"g_i{k}"], params[f"g_q{k}"] = item_id, qty
    if plan.pay_code_id is not None:
        guards.append(_PAY_CODE_GUARD)
        conditions.append("EXISTS (SELECT 1 FROM p)")
        params.update(p_id=plan.pay_code_id, p_now=now)
    if plan.source == "card":
        conditions.append(_CARD_CONDITION)
        params.update(c_version=plan.card_version, c_today=today, c_cap=plan.card_daily_cap)
    meals = [line for line in plan.lines if line.slot]
    if meals:
        params.update(m_resident=plan.resident.id, m_today=today)
        for k, (slot, (count, limit)) in enumerate(meal_counts(meals).items()):
            conditions.append(_meal_condition(k))
            params.update({f"m_s{k}": slot, f"m_c{k}": count, f"m_l{k}": limit})
    params.update(
        r_id=redemption_id,
        r_venue=plan.venue_id,
        r_resident=plan.resident.id,
        r_request=request_id,
        r_hash=fingerprint,
        r_source=plan.source,
        r_total=total,
        r_day=today,
    )
    for k, line in enumerate(plan.lines):
        params.update(
            {
                f"n_i{k}": line.item_id,
                f"n_n{k}": line.name,
                f"n_q{k}": line.qty,
                f"n_p{k}": line.points,
                f"n_s{k}": line.slot,
            }
        )
    post = ledger.prepare_post(
        plan.village_id,
        household.id,
        -total,
        **_entry_fields(plan, clerk_id, request_id, redemption_id, now),
        only_active=True,
        guards=tuple(guards),
        condition=" AND ".join(conditions),
        followers=(_REDEMPTION_FOLLOWER, _lines_follower(len(plan.lines))),
        params=params,
    )
    try:
        with transaction(pipelined=True):  # from here on only sending: the lock, then one
            pipe = Pipe()  # statement with everything, then the COMMIT
            ledger.queue_lock(pipe, plan.village_id)
            posted = ledger.send_post(pipe, post)
    except IntegrityError as e:
        if ledger.refused(e):
            return None
        raise
    ledger.forget_posted(post)
    for item_id in goods:
        ledger.expire_columns(Item, item_id, "stock")
    balance_after, entry_id = posted.first()[:2]
    return _receipt(plan, clerk_id, request_id, redemption_id, entry_id, balance_after, now)


def _write_checking(plan: _Plan, clerk_id: int, request_id: str, fingerprint: str, redemption_id):
    """The locked part, each check's answer read: a handful of statements, each a check and a
    write at once, sent together and their answers read once (on PostgreSQL: the lock is held
    for about two round trips to the server and the commit, not one per statement)."""
    total = plan.total
    household = plan.household
    with transaction(pipelined=True):
        pipe = Pipe()
        ledger.queue_lock(pipe, plan.village_id)  # everything below runs under it
        now = utcnow()
        today = rules.local_day(now)
        used = None
        if plan.pay_code_id is not None:
            used = pipe.run(_USE_PAY_CODE, {"p_id": plan.pay_code_id, "p_now": now})
        meals = [line for line in plan.lines if line.slot]
        had = None
        if meals:  # the resident's meals today by slot (voided meals do not count)
            had = pipe.run(MEALS_HAD, {"resident_id": plan.resident.id, "today": today})
        card = None
        if plan.source == "card":
            card = pipe.run(_CARD_CHECK, {"household_id": household.id, "today": today})
        goods = {line.item_id: line.qty for line in plan.lines if line.goods}
        taken = [pipe.run(_TAKE_STOCK, {"i_id": i, "i_qty": q}) for i, q in goods.items()]
        if total:
            pending = ledger.begin_post(
                pipe, plan.village_id, household.id, -total, floor_at_zero=True, only_active=True
            )
        else:
            balance = pipe.run(_BALANCE_OF, {"id": household.id})
        # The answers, in the order the rules are told: the code, meals, card, stock, points.
        # (SQLite: no sequences; max + 1 is safe under the database's write lock.)
        if redemption_id is None:
            redemption_id = pipe.run(_MAX_ID_PLUS_ONE).scalar()
        if used is not None and used.rowcount != 1:
            raise _CodeGone()
        if had is not None:
            _check_meal_limits(plan.resident, meals, dict(had.all()))
        if card is not None:
            _check_card(plan, card.first(), total)
        if goods:
            _check_stock(pipe, plan.lines, goods, taken)
        if total:
            posted = ledger.end_post(
                pipe,
                pending,
                **_entry_fields(plan, clerk_id, request_id, redemption_id, now),
            )
            entry_id, balance_after = posted.id, posted.balance_after
        else:
            row = balance.first()
            if row[1] != "active":
                raise HouseholdArchived()
            entry_id, balance_after = None, row[0]
        insert_redemption(
            pipe,
            plan.lines,
            id=redemption_id,
            village_id=plan.village_id,
            venue_id=plan.venue_id,
            household_id=household.id,
            resident_id=plan.resident.id,
            clerk_id=clerk_id,
            request_id=request_id,
            request_hash=fingerprint,
            source=plan.source,
            total=total,
            balance_after=balance_after,
            entry_id=entry_id,
            day=today,
            created_at=now,
        )
    return _receipt(plan, clerk_id, request_id, redemption_id, entry_id, balance_after, now)


def _receipt(plan: _Plan, clerk_id, request_id, redemption_id, entry_id, balance_after, now):
    household = plan.household
    return Receipt(
        id=redemption_id,
        village_id=plan.village_id,
        venue_id=plan.venue_id,
        venue=plan.venue,
        household_id=household.id,
        household_public_id=household.public_id,
        household_number=household.number,
        household_head=household.head_name,
        resident_id=plan.resident.id,
        resident_name=plan.resident.name,
        clerk_id=clerk_id,
        source=plan.source,
        request_id=request_id,
        total=plan.total,
        balance_after=balance_after,
        entry_id=entry_id,
        lines=tuple(plan.lines),
        created_at=now,
    )


def _check_stock(pipe: Pipe, lines: list[Line], goods: dict[int, int], taken: list[Sent]) -> None:
    """Each goods line lowered its item's stock by one conditional UPDATE (only if it has
    enough and is still on sale); one that changed nothing ran out."""
    if all(sent.rowcount == 1 for sent in taken):
        for item_id in goods:
            ledger.expire_columns(Item, item_id, "stock")
        return
    names = {line.item_id: line.name for line in lines}
    for (item_id, qty), sent in zip(goods.items(), taken, strict=True):
        if sent.rowcount != 1:
            stock = pipe.run(_STOCK_OF, {"i_id": item_id}).scalar() or 0
            # Enough left but nothing changed: taken off sale meanwhile.
            raise OutOfStock(item=names[item_id], stock=stock if stock < qty else 0)


_STOCK_OF = select(_item.c.stock).where(_item.c.id == bindparam("i_id"))
MEALS_HAD = (
    select(RedemptionLine.slot, func.sum(RedemptionLine.qty))
    .join(Redemption, Redemption.id == RedemptionLine.redemption_id)
    .where(
        Redemption.resident_id == bindparam("resident_id"),
        Redemption.day == bindparam("today"),
        Redemption.voided_at.is_(None),
    )
    .group_by(RedemptionLine.slot)
)


def meal_counts(meals: list[Line]) -> dict[str, tuple[int, int]]:
    """slot -> (meals of it in this batch, its daily limit per resident)."""
    by_slot: dict[str, tuple[int, int]] = {}
    for line in meals:
        count, limit = by_slot.get(line.slot, (0, line.daily_limit or 1))
        by_slot[line.slot] = (count + line.qty, min(limit, line.daily_limit or 1))
    return by_slot


def _check_meal_limits(resident: _Resident, meals: list[Line], had: dict) -> None:
    """At most each meal's daily limit per resident per slot."""
    for slot, (count, limit) in meal_counts(meals).items():
        if had.get(slot, 0) + count > limit:
            raise MealLimit(
                name=resident.name, count=had.get(slot, 0), slot=SLOT_LABELS[slot], limit=limit
            )


SLOT_LABELS = {"breakfast": _l("breakfast"), "lunch": _l("lunch"), "dinner": _l("dinner")}


def _check_card(plan: _Plan, answer, total: int) -> None:
    """Under the lock: the card is still the household's current one, and today's card
    spending stays within the village's daily cap (`answer`: the version and today's spend)."""
    version, spent = answer
    if version != plan.card_version:
        raise CardReplaced()
    if spent + total > plan.card_daily_cap:
        raise CardDailyCap(cap=plan.card_daily_cap, spent=spent)


@dataclass(frozen=True)
class Voided:
    receipt: Receipt
    entry_id: int | None  # the reversal entry (none for a free meal)
    balance_after: int  # the household's balance after the points came back


def void(
    village_id: int,
    redemption_id: int,
    actor_id: int,
    *,
    admin: bool,
    venue_id: int | None = None,
    reason: str = "",
) -> Voided:
    """Undo a redemption: a reversal entry gives the points back and the stock returns. A clerk
    may void only today's redemptions of the own venue; an admin any. Raises AlreadyVoided,
    VoidTooLate, NotFound."""
    reason = _text(reason, _l("Reason"), 200, required=False) or str(_l("Redemption voided"))
    with transaction():
        ledger.lock_head(village_id)
        redemption = db.session.execute(
            select(Redemption)
            .where(Redemption.id == redemption_id, Redemption.village_id == village_id)
            .options(selectinload(Redemption.lines))
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
        balance_after = None
        if redemption.entry_id is not None:
            reversal = ledger.reverse(
                village_id, redemption.entry_id, f"{reason} (#{redemption.id})", actor_id
            )
            redemption.void_entry_id = reversal.id
            balance_after = reversal.balance_after
        for line in redemption.lines:
            db.session.execute(
                update(_item)
                .where(_item.c.id == line.item_id, _item.c.stock.is_not(None))
                .values(stock=_item.c.stock + line.qty)
            )
            ledger.expire_columns(Item, line.item_id, "stock")
        redemption.voided_at = utcnow()
        redemption.voided_by_id = actor_id
        record(village_id, actor_id, "redemption.void", f"redemption:{redemption.id}", reason)
        db.session.flush()
        if balance_after is None:
            balance_after = db.session.scalar(
                select(Household.balance).where(Household.id == redemption.household_id)
            )
        return Voided(receipt_of(redemption), redemption.void_entry_id, balance_after)
