"""A register as villages keep it imports in one go; hostile files are refused before parsing.

The register below is the one the issue tried: a merged title row, header variants, 户号 stored as
numbers, full-width digits, double spaces, phones with dashes and a landline, a 身份证号 column, an
empty row and a 合计 row."""

import io
import re
import zipfile

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from app.errors import InvalidInput
from app.extensions import db
from app.households.importer import confirm, import_households, parse, preview, template_xlsx
from app.households.models import Household, Resident
from app.ledger.chain import verify
from app.ledger.models import LedgerEntry

from .. import factories
from ..web.helpers import HAN, snapshot
from .test_import import csv_bytes, xlsx_bytes


def register_xlsx() -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["双塘村2026年农户花名册"])
    ws.merge_cells("A1:G1")
    ws.append(["户号", "户主姓名 ", "村民小组", "联系电话", "家庭住址", "身份证号", "备注"])
    ws.append([41, "周  大山", "一组", 13971230049, "双塘村一组  41号", "42112319480315001X", ""])
    ws.append([42, "吴小梅", "二组", "139-7123-0050", "双塘村二组", "", "低保户"])
    ws.append(["０４３", "郑 一", "二组", "0710-3456789", "", "421123195806070012", ""])
    ws.append([None, None, None, None, None, None, None])
    ws.append(["044", "钱二", "三组", "１３９７１２３００５１", "", "", ""])
    ws.append(["合计", "4户", None, None, None, None, None])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.fixture
def village_with_001_to_003(village):
    for n in ("001", "002", "003"):
        factories.household(village, number=n, head=f"老户{n}")
    return village


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_register_as_villages_keep_it_previews_every_column_and_row(village_with_001_to_003):
    v = village_with_001_to_003
    before = snapshot()
    result = preview(v.id, "双塘村花名册.xlsx", register_xlsx(), None)
    assert snapshot() == before  # a preview writes no household, resident or entry
    assert result.errors == []
    assert result.header_row == 2
    assert [d.number for d in result.rows] == ["041", "042", "043", "044"]
    assert result.row_numbers == [3, 4, 5, 7]
    by = {d.number: d for d in result.rows}
    assert by["041"].head_name == "周 大山" and by["041"].address == "双塘村一组 41号"
    assert by["041"].head_phone == "13971230049" and by["041"].head_birth_year == 1948
    assert by["042"].head_phone == "13971230050"
    assert (by["043"].head_phone, by["043"].contact_phone) == (None, "0710-3456789")
    assert by["043"].head_birth_year == 1958
    assert by["044"].head_phone == "13971230051"
    uses = dict(result.columns)
    assert uses["备注"] is None  # listed as ignored
    assert all(uses[h] for h in ("户号", "户主姓名", "村民小组", "联系电话", "家庭住址"))
    assert "不保存" in uses["身份证号"]
    assert [row for row, _why in result.skipped] == [6, 8]
    notes = " ".join(n for _r, _c, n in result.notes)
    assert "41 按本村户号位数写为 041" in notes and "0710-3456789" in notes
    assert "1948" in notes


def test_confirm_writes_exactly_the_preview_once(village_with_001_to_003):
    v = village_with_001_to_003
    content = register_xlsx()  # once: a workbook saved again has a new timestamp inside
    result = preview(v.id, "花名册.xlsx", content, None)
    assert confirm(v.id, result.batch_id, result.sha256, None) == 4
    assert count(Household) == 7
    h = db.session.scalar(select(Household).where(Household.number == "043"))
    assert h.contact_phone == "0710-3456789" and h.residents[0].phone is None
    # No ID card number anywhere: only the year survives.
    assert all("1948031" not in repr(r) for r in db.session.execute(select(Resident)).all())
    before = snapshot()
    with pytest.raises(InvalidInput) as e:
        confirm(v.id, result.batch_id, result.sha256, None)
    assert HAN.search(str(e.value))
    assert snapshot() == before
    again = preview(v.id, "花名册.xlsx", content, None)
    assert again.imported_at is not None and not again.ok
    # The register saved again (other bytes): every household is already there, none new.
    resaved = preview(v.id, "花名册.xlsx", register_xlsx(), None)
    assert resaved.rows == [] or resaved.imported_at is not None


def test_the_same_households_in_another_file_are_left_as_they_are(village):
    rows = [["户号", "户主", "期初积分"], ["0001", "王建国", "120"], ["0002", "李秀英", "5"]]
    import_households(village.id, "a.csv", csv_bytes(rows), None)
    result = import_households(village.id, "b.xlsx", xlsx_bytes([*rows, ["0003", "张", "7"]]), None)
    assert result.errors == [] and [d.number for d in result.rows] == ["0003"]
    assert [row for row, _why in result.skipped] == [2, 3]
    assert count(Household) == 3
    opening = db.session.execute(
        select(LedgerEntry.kind, func.count()).group_by(LedgerEntry.kind)
    ).all()
    assert opening == [("opening", 3)]
    assert verify() == []


def test_confirm_refuses_another_villages_batch(village):
    other = factories.village("xiwan", "西湾村")
    result = preview(other.id, "a.csv", csv_bytes([["户号", "户主"], ["1", "王"]]), None)
    with pytest.raises(Exception) as e:
        confirm(village.id, result.batch_id, result.sha256, None)
    assert getattr(e.value, "status", None) == 404
    assert count(Household) == 0


def test_confirm_writes_nothing_when_a_number_was_taken_since_the_preview(village):
    result = preview(
        village.id, "a.csv", csv_bytes([["户号", "户主"], ["1", "王"], ["2", "李"]]), None
    )
    factories.household(village, number="2", head="抢先")
    before = snapshot()
    with pytest.raises(InvalidInput):
        confirm(village.id, result.batch_id, result.sha256, None)
    assert snapshot() == before


def test_errors_name_row_and_column(village):
    content = csv_bytes(
        [["标题"], ["户号", "户主", "电话"], ["1", "", "123"], ["2", "王", "12345678901"]]
    )
    result = parse(village.id, "a.csv", content)
    assert [(r, c) for r, c, _m in result.errors] == [(3, "户主"), (3, "电话"), (4, "电话")]


def test_the_template_is_a_workbook_the_import_reads(village):
    from openpyxl import load_workbook

    content = template_xlsx()
    ws = load_workbook(io.BytesIO(content)).active
    header = [c.value for c in ws[1]]
    assert header[:2] == ["户号", "户主"]
    assert ws["A2"].number_format == "@"  # 041 stays 041
    with pytest.raises(InvalidInput):  # blank: no households below the header
        parse(village.id, "t.xlsx", content)


# --- files that would cost the server: refused before parsing, in the user's language -------


def _refused(village, filename, content):
    before = snapshot()
    with pytest.raises(InvalidInput) as e:
        import_households(village.id, filename, content, None)
    assert HAN.search(str(e.value)), str(e.value)
    assert snapshot() == before
    return str(e.value)


def test_a_csv_field_over_128_kb_is_refused(village):
    content = ("户号,户主\n1," + "长" * (130 * 1024) + "\n").encode()
    assert "128" in _refused(village, "a.csv", content)


def _xlsx_with_sheet(transform) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(xlsx_bytes([["户号", "户主"], ["1", "王"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = transform(data)
            z.writestr(item.filename, data)
    return out.getvalue()


def test_an_xlsx_with_a_doctype_is_refused(village):
    def add_doctype(xml: bytes) -> bytes:
        entities = b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        return b'<?xml version="1.0"?>' + entities + xml.replace(b"<v>", b"<v>&b;", 1)

    assert "XML" in _refused(village, "a.xlsx", _xlsx_with_sheet(add_doctype))


def test_an_xlsx_that_inflates_far_beyond_its_size_is_refused(village):
    # ~70 MB of spaces deflate to well under 1 MB: refused from the zip's directory alone.
    def pad(xml: bytes) -> bytes:
        return xml.replace(b"<sheetData>", b"<sheetData>" + b" " * (70 * 1024 * 1024), 1)

    content = _xlsx_with_sheet(pad)
    assert len(content) < 1024 * 1024
    assert re.search(r"\d+ MB", _refused(village, "a.xlsx", content))


def test_an_xlsx_with_a_high_ratio_is_refused_even_under_the_size_bound(village):
    def pad(xml: bytes) -> bytes:
        return xml.replace(b"<sheetData>", b"<sheetData>" + b" " * (8 * 1024 * 1024), 1)

    _refused(village, "a.xlsx", _xlsx_with_sheet(pad))


def test_a_landline_column_of_its_own_is_the_contact_number(village):
    content = csv_bytes(
        [["户号", "户主", "手机号", "座机"], ["1", "王", "13800001001", "0710 345 6789"]]
    )
    result = parse(village.id, "a.csv", content)
    assert result.errors == []
    d = result.rows[0]
    assert (d.head_phone, d.contact_phone) == ("13800001001", "0710 345 6789")
    bad = parse(village.id, "a.csv", csv_bytes([["户号", "户主", "座机"], ["1", "王", "12"]]))
    assert [(r, c) for r, c, _m in bad.errors] == [(2, "座机")]
