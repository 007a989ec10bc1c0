"""/county: every village side by side, issued − redeemed = outstanding, the ledger's state at its
published head; an export with the same figures; for the county admin only."""

import csv
import io

import pytest
from sqlalchemy import func, select

from app.database import utcnow
from app.demo import load_demo
from app.extensions import db
from app.households.models import Household
from app.ledger import services as ledger
from app.ledger.chain import verify
from app.scoring.services import record_head
from app.villages.county import overview
from app.villages.models import Village

from .. import factories
from .helpers import HAN, text_of


@pytest.fixture
def two_villages(app):
    load_demo()
    other = factories.village("xiwan", "西湾村")
    h = factories.household(other, number="X1", head="西湾一户", opening=40)
    ledger.adjust(other.id, h.id, 15, "修路", None)
    return db.session.scalar(select(Village).where(Village.code == "shuangtang")), other


def test_each_village_issued_less_redeemed_is_its_outstanding(two_villages):
    rows = {r.village.code: r for r in overview(utcnow())}
    assert set(rows) == {"shuangtang", "xiwan"}
    for code, r in rows.items():
        balances = db.session.scalar(
            select(func.sum(Household.balance)).join(Village).where(Village.code == code)
        )
        assert r.outstanding == balances
        assert r.issued - r.redeemed == r.outstanding
    assert rows["xiwan"].issued == 55 and rows["xiwan"].redeemed == 0
    assert rows["xiwan"].earned_households == 1 and rows["xiwan"].households == 1
    assert rows["shuangtang"].redeemed > 0 and rows["shuangtang"].last_meeting is not None


def test_the_ledger_state_follows_the_published_head_and_verify(two_villages):
    _st, other = two_villages
    assert {r.village.code: r.ledger_state for r in overview(utcnow())}["xiwan"] == "none"
    record_head(other.id)
    assert {r.village.code: r.ledger_state for r in overview(utcnow())}["xiwan"] == "unverified"
    assert verify() == []
    assert {r.village.code: r.ledger_state for r in overview(utcnow())}["xiwan"] == "verified"


def test_county_page_and_export(client, login_as, two_villages):
    login_as("county_admin")
    html = text_of(client.get("/county"))
    assert "双塘村" in html and "西湾村" in html
    rows = list(csv.reader(io.StringIO(client.get("/county.csv").data.decode("utf-8-sig"))))
    assert all(HAN.search(h) for h in rows[0])
    by_code = {r[1]: r for r in rows[1:]}
    assert by_code["xiwan"][2:6] == ["1", "55", "0", "55"]
    assert client.get("/county.xlsx").status_code == 200
    assert client.get("/county.pdf").status_code == 404


@pytest.mark.parametrize("role", ["village_admin", "scorer", "villager"])
def test_county_view_is_for_the_county_admin(client, login_as, role):
    login_as(role)
    assert client.get("/county").status_code == 403
    assert client.get("/county.csv").status_code == 403
