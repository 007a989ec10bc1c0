"""Household import from .csv or .xlsx: every row is checked first, then all or nothing is written.

Header names may be Chinese or English (see COLUMNS). A row that is wrong is reported with its row
number (as a spreadsheet shows it) and why.
"""

import csv
import io
import zipfile
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..database import transaction
from ..errors import DomainError, InvalidInput
from ..extensions import db
from .models import Household, Resident
from .services import HouseholdData, create_household

COLUMNS = {
    "number": ("户号", "number", "household_number"),
    "head_name": ("户主", "户主姓名", "head", "head_name"),
    "group_name": ("村民小组", "小组", "group", "group_name"),
    "address": ("地址", "住址", "address"),
    "head_phone": ("电话", "手机", "手机号", "phone"),
    "head_birth_year": ("出生年份", "birth_year"),
    "opening_balance": ("期初积分", "opening_balance", "opening"),
}
MAX_ROWS = 20_000


@dataclass
class ImportResult:
    rows: list[HouseholdData] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row number, message)


def _read_rows(filename: str, content: bytes) -> list[list]:
    name = (filename or "").lower()
    if name.endswith(".xlsx"):
        if not zipfile.is_zipfile(io.BytesIO(content)):
            raise InvalidInput(_l("This file is not a real .xlsx workbook."))
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception:  # openpyxl raises many kinds for a broken workbook
            raise InvalidInput(_l("This file is not a real .xlsx workbook.")) from None
        sheet = wb.worksheets[0]
        rows = [list(r) for r in sheet.iter_rows(values_only=True, max_row=MAX_ROWS + 2)]
        wb.close()
        return rows
    if name.endswith(".csv"):
        if b"\x00" in content[:4096]:
            raise InvalidInput(_l("This file is not a text .csv file."))
        for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise InvalidInput(_l("This file is not a text .csv file."))
        return list(csv.reader(io.StringIO(text)))
    raise InvalidInput(_l("Upload a .csv or .xlsx file."))


def _header_map(header: list) -> dict[str, int]:
    names = [str(h or "").strip().lower() for h in header]
    found = {}
    for key, aliases in COLUMNS.items():
        for alias in aliases:
            if alias.lower() in names:
                found[key] = names.index(alias.lower())
                break
    missing = [COLUMNS[k][0] for k in ("number", "head_name") if k not in found]
    if missing:
        raise InvalidInput(
            _l("The first row must name the columns; missing: %(cols)s."), cols=", ".join(missing)
        )
    return found


def parse(village_id: int, filename: str, content: bytes) -> ImportResult:
    """Check every row against the shape rules and the village's existing data."""
    rows = _read_rows(filename, content)
    if not rows:
        raise InvalidInput(_l("The file is empty."))
    cols = _header_map(rows[0])
    body = [(i, r) for i, r in enumerate(rows[1:], start=2) if any(str(c or "").strip() for c in r)]
    if not body:
        raise InvalidInput(_l("The file has no households below the header."))
    if len(body) > MAX_ROWS:
        raise InvalidInput(_l("At most %(n)s rows at a time."), n=MAX_ROWS)
    result = ImportResult()
    numbers, phones = {}, {}
    for rownum, row in body:
        raw = {k: (row[i] if i < len(row) else None) for k, i in cols.items()}
        try:
            data = HouseholdData.clean(**raw)
        except DomainError as e:
            result.errors.append((rownum, str(e)))
            continue
        if data.number in numbers:
            result.errors.append(
                (
                    rownum,
                    str(
                        _l(
                            "Household number %(number)s is also in row %(row)s.",
                            number=data.number,
                            row=numbers[data.number],
                        )
                    ),
                )
            )
            continue
        if data.head_phone and data.head_phone in phones:
            result.errors.append(
                (
                    rownum,
                    str(
                        _l(
                            "The phone %(phone)s is also in row %(row)s.",
                            phone=data.head_phone,
                            row=phones[data.head_phone],
                        )
                    ),
                )
            )
            continue
        numbers[data.number] = rownum
        if data.head_phone:
            phones[data.head_phone] = rownum
        result.rows.append(data)
    _check_existing(village_id, result, numbers, phones)
    return result


def _check_existing(village_id: int, result: ImportResult, numbers: dict, phones: dict) -> None:
    # In chunks, so a 20,000-row file is a few queries, not one per row.
    keys = list(numbers)
    for i in range(0, len(keys), 500):
        for number in db.session.scalars(
            select(Household.number).where(
                Household.village_id == village_id, Household.number.in_(keys[i : i + 500])
            )
        ):
            result.errors.append(
                (
                    numbers[number],
                    str(_l("Household number %(number)s already exists.", number=number)),
                )
            )
    keys = list(phones)
    for i in range(0, len(keys), 500):
        for phone in db.session.scalars(
            select(Resident.phone).where(
                Resident.village_id == village_id, Resident.phone.in_(keys[i : i + 500])
            )
        ):
            result.errors.append(
                (
                    phones[phone],
                    str(_l("The phone %(phone)s belongs to another resident.", phone=phone)),
                )
            )
    result.errors.sort()


def import_households(
    village_id: int, filename: str, content: bytes, actor_id: int | None
) -> ImportResult:
    """Parse, and when no row is wrong write every household in one transaction."""
    result = parse(village_id, filename, content)
    if result.errors:
        return result
    with transaction():
        for data in result.rows:
            create_household(village_id, data, actor_id)
    return result
