"""The counter when the village network drops: the offline list a counter keeps, and the sync
of what it recorded offline. Only ledger.services writes points.

The offline list (per venue) holds the items and prices and, per active household, what a card
scan needs (the SHA-256 of the card's token, never the token), the residents with their meal
prices and the household's offline allowance: the least of its balance, what is left today of
the village's `offline_daily_cap` and what is left today of the card's daily cap. The list
carries a signed note of when it was made and with which cap.

The sync records each offline redemption exactly once (its request id, unique per village in
`redemption` and `offline_conflict`, checked under the village's ledger lock) and decides:

- honoured: within the household's allowance - its offline redemptions since the list was
  made stay within its balance then, and those of the day within the cap. It is posted even if
  the balance has dropped since (the goods are gone): the balance may then go below zero, by at
  most the allowance, and the redemption and its entry say so (`overdraft`);
- a conflict (`OfflineConflict`): beyond the allowance, for a card reissued before the sale,
  for an archived household, without a valid list, beyond what the card may spend that day
  (the list's allowance counts the card's spending too), for a meal beyond the resident's limit for
  its slot that day (the list tells the counter the meals had when it was made, and the counter
  counts its own since; two counters offline may still both serve one). Nothing is posted; the
  admin decides.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import case, func, select, update

from ..audit import record
from ..database import Pipe, transaction, utcnow
from ..errors import InsufficientPoints, InvalidInput, NotFound
from ..extensions import db
from ..households.models import Household, Resident
from ..ledger import services as ledger
from ..ledger.models import LedgerEntry
from ..store import codes, rules
from ..store import services as store
from ..store.errors import CodeUnknown, OtherVillage, RequestReused
from ..store.models import Item, Redemption, RedemptionLine, Venue
from ..villages.models import AuditLog, Village
from .models import OfflineConflict

LIST_MAX_AGE = timedelta(days=7)  # a counter offline longer than this syncs conflicts only
CLOCK_SKEW = timedelta(minutes=5)
_RECEIPT_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$")


def card_hash(token: str) -> str:
    """What the offline list holds for a card: the browser hashes the scanned token alike."""
    return hashlib.sha256(token.encode()).hexdigest()


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="village-points-offline-list")


def _list_token(village_id: int, venue_id: int, issued: datetime, cap: int) -> str:
    return _serializer().dumps([village_id, venue_id, issued.isoformat(), cap])


def _read_list_token(token, village_id: int, venue_id: int) -> tuple[datetime, int] | None:
    """(issued, cap) of a list this server made for this venue, else None."""
    if not isinstance(token, str) or len(token) > 300:
        return None
    try:
        v, ven, issued, cap = _serializer().loads(token)
        issued = datetime.fromisoformat(issued)
    except (BadSignature, ValueError, TypeError):
        return None
    if v != village_id or ven != venue_id or not isinstance(cap, int):
        return None
    return issued, cap


def offline_list(village_id: int, venue_id: int) -> dict:
    """The venue's offline list (see the module's docstring), as JSON-ready values: three reads
    (settings and venue, items, households with their residents)."""
    found = db.session.execute(
        select(Village, Venue).where(
            Venue.id == venue_id, Venue.village_id == Village.id, Village.id == village_id
        )
    ).first()
    if found is None:
        raise NotFound()
    village, venue = found
    now = utcnow()
    cap = village.offline_daily_cap
    enabled = cap > 0 and not village.card_pin_required
    items = db.session.scalars(
        select(Item)
        .where(Item.venue_id == venue_id, Item.active.is_(True))
        .order_by(Item.slot.is_not(None), Item.id)
    ).all()
    meals = [i for i in items if i.is_meal]
    year = rules.local_day(now).year
    households = []
    if enabled:
        rows = db.session.execute(
            select(
                Household.id,
                Household.public_id,
                Household.number,
                Household.head_name,
                Household.balance,
                Household.card_version,
            )
            .where(Household.village_id == village_id, Household.status == "active")
            .order_by(Household.id)
        ).all()
        had = _meals_today(village_id, rules.local_day(now)) if meals else {}
        members: dict[int, list] = {}
        for rid, hid, name, birth_year in db.session.execute(
            select(Resident.id, Resident.household_id, Resident.name, Resident.birth_year)
            .where(Resident.village_id == village_id, Resident.status == "active")
            .order_by(Resident.id)
        ):
            members.setdefault(hid, []).append(
                {
                    "id": rid,
                    "name": name,
                    "prices": {
                        str(i.id): rules.meal_price(
                            i.points, birth_year, village.meal_age_tiers, year
                        )
                        for i in meals
                    },
                    # Meals of each slot had today, against each meal's daily limit.
                    "meals": had.get(rid, {}),
                }
            )
        # What each household already redeemed offline today counts against today's offline
        # cap, and what its card spent today (online or offline) against the card's daily cap.
        spent_today = {
            hid: (offline_spent, card_spent)
            for hid, offline_spent, card_spent in db.session.execute(
                select(
                    Redemption.household_id,
                    func.sum(
                        case((Redemption.occurred_at.is_not(None), Redemption.total), else_=0)
                    ),
                    func.sum(case((Redemption.source == "card", Redemption.total), else_=0)),
                )
                .where(
                    Redemption.village_id == village_id,
                    Redemption.day == rules.local_day(now),
                    Redemption.voided_at.is_(None),
                )
                .group_by(Redemption.household_id)
            )
        }
        for hid, public_id, number, head, balance, version in rows:
            if hid not in members:
                continue  # nobody to take the goods
            offline_spent, card_spent = spent_today.get(hid, (0, 0))
            left = min(balance, cap - offline_spent, village.card_daily_cap - card_spent)
            households.append(
                {
                    "card": card_hash(codes.card_token(public_id, version)),
                    "public_id": public_id,
                    "number": number,
                    "head": head,
                    "balance": balance,
                    "allowance": max(0, left),
                    "residents": members[hid],
                }
            )
    return {
        "enabled": enabled,
        "why_off": None if enabled else ("pin" if village.card_pin_required else "cap"),
        "cap": cap,
        "issued_at": now.isoformat() + "Z",
        "day": rules.local_day(now).isoformat(),  # the village's day the meals counted are of
        "utc_offset": int(rules.LOCAL_TZ.total_seconds()) // 60,  # its day's start, in minutes
        "list": _list_token(village_id, venue_id, now, cap),
        "venue": {"id": venue.id, "name": venue.name},
        "items": [
            {
                "id": i.id,
                "name": i.name,
                "points": i.points,
                "stock": i.stock,
                "slot": i.slot,
                "limit": (i.daily_limit or 1) if i.is_meal else None,
                "unit": i.unit,
                "low": i.is_low,
            }
            for i in items
        ],
        "households": households,
    }


def _meals_today(village_id: int, day) -> dict[int, dict[str, int]]:
    """resident id -> {slot: meals of it had on `day`} (voided meals do not count)."""
    had: dict[int, dict[str, int]] = {}
    for resident_id, slot, qty in db.session.execute(
        select(Redemption.resident_id, RedemptionLine.slot, func.sum(RedemptionLine.qty))
        .join(RedemptionLine, RedemptionLine.redemption_id == Redemption.id)
        .where(
            Redemption.village_id == village_id,
            Redemption.day == day,
            Redemption.voided_at.is_(None),
            RedemptionLine.slot.is_not(None),
        )
        .group_by(Redemption.resident_id, RedemptionLine.slot)
    ):
        had.setdefault(resident_id, {})[slot] = int(qty)
    return had


# ---------------------------------------------------------------- sync


@dataclass(frozen=True)
class Synced:
    """What the sync answers: the redemption it recorded (honoured) or the conflict."""

    status: str  # recorded | conflict
    receipt: store.Receipt | None
    overdraft: int
    conflict: OfflineConflict | None
    occurred_at: datetime
    synced_at: datetime
    receipt_no: str


def _clean_receipt_no(value) -> str:
    if not isinstance(value, str) or not _RECEIPT_NO.match(value):
        raise InvalidInput(_l("receipt_no must be 1 to 40 letters, digits or - _ : ."))
    return value


def _clean_occurred_at(value, now: datetime) -> datetime:
    """An ISO 8601 time (UTC, or with an offset) no later than now (and a little clock skew)."""
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidInput(_l("occurred_at must be a date and time (ISO 8601)."))
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(_l("occurred_at must be a date and time (ISO 8601).")) from None
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    if at > now + CLOCK_SKEW or at < now - timedelta(days=365):
        raise InvalidInput(_l("occurred_at is not a time this counter can have been offline."))
    return min(at, now)


def _fingerprint(venue_id, code, wanted, resident_id, receipt_no, occurred_at) -> str:
    body = [
        "offline",
        venue_id,
        code.strip(),
        resident_id,
        sorted(wanted.items()),
        receipt_no,
        occurred_at.isoformat(),
    ]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def _known(village_id: int, request_id: str) -> Redemption | OfflineConflict | None:
    found = db.session.scalar(
        select(Redemption).where(
            Redemption.village_id == village_id, Redemption.request_id == request_id
        )
    )
    if found is not None:
        return found
    return db.session.scalar(
        select(OfflineConflict).where(
            OfflineConflict.village_id == village_id, OfflineConflict.request_id == request_id
        )
    )


def _replay(found, fingerprint: str) -> Synced:
    if found.request_hash not in (None, fingerprint):
        raise RequestReused()
    if isinstance(found, Redemption):
        return Synced(
            "recorded",
            store.receipt_of(found),
            found.overdraft,
            None,
            found.occurred_at or found.created_at,
            found.created_at,
            found.receipt_no or "",
        )
    return Synced("conflict", None, 0, found, found.occurred_at, found.created_at, found.receipt_no)


def sync(
    village_id: int,
    venue_id: int,
    clerk_id: int,
    *,
    code,
    lines,
    request_id,
    resident_id,
    receipt_no,
    occurred_at,
    list_token,
) -> tuple[Synced, bool]:
    """Record one redemption a counter made offline, exactly once. Returns (what was recorded,
    created); the same request id again returns the first answer and created=False (or raises
    RequestReused for another body). Raises InvalidInput for a malformed request or a pay code
    (they are checked online only), CodeUnknown, OtherVillage, NotFound."""
    now = utcnow()
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput(_l("code is required: the scanned text, URL or number."))
    try:
        parsed = codes.parse(code)
    except codes.Unknown:
        raise CodeUnknown() from None
    if parsed.kind != "card":
        raise InvalidInput(_l("Only a household card can be used offline; pay codes only online."))
    request_id = rules.clean_request_id(request_id)
    wanted = rules.clean_lines(lines)
    resident_id = rules.whole(resident_id)
    if resident_id is None or not 0 < resident_id <= rules.MAX_ID:
        raise InvalidInput(_l("resident_id must be a whole number."))
    receipt_no = _clean_receipt_no(receipt_no)
    occurred = _clean_occurred_at(occurred_at, now)
    fingerprint = _fingerprint(venue_id, code, wanted, resident_id, receipt_no, occurred)
    found = _known(village_id, request_id)
    if found is not None:
        return _replay(found, fingerprint), False
    venue = db.session.get(Venue, venue_id)
    if venue is None or venue.village_id != village_id:
        raise NotFound()
    household = db.session.scalar(
        select(Household).where(Household.public_id == parsed.household_public_id)
    )
    if household is None:
        raise CodeUnknown()
    if household.village_id != village_id:
        raise OtherVillage()
    resident = db.session.get(Resident, resident_id)
    if resident is None or resident.household_id != household.id:
        raise InvalidInput(_l("Choose which member of the household takes the goods."))
    items = {
        i.id: i
        for i in db.session.scalars(
            select(Item).where(Item.id.in_(list(wanted)), Item.venue_id == venue_id)
        )
    }
    missing = [i for i in wanted if i not in items]
    if missing:
        raise InvalidInput(_l("Item %(id)s is not sold at this venue."), id=missing[0])
    village = db.session.get(Village, village_id)
    year = rules.local_day(occurred).year
    plan_lines = [
        store.Line(
            item_id=i.id,
            name=i.name,
            qty=qty,
            points=rules.meal_price(i.points, resident.birth_year, village.meal_age_tiers, year)
            if i.is_meal
            else i.points,
            slot=i.slot,
            goods=i.stock is not None,
            daily_limit=i.daily_limit,
        )
        for i, qty in ((items[item_id], qty) for item_id, qty in wanted.items())
    ]
    granted = _read_list_token(list_token, village_id, venue_id)
    facts = dict(
        village_id=village_id,
        venue=venue,
        household=household,
        resident=resident,
        clerk_id=clerk_id,
        request_id=request_id,
        fingerprint=fingerprint,
        receipt_no=receipt_no,
        code=code.strip()[: codes.MAX_CODE],
        card_version=parsed.card_version,
        lines=plan_lines,
        occurred=occurred,
        granted=granted,
    )
    return _record(**facts)


def _record(
    *,
    village_id,
    venue,
    household,
    resident,
    clerk_id,
    request_id,
    fingerprint,
    receipt_no,
    code,
    card_version,
    lines,
    occurred,
    granted,
) -> tuple[Synced, bool]:
    total = sum(line.points * line.qty for line in lines)
    household_id = household.id
    if granted is not None:
        # A sale cannot have happened before its list was made: a device clock behind is read
        # as the list's time, so every sale made from a list counts against its allowance.
        occurred = max(occurred, granted[0])
    with transaction():
        redemption_id = store.next_redemption_id()
        ledger.lock_head(village_id)
        # A twin of this request (a second tab, a resumed sync) that got the lock first.
        found = _known(village_id, request_id)
        if found is not None:
            return _replay(found, fingerprint), False
        now = utcnow()
        current = db.session.execute(
            select(Household.status, Household.card_version).where(Household.id == household_id)
        ).one()
        why, allowance = _judge(
            village_id, household_id, current, card_version, total, occurred, granted, now
        )
        if why is None and _beyond_meal_limits(resident.id, lines, occurred):
            why = "meal_limit"
        if why is None:
            try:
                return _honour(
                    village_id,
                    venue,
                    household,
                    resident,
                    clerk_id,
                    request_id,
                    fingerprint,
                    receipt_no,
                    lines,
                    total,
                    occurred,
                    now,
                    allowance,
                    redemption_id,
                ), True
            except InsufficientPoints:  # below what even the allowance lets it go
                why = "allowance"
        conflict = OfflineConflict(
            village_id=village_id,
            venue_id=venue.id,
            household_id=household_id,
            resident_id=resident.id,
            clerk_id=clerk_id,
            request_id=request_id,
            request_hash=fingerprint,
            receipt_no=receipt_no,
            code=code,
            lines=[[line.item_id, line.qty] for line in lines],
            total=total,
            reason=why,
            occurred_at=occurred,
            day=rules.local_day(occurred),
            created_at=now,
        )
        db.session.add(conflict)
        db.session.flush()
        return Synced("conflict", None, 0, conflict, occurred, now, receipt_no), True


def _judge(village_id, household_id, household, card_version, total, occurred, granted, now):
    """Under the lock: (None, allowance) when the redemption is honoured, else (reason, 0)."""
    if household.status != "active":
        return "archived", 0
    if card_version != household.card_version and _reissued_before(
        village_id, household_id, card_version, occurred
    ):
        return "card_replaced", 0
    if granted is None:
        return "no_list", 0
    issued, cap = granted
    if now - issued > LIST_MAX_AGE:
        return "no_list", 0
    balance_then = db.session.scalar(
        select(LedgerEntry.balance_after)
        .where(LedgerEntry.household_id == household_id, LedgerEntry.created_at <= issued)
        .order_by(LedgerEntry.id.desc())
        .limit(1)
    )
    allowance = max(0, min(balance_then or 0, cap))
    offline = (
        Redemption.household_id == household_id,
        Redemption.occurred_at.is_not(None),
        Redemption.voided_at.is_(None),
    )
    spent_since = db.session.scalar(
        select(func.coalesce(func.sum(Redemption.total), 0)).where(
            *offline, Redemption.occurred_at >= issued
        )
    )
    spent_day = db.session.scalar(
        select(func.coalesce(func.sum(Redemption.total), 0)).where(
            *offline, Redemption.day == rules.local_day(occurred)
        )
    )
    if spent_since + total > allowance or spent_day + total > cap:
        return "allowance", 0
    # The card's daily cap holds offline too, as online: everything the card spent that day.
    card_day = db.session.scalar(
        select(func.coalesce(func.sum(Redemption.total), 0)).where(
            Redemption.household_id == household_id,
            Redemption.day == rules.local_day(occurred),
            Redemption.source == "card",
            Redemption.voided_at.is_(None),
        )
    )
    card_cap = db.session.scalar(select(Village.card_daily_cap).where(Village.id == village_id))
    if card_day + total > card_cap:
        return "card_cap", 0
    return None, allowance


def _beyond_meal_limits(resident_id: int, lines, occurred) -> bool:
    """Under the lock: whether the resident's meals of a slot on the sale's day, this one's
    with them, go beyond the meal's daily limit (as `store._check_meal_limits` online: two
    counters offline, or a list that did not know of a meal, may each have served one)."""
    meals = [line for line in lines if line.slot]
    if not meals:
        return False
    had = dict(
        db.session.execute(
            store.MEALS_HAD, {"resident_id": resident_id, "today": rules.local_day(occurred)}
        ).all()
    )
    return any(
        had.get(slot, 0) + count > limit
        for slot, (count, limit) in store.meal_counts(meals).items()
    )


def _reissued_before(village_id, household_id, version, occurred) -> bool:
    """Whether the card after `version` was issued before the sale (the audit log records
    every reissue with its time)."""
    if version is None or version > 10_000_000:
        return True
    at = db.session.scalar(
        select(AuditLog.created_at).where(
            AuditLog.village_id == village_id,
            AuditLog.action == "card.reissue",
            AuditLog.target == f"household:{household_id}",
            AuditLog.detail == f"version {version + 1}",
        )
    )
    return at is None or at <= occurred


_item = Item.__table__


def _honour(
    village_id,
    venue,
    household,
    resident,
    clerk_id,
    request_id,
    fingerprint,
    receipt_no,
    lines,
    total,
    occurred,
    now,
    allowance,
    redemption_id,
    *,
    actor_id=None,
) -> Synced:
    """Post an offline redemption: points (below zero by at most `allowance`), stock (the goods
    are gone: it goes down to zero at the least), the redemption and its lines."""
    household_id = household.id
    if redemption_id is None:
        redemption_id = db.session.scalar(store._MAX_ID_PLUS_ONE)
    when = (occurred + rules.LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    entry_id, balance_after, overdraft = None, None, 0
    if total:
        what = "、".join(f"{line.name}×{line.qty}" for line in lines)
        before = db.session.scalar(select(Household.balance).where(Household.id == household_id))
        overdraft = max(0, total - max(before, 0))
        # The entry says so, in the text its hash covers: first, so a long list of items
        # cut at 300 characters never cuts it.
        note = f"离线兑换于 {when}，票号 {receipt_no}" + (
            f"，透支 {overdraft}" if overdraft else ""
        )
        posted = ledger.post_locked(
            village_id,
            household_id,
            "redeem",
            -total,
            reason=f"{venue.name}（{note}）: {what}",
            actor_id=actor_id or clerk_id,
            key=f"redemption:{request_id}",
            ref=f"redemption:{redemption_id}",
            floor_at_zero=allowance is not None,
            overdraft=allowance or 0,
            only_active=True,
            at=now,
        )
        entry_id, balance_after = posted.id, posted.balance_after
    else:
        balance_after = db.session.scalar(
            select(Household.balance).where(Household.id == household_id)
        )
    for line in lines:
        if line.goods:
            db.session.execute(
                update(_item)
                .where(_item.c.id == line.item_id, _item.c.stock.is_not(None))
                .values(
                    stock=case(
                        (_item.c.stock >= line.qty, _item.c.stock - line.qty),
                        else_=0,
                    )
                )
            )
            ledger.expire_columns(Item, line.item_id, "stock")
    store.insert_redemption(
        Pipe(),
        lines,
        id=redemption_id,
        village_id=village_id,
        venue_id=venue.id,
        household_id=household_id,
        resident_id=resident.id,
        clerk_id=clerk_id,
        request_id=request_id,
        request_hash=fingerprint,
        source="card",
        total=total,
        balance_after=balance_after,
        entry_id=entry_id,
        day=rules.local_day(occurred),
        created_at=now,
        occurred_at=occurred,
        receipt_no=receipt_no,
        overdraft=overdraft,
    )
    receipt = store.Receipt(
        id=redemption_id,
        village_id=village_id,
        venue_id=venue.id,
        venue=venue.name,
        household_id=household_id,
        household_public_id=household.public_id,
        household_number=household.number,
        household_head=household.head_name,
        resident_id=resident.id,
        resident_name=resident.name,
        clerk_id=clerk_id,
        source="card",
        request_id=request_id,
        total=total,
        balance_after=balance_after,
        entry_id=entry_id,
        lines=tuple(lines),
        created_at=now,
    )
    return Synced("recorded", receipt, overdraft, None, occurred, now, receipt_no)


# ---------------------------------------------------------------- the admin's lists


def conflict_reasons() -> dict:
    return {
        "allowance": _l("beyond the household's offline allowance"),
        "card_replaced": _l("the card was reissued before the sale"),
        "archived": _l("the household is archived"),
        "no_list": _l("no valid offline list on the counter"),
        "meal_limit": _l("beyond the resident's meals of that slot that day"),
        "card_cap": _l("beyond what the card may spend that day"),
        "other": _l("other"),
    }


def overdrafts(village_id: int, limit: int = 200) -> list[Redemption]:
    """Offline redemptions that took a balance below zero, newest first."""
    return list(
        db.session.scalars(
            select(Redemption)
            .where(Redemption.village_id == village_id, Redemption.overdraft > 0)
            .order_by(Redemption.id.desc())
            .limit(limit)
        )
    )


def conflicts(village_id: int, limit: int = 200) -> list[OfflineConflict]:
    """Offline redemptions the sync did not honour: open ones first, then newest first."""
    return list(
        db.session.scalars(
            select(OfflineConflict)
            .where(OfflineConflict.village_id == village_id)
            .order_by((OfflineConflict.status != "open"), OfflineConflict.id.desc())
            .limit(limit)
        )
    )


def resolve_conflict(
    village_id: int, conflict_id: int, accept: bool, note: str, actor_id: int
) -> OfflineConflict:
    """The admin's decision on a conflict: accept posts it as an offline redemption (the balance
    may go below zero: the admin decided so; audited), dismiss writes it off with a reason."""
    note = (note or "").strip()[:200]
    if not accept and not note:
        raise InvalidInput(_l("A reason is required."))
    with transaction():
        ledger.lock_head(village_id)
        conflict = db.session.execute(
            select(OfflineConflict)
            .where(OfflineConflict.id == conflict_id, OfflineConflict.village_id == village_id)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if conflict is None:
            raise NotFound()
        if conflict.status != "open":
            raise InvalidInput(_l("This conflict has already been decided."))
        now = utcnow()
        if accept:
            items = {
                i.id: i
                for i in db.session.scalars(
                    select(Item).where(Item.id.in_([item_id for item_id, _q in conflict.lines]))
                )
            }
            resident = db.session.get(Resident, conflict.resident_id)
            village = db.session.get(Village, village_id)
            year = rules.local_day(conflict.occurred_at).year
            lines = [
                store.Line(
                    item_id=i.id,
                    name=i.name,
                    qty=qty,
                    points=rules.meal_price(
                        i.points, resident.birth_year, village.meal_age_tiers, year
                    )
                    if i.is_meal
                    else i.points,
                    slot=i.slot,
                    goods=i.stock is not None,
                    daily_limit=i.daily_limit,
                )
                for i, qty in ((items[item_id], qty) for item_id, qty in conflict.lines)
            ]
            synced = _honour(
                village_id,
                db.session.get(Venue, conflict.venue_id),
                conflict.household,
                resident,
                conflict.clerk_id,
                conflict.request_id,
                conflict.request_hash,
                conflict.receipt_no,
                lines,
                sum(line.points * line.qty for line in lines),
                conflict.occurred_at,
                now,
                None,
                store.next_redemption_id(),
                actor_id=actor_id,
            )
            conflict.redemption_id = synced.receipt.id
        conflict.status = "accepted" if accept else "dismissed"
        conflict.resolved_at, conflict.resolved_by_id, conflict.note = now, actor_id, note
        record(
            village_id,
            actor_id,
            "offline.accept" if accept else "offline.dismiss",
            f"offline_conflict:{conflict.id}",
            note,
        )
        db.session.flush()
        return conflict
