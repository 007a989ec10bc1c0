"""Files that would cost the server are refused on the import page with a 422 in Chinese, and
nothing is written (issue 7's leftovers in the importer)."""

import pytest

from ..services.test_import_registers import _xlsx_with_sheet
from .helpers import assert_chinese_error, snapshot
from .test_households import upload


@pytest.fixture
def admin(login_as):
    return login_as("village_admin")


def _doctype(xml: bytes) -> bytes:
    return b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + xml


def _inflated(xml: bytes) -> bytes:
    return xml.replace(b"<sheetData>", b"<sheetData>" + b" " * (70 * 1024 * 1024), 1)


@pytest.mark.parametrize(
    ("filename", "make"),
    [
        ("a.csv", lambda: ("户号,户主\n1," + "长" * (130 * 1024) + "\n").encode()),
        ("a.xlsx", lambda: _xlsx_with_sheet(_doctype)),
        ("a.xlsx", lambda: _xlsx_with_sheet(_inflated)),
    ],
    ids=["csv-field-over-128kb", "xlsx-doctype", "xlsx-inflates-to-70mb"],
)
def test_costly_files_get_a_clear_422(client, admin, filename, make):
    before = snapshot()
    assert_chinese_error(upload(client, filename, make()), 422)
    assert snapshot() == before
