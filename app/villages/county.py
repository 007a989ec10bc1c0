"""The county's view: every village side by side, from stored rows and grouped queries."""

from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..households.models import Household
from ..ledger.chain import head_is_in_chain
from ..ledger.models import HouseholdYear, LedgerCheckpoint, LedgerEntry
from ..ledger.services import local_year
from ..scoring.models import ChainHead, Meeting
from .models import Village


@dataclass
class VillageRow:
    village: Village
    households: int
    issued: int  # every entry that is not a redemption (or its void): openings, awards, deductions
    redeemed: int  # redemptions less their voids
    outstanding: int  # the sum of the stored balances: the county's liability
    earned_households: int  # households that earned points this year
    last_meeting: date | None
    head: ChainHead | None  # the latest published chain head
    head_in_chain: bool | None
    verified_at: datetime | None  # when `flask ledger verify` last reached the published head

    @property
    def participation(self) -> float:
        return self.earned_households / self.households if self.households else 0.0

    @property
    def ledger_state(self) -> str:
        if self.head is None:
            return "none"
        if not self.head_in_chain:
            return "broken"
        return "verified" if self.verified_at else "unverified"


LEDGER_STATES = {
    "none": _l("no head published yet"),
    "broken": _l("the published head is not in the chain"),
    "verified": _l("verifies at its published head"),
    "unverified": _l("not verified since the head was published"),
}


def overview(now: datetime) -> list[VillageRow]:
    year = local_year(now)
    active = dict(
        db.session.execute(
            select(Household.village_id, func.count())
            .where(Household.status == "active")
            .group_by(Household.village_id)
        ).all()
    )
    outstanding = dict(
        db.session.execute(
            select(Household.village_id, func.sum(Household.balance)).group_by(Household.village_id)
        ).all()
    )
    original = aliased(LedgerEntry)
    is_redeem = func.coalesce(original.kind, LedgerEntry.kind) == "redeem"
    flows = {
        vid: (int(issued or 0), -int(redeemed or 0))
        for vid, issued, redeemed in db.session.execute(
            select(
                LedgerEntry.village_id,
                func.sum(case((is_redeem, 0), else_=LedgerEntry.points)),
                func.sum(case((is_redeem, LedgerEntry.points), else_=0)),
            )
            .outerjoin(original, original.id == LedgerEntry.reverses_id)
            .group_by(LedgerEntry.village_id)
        )
    }
    earned = dict(
        db.session.execute(
            select(HouseholdYear.village_id, func.count())
            .where(HouseholdYear.year == year, HouseholdYear.earned > 0)
            .group_by(HouseholdYear.village_id)
        ).all()
    )
    meetings = dict(
        db.session.execute(
            select(Meeting.village_id, func.max(Meeting.held_on)).group_by(Meeting.village_id)
        ).all()
    )
    latest = (
        select(ChainHead.village_id, func.max(ChainHead.day).label("day"))
        .group_by(ChainHead.village_id)
        .subquery()
    )
    heads = {
        h.village_id: h
        for h in db.session.scalars(
            select(ChainHead).join(
                latest,
                (latest.c.village_id == ChainHead.village_id) & (latest.c.day == ChainHead.day),
            )
        )
    }
    checkpoints = {c.village_id: c for c in db.session.scalars(select(LedgerCheckpoint))}
    rows = []
    for v in db.session.scalars(select(Village).order_by(Village.name)):
        head = heads.get(v.id)
        cp = checkpoints.get(v.id)
        in_chain = head_is_in_chain(v.id, head.seq, head.hash) if head else None
        verified = cp.verified_at if head and cp and cp.seq >= head.seq else None
        issued, redeemed = flows.get(v.id, (0, 0))
        rows.append(
            VillageRow(
                v,
                active.get(v.id, 0),
                issued,
                redeemed,
                int(outstanding.get(v.id) or 0),
                earned.get(v.id, 0),
                meetings.get(v.id),
                head,
                in_chain,
                verified,
            )
        )
    return rows
