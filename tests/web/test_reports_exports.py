"""/admin/exports/<what>.xlsx|.csv: the same numbers the pages show, formulas never run, only the
admin's own village, streamed."""

import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from app.demo import load_demo
from app.extensions import db
from app.households.models import Household
from app.ledger.models import LedgerEntry
from app.villages.models import Village

from .. import factories
from ..conftest import csrf_token
from .helpers import HAN, text_of

WHATS = ["households", "ledger", "redemptions", "stock", "decisions"]


@pytest.fixture
def demo_admin(app, client):
    load_demo()
    resp = client.post(
        "/login",
        data={"username": "admin", "password": "demo1234", "csrf_token": csrf_token(client)},
    )
    assert resp.status_code == 302
    return db.session.scalar(select(Village).where(Village.code == "shuangtang"))


def read_csv(resp) -> list[list[str]]:
    assert resp.status_code == 200, text_of(resp)[:300]
    assert resp.data.startswith("\ufeff".encode())  # Excel reads UTF-8 Chinese only with a BOM
    return list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))


def read_xlsx(resp):
    assert resp.status_code == 200, text_of(resp)[:300]
    return load_workbook(io.BytesIO(resp.data)).active


@pytest.mark.parametrize("what", WHATS)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_every_export_opens_with_a_chinese_header(client, demo_admin, what, fmt):
    resp = client.get(f"/admin/exports/{what}.{fmt}")
    assert "attachment" in resp.headers["Content-Disposition"]
    header = read_csv(resp)[0] if fmt == "csv" else [c.value for c in read_xlsx(resp)[1]]
    assert all(HAN.search(h) for h in header), header


def test_households_export_has_the_balances_the_pages_show(client, demo_admin):
    rows = read_csv(client.get("/admin/exports/households.csv"))
    db.session.rollback()
    stored = dict(
        db.session.execute(
            select(Household.number, Household.balance).where(Household.village_id == demo_admin.id)
        ).all()
    )
    assert {r[0]: int(r[6]) for r in rows[1:]} == stored
    sheet = read_xlsx(client.get("/admin/exports/households.xlsx"))
    assert {r[0]: r[6] for r in sheet.iter_rows(min_row=2, values_only=True)} == stored


def test_ledger_export_has_seq_and_hash_and_keeps_to_the_period(client, demo_admin):
    rows = read_csv(client.get("/admin/exports/ledger.csv"))
    db.session.rollback()
    entries = db.session.execute(
        select(LedgerEntry.seq, LedgerEntry.hash).where(LedgerEntry.village_id == demo_admin.id)
    ).all()
    assert [(int(r[0]), r[-1]) for r in rows[1:]] == sorted(entries)
    none = read_csv(client.get("/admin/exports/ledger.csv?from=2001-01-01&to=2001-01-31"))
    assert len(none) == 1


def test_a_cell_that_looks_like_a_formula_is_written_as_text(client, demo_admin):
    evil = '=HYPERLINK("http://x","点我")'
    factories.household(demo_admin, number="9999", head=evil)
    rows = read_csv(client.get("/admin/exports/households.csv"))
    assert ["9999", "'" + evil] == rows[-1][:2]
    sheet = read_xlsx(client.get("/admin/exports/households.xlsx"))
    cell = [r for r in sheet.iter_rows(min_row=2) if r[0].value == "9999"][0][1]
    assert cell.data_type == "s" and cell.value == evil and cell.quotePrefix


def test_exports_show_only_the_admins_own_village(client, demo_admin):
    other = factories.village("xiwan", "西湾村")
    factories.household(other, number="X-1", head="西湾的户", opening=5)
    for what in WHATS:
        assert "西湾的户" not in read_csv(client.get(f"/admin/exports/{what}.csv")).__repr__()


def test_a_bad_period_or_name_is_refused_in_chinese(client, demo_admin):
    resp = client.get("/admin/exports/ledger.csv?from=2026-13-01")
    assert resp.status_code == 422 and HAN.search(text_of(resp))
    resp = client.get("/admin/exports/ledger.csv?from=2026-02-01&to=2026-01-01")
    assert resp.status_code == 422
    assert client.get("/admin/exports/passwords.csv").status_code == 404
    assert client.get("/admin/exports/ledger.pdf").status_code == 404


@pytest.mark.parametrize("role", ["scorer", "clerk", "villager"])
def test_exports_are_for_the_village_admin(client, login_as, role):
    login_as(role)
    assert client.get("/admin/exports/households.csv").status_code == 403


def test_exports_need_a_login(client, village):
    assert client.get("/admin/exports/households.xlsx").status_code == 302
