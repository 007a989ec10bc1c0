"""`flask households import FILE --village CODE`: all rows or none, bad rows named on stderr."""

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.households.models import Household
from app.ledger.chain import verify

from .. import factories
from ..services.test_import import ROWS, ZH_HEADER, csv_bytes, xlsx_bytes
from ..web.helpers import HAN, snapshot


def import_file(runner, path, *extra):
    return runner.invoke(args=["households", "import", str(path), *extra])


def household_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(Household.id)))


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_import_command_imports_every_row_and_posts_opening_balances(
    runner, village, tmp_path, suffix
):
    path = tmp_path / f"户籍{suffix}"
    rows = [ZH_HEADER, *ROWS]
    path.write_bytes(csv_bytes(rows) if suffix == ".csv" else xlsx_bytes(rows))
    result = import_file(runner, path, "--village", "shuangtang")
    assert result.exit_code == 0, result.output
    assert "Imported 3 households into shuangtang." in result.output
    assert household_count() == 3
    assert db.session.scalar(select(func.sum(Household.balance))) == 155
    assert verify() == []


def test_import_command_with_bad_rows_imports_nothing_and_names_each_row(runner, village, tmp_path):
    factories.household(village, number="0003")
    path = tmp_path / "户籍.csv"
    path.write_bytes(
        csv_bytes(
            [
                ZH_HEADER,
                ROWS[0],
                ["0002", "李秀英", "", "", "1380000", "", ""],  # row 3: bad phone
                ROWS[2],  # row 4: 0003 already exists
                ["0005", "赵", "", "", "", "", "很多"],  # row 5: points not a number
            ]
        )
    )
    before = snapshot()
    result = import_file(runner, path, "--village", "shuangtang")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("row ")]
    assert [line.split(",")[0] for line in lines] == ["row 3", "row 4", "row 5"]
    assert all(HAN.search(line.split(":", 1)[1]) for line in lines), lines
    assert "1380000" in lines[0] and "0003" in lines[1]
    assert "Nothing imported: 3 rows are wrong." in result.stderr
    assert snapshot() == before


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("户籍.xlsx", b"\xe6\x88\xb7\xe5\x8f\xb7,\xe6\x88\xb7\xe4\xb8\xbb\n0001,x\n"),
        ("户籍.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
        ("户籍.txt", b"number,head_name\n1,x\n"),
        ("户籍.csv", b""),
    ],
    ids=["text-as-xlsx", "binary-as-csv", "txt", "empty"],
)
def test_import_command_refuses_a_file_that_is_not_a_list(runner, village, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    before = snapshot()
    result = import_file(runner, path, "--village", "shuangtang")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert HAN.search(result.stderr), result.stderr
    assert snapshot() == before


def test_import_command_needs_the_village_when_there_are_several(runner, village, tmp_path):
    factories.village("xiwan", "西湾村")
    path = tmp_path / "户籍.csv"
    path.write_bytes(csv_bytes([ZH_HEADER, *ROWS]))
    result = import_file(runner, path)
    assert result.exit_code == 2
    assert "--village" in result.stderr
    assert import_file(runner, path, "--village", "nowhere").exit_code == 2
    assert household_count() == 0
    result = import_file(runner, path, "--village", "xiwan")
    assert result.exit_code == 0, result.output
    assert household_count() == 3


def test_import_command_refuses_a_missing_file(runner, village, tmp_path):
    result = import_file(runner, tmp_path / "nothing.csv", "--village", "shuangtang")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_import_command_needs_no_village_code_when_there_is_one_village(runner, village, tmp_path):
    path = tmp_path / "households.csv"
    path.write_bytes(csv_bytes([["number", "head_name"], ["0001", "王建国"]]))
    result = import_file(runner, path)
    assert result.exit_code == 0, result.output
    assert "Imported 1 households into shuangtang." in result.output
    assert household_count() == 1
