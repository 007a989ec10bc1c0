"""Household import from .csv and .xlsx: every row checked first, then all rows or none."""

import csv
import io
import re

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from app.errors import InvalidInput
from app.extensions import db
from app.households.importer import import_households, parse
from app.households.models import Household, Resident
from app.ledger.chain import verify
from app.ledger.models import LedgerEntry

from .. import factories
from ..web.helpers import HAN, snapshot

ZH_HEADER = ["户号", "户主", "村民小组", "地址", "电话", "出生年份", "期初积分"]
EN_HEADER = ["number", "head_name", "group", "address", "phone", "birth_year", "opening_balance"]
ROWS = [
    ["0001", "王建国", "一组", "双塘村一组1号", "13800001001", "1956", "120"],
    ["0002", "李秀英", "一组", "", "", "", ""],
    ["0003", "张德明", "二组", "双塘村二组8号", "13800001003", "1948", "35"],
]


def csv_bytes(rows, encoding="utf-8-sig") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def households(village) -> dict[str, Household]:
    db.session.rollback()
    rows = db.session.scalars(select(Household).where(Household.village_id == village.id))
    return {h.number: h for h in rows}


def assert_imported_the_three(village):
    found = households(village)
    assert sorted(found) == ["0001", "0002", "0003"]
    assert {n: h.balance for n, h in found.items()} == {"0001": 120, "0002": 0, "0003": 35}
    assert (found["0001"].head_name, found["0001"].group_name) == ("王建国", "一组")
    head = found["0003"].residents[0]
    assert (head.name, head.phone, head.birth_year) == ("张德明", "13800001003", 1948)
    openings = db.session.execute(
        select(LedgerEntry.household_id, LedgerEntry.kind, LedgerEntry.points).order_by(
            LedgerEntry.id
        )
    ).all()
    assert openings == [
        (found["0001"].id, "opening", 120),
        (found["0003"].id, "opening", 35),
    ]
    assert verify() == []


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("户籍.csv", csv_bytes([ZH_HEADER, *ROWS], "utf-8-sig")),
        ("户籍.csv", csv_bytes([ZH_HEADER, *ROWS], "gbk")),
        ("households.csv", csv_bytes([EN_HEADER, *ROWS], "utf-8")),
        ("户籍.xlsx", xlsx_bytes([ZH_HEADER, *ROWS])),
        ("households.XLSX", xlsx_bytes([EN_HEADER, *ROWS])),
    ],
    ids=["csv-utf8-bom", "csv-gbk", "csv-english", "xlsx-chinese", "xlsx-english"],
)
def test_import_reads_csv_and_xlsx_with_chinese_or_english_headers(village, filename, content):
    result = import_households(village.id, filename, content, None)
    assert result.errors == []
    assert len(result.rows) == 3
    assert_imported_the_three(village)


def test_xlsx_numbers_typed_as_numbers_are_read_as_excel_shows_them(village):
    content = xlsx_bytes(
        [
            ["户号", "户主", "电话", "出生年份", "期初积分"],
            [12, "周大山", 13800001012, 1960, 40],
            [13.0, "吴小梅", 13800001013.0, 1975.0, 0],
        ]
    )
    result = import_households(village.id, "户籍.xlsx", content, None)
    assert result.errors == []
    found = households(village)
    assert sorted(found) == ["12", "13"]
    assert found["12"].balance == 40
    assert found["13"].residents[0].phone == "13800001013"
    assert found["13"].residents[0].birth_year == 1975


def test_columns_may_come_in_any_order_and_blank_lines_are_skipped(village):
    content = csv_bytes(
        [["期初积分", "户主", "户号"], ["7", "郑一", "A-1"], [], ["", "", ""], ["", "郑二", "A-2"]]
    )
    result = import_households(village.id, "x.csv", content, None)
    assert result.errors == []
    assert {n: h.balance for n, h in households(village).items()} == {"A-1": 7, "A-2": 0}


# --- all or nothing -----------------------------------------------------------------------


@pytest.fixture
def existing_0009(village):
    return factories.household(village, number="0009", head="老住户")


BAD_ROWS = [
    ("bad-phone", ["0004", "陈", "", "", "1380000", "", ""], r"1380000"),
    ("phone-of-row-2", ["0004", "陈", "", "", "13800001001", "", ""], r"2"),
    ("number-of-row-2", ["0001", "陈", "", "", "", "", ""], r"0001.*2|2.*0001"),
    ("number-exists", ["0009", "陈", "", "", "", "", ""], r"0009"),
    ("points-not-a-number", ["0004", "陈", "", "", "", "", "十分"], r"十分"),
    ("points-fraction", ["0004", "陈", "", "", "", "", "1.5"], r"1\.5"),
    ("no-head", ["0004", "", "", "", "", "", ""], r""),
    ("year-in-future", ["0004", "陈", "", "", "", "2999", ""], r"2999"),
    ("number-with-slash", ["00/4", "陈", "", "", "", "", ""], r""),
]


@pytest.mark.parametrize(
    ("bad", "pattern"), [b[1:] for b in BAD_ROWS], ids=[b[0] for b in BAD_ROWS]
)
def test_one_bad_row_imports_nothing_and_names_its_row(village, existing_0009, bad, pattern):
    content = csv_bytes([ZH_HEADER, ROWS[0], ROWS[1], bad, ROWS[2]])
    before = snapshot()
    result = import_households(village.id, "户籍.csv", content, None)
    assert [row for row, _col, _msg in result.errors] == [4]
    message = result.errors[0][2]
    assert HAN.search(message), message
    assert re.search(pattern, message), message
    assert snapshot() == before


def test_every_bad_row_is_reported_with_its_row_number(village, existing_0009):
    content = xlsx_bytes(
        [
            ZH_HEADER,
            ROWS[0],
            ["0009", "重号", "", "", "", "", ""],  # row 3: already exists
            ["0010", "坏电话", "", "", "12345678901", "", ""],  # row 4
            ROWS[1],
            ["0001", "又一个", "", "", "", "", ""],  # row 6: same number as row 2
            ["0011", "乱分", "", "", "", "", "abc"],  # row 7
        ]
    )
    before = snapshot()
    result = import_households(village.id, "户籍.xlsx", content, None)
    assert [row for row, _col, _msg in result.errors] == [3, 4, 6, 7]
    assert snapshot() == before


def test_parse_checks_without_writing(village):
    before = snapshot()
    result = parse(village.id, "户籍.csv", csv_bytes([ZH_HEADER, *ROWS]))
    assert [r.number for r in result.rows] == ["0001", "0002", "0003"]
    assert result.errors == []
    assert snapshot() == before


# --- files that are not what they claim ---------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"

BAD_FILES = [
    ("text-renamed-xlsx", "户籍.xlsx", csv_bytes([ZH_HEADER, *ROWS])),
    ("zip-not-a-workbook", "户籍.xlsx", None),  # filled in below: a zip with no workbook in it
    ("binary-renamed-csv", "户籍.csv", PNG),
    ("xlsx-renamed-csv", "户籍.csv", xlsx_bytes([ZH_HEADER, *ROWS])),
    ("txt", "户籍.txt", csv_bytes([ZH_HEADER, *ROWS])),
    ("no-extension", "户籍", csv_bytes([ZH_HEADER, *ROWS])),
    ("empty-csv", "户籍.csv", b""),
    ("empty-xlsx", "户籍.xlsx", b""),
    ("header-only", "户籍.csv", csv_bytes([ZH_HEADER])),
    ("no-number-column", "户籍.csv", csv_bytes([["户主", "电话"], ["王", "13800001001"]])),
    ("no-header", "户籍.csv", csv_bytes(ROWS)),
    ("empty-sheet", "户籍.xlsx", xlsx_bytes([])),
    ("not-text", "户籍.csv", bytes(range(128, 256)) * 4),
]


def _zip_without_workbook() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "不是工作簿")
    return out.getvalue()


@pytest.mark.parametrize(
    ("filename", "content"),
    [(f, c if c is not None else _zip_without_workbook()) for _id, f, c in BAD_FILES],
    ids=[b[0] for b in BAD_FILES],
)
def test_file_that_is_not_a_household_list_gets_a_clear_message(village, filename, content):
    before = snapshot()
    with pytest.raises(InvalidInput) as e:
        import_households(village.id, filename, content, None)
    assert HAN.search(str(e.value)), str(e.value)
    assert snapshot() == before


def test_missing_columns_are_named(village):
    with pytest.raises(InvalidInput) as e:
        parse(village.id, "x.csv", csv_bytes([["村民小组", "电话"], ["一组", ""]]))
    assert "户号" in str(e.value) and "户主" in str(e.value)


def test_import_into_one_village_does_not_see_another_villages_numbers(village, existing_0009):
    other = factories.village("xiwan", "西湾村")
    result = import_households(
        other.id, "x.csv", csv_bytes([["户号", "户主"], ["0009", "西湾的户"]]), None
    )
    assert result.errors == []
    db.session.rollback()
    assert (
        db.session.scalar(
            select(Resident.village_id).join(Household).where(Household.head_name == "西湾的户")
        )
        == other.id
    )
    assert households(village)["0009"].head_name == "老住户"
