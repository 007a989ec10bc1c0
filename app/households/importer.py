"""Household import from .csv or .xlsx, as villages keep their registers (花名册).

`parse` reads and checks every row and writes nothing; `preview` keeps what it found (the rows to
write) in an ImportBatch keyed by the file's SHA-256; `confirm` writes exactly those rows, all or
none, once per file. A register may have title rows above the header, header variants
(户主/户主姓名, 电话/联系电话, ...), full-width digits, stray spaces and dashes, 户号 stored as
numbers (41 for 041), landlines, blank and 合计 rows and a 身份证号 column: the preview says what
it did with each column and each row. An ID card number is never stored.
"""

import csv
import hashlib
import io
import re
import unicodedata
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..audit import record
from ..database import transaction, utcnow
from ..errors import DomainError, InvalidInput, NotFound
from ..extensions import db
from ..ledger import services as ledger
from . import rules
from .models import Household, ImportBatch, Resident
from .services import HouseholdData, create_household

# What each column is for, by the names registers give it (compared without spaces, NFKC, lower
# case). The first name is the one the template and the page show.
COLUMNS = {
    "number": ("户号", "户编号", "户籍编号", "编号", "number", "household_number"),
    "head_name": ("户主", "户主姓名", "户主名字", "姓名", "head", "head_name"),
    "group_name": ("村民小组", "小组", "组", "组别", "所属小组", "group", "group_name"),
    "address": ("地址", "家庭住址", "住址", "家庭地址", "address"),
    "phone": (
        "电话",
        "联系电话",
        "手机",
        "手机号",
        "手机号码",
        "联系方式",
        "phone",
        "mobile",
    ),
    "landline": ("固定电话", "座机", "家庭电话", "landline"),
    "head_birth_year": ("出生年份", "出生年", "birth_year"),
    "opening_balance": ("期初积分", "opening_balance", "opening"),
    "id_number": ("身份证号", "身份证", "身份证号码", "公民身份号码", "id_number"),
}
LABELS = {
    "number": _l("Household number"),
    "head_name": _l("Head of household"),
    "group_name": _l("Group"),
    "address": _l("Address"),
    "phone": _l("Phone: a mobile becomes the head's login phone, a landline the contact number"),
    "landline": _l("Contact number"),
    "head_birth_year": _l("Head's birth year"),
    "opening_balance": _l("Opening balance"),
    "id_number": _l("ID card number: only the birth year is taken; the number is not kept"),
}
MAX_ROWS = 20_000
HEADER_SEARCH_ROWS = 10
MAX_COLUMNS = 60
TOTAL_WORDS = ("合计", "小计", "总计", "共计", "total")
LANDLINE_RE = re.compile(r"^0[0-9]{2,3}[0-9]{7,8}$")  # with its area code: 0710-3456789
ID_RE = re.compile(r"^([0-9]{17}[0-9X]|[0-9]{15})$")

# An .xlsx is a zip of XML. Bound the work by what the members say they inflate to before any
# parsing: Python's zipfile never returns more bytes than a member's declared size, so a member
# that lies about its size cannot inflate past the bound either. A real register of 20,000 rows
# inflates to ~15 MB; a few MB inflating to a gigabyte is refused.
XLSX_MAX_UNCOMPRESSED = 64 * 1024 * 1024
XLSX_MAX_RATIO = 200
CSV_FIELD_LIMIT = 128 * 1024  # the csv module's own default: a longer field is refused


@dataclass
class ImportResult:
    rows: list[HouseholdData] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)  # the sheet row of each of `rows`
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (row, column, message)
    notes: list[tuple[int, str, str]] = field(default_factory=list)  # what was changed, and why
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row, why)
    columns: list[tuple[str, str | None]] = field(default_factory=list)  # (header, use or None)
    header_row: int = 1
    sha256: str = ""
    batch_id: int | None = None
    imported_at: object = None  # when this very file was imported before

    @property
    def bad_rows(self) -> int:
        return len({row for row, _col, _msg in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors and self.imported_at is None


# ------------------------------------------------------------------------ reading the file


def _xlsx_safe(content: bytes) -> None:
    """Refuse a zip that inflates far beyond its size or an XML part with a DOCTYPE (entity
    tricks; a real workbook never has one), before openpyxl parses anything."""
    not_xlsx = _l("This file is not a real .xlsx workbook.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InvalidInput(not_xlsx) from None
    total = sum(m.file_size for m in members)
    if total > XLSX_MAX_UNCOMPRESSED or total > XLSX_MAX_RATIO * max(len(content), 1):
        raise InvalidInput(
            _l(
                "This workbook unpacks to %(mb)s MB, more than a household register needs "
                "(at most %(max)s MB): save it again with only the register's sheet."
            ),
            mb=total // (1024 * 1024),
            max=XLSX_MAX_UNCOMPRESSED // (1024 * 1024),
        )
    try:
        for m in members:
            if m.filename.endswith((".xml", ".rels")):
                with archive.open(m) as f:
                    head = f.read(2048).replace(b"\x00", b"").upper()
                if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                    raise InvalidInput(
                        _l("This workbook contains XML declarations a spreadsheet never has.")
                    )
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError):
        raise InvalidInput(not_xlsx) from None


def _read_xlsx(content: bytes) -> list[list]:
    if not zipfile.is_zipfile(io.BytesIO(content)):
        raise InvalidInput(_l("This file is not a real .xlsx workbook."))
    _xlsx_safe(content)
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        try:
            sheet = wb.worksheets[0]
            # A read-only sheet parses as it is iterated: errors surface here, not at load.
            return [
                list(r)
                for r in sheet.iter_rows(
                    values_only=True, max_row=MAX_ROWS + HEADER_SEARCH_ROWS + 2, max_col=MAX_COLUMNS
                )
            ]
        finally:
            wb.close()
    except DomainError:
        raise
    except Exception:  # openpyxl and the XML parser raise many kinds for a broken workbook
        raise InvalidInput(_l("This file is not a real .xlsx workbook.")) from None


def _read_csv(content: bytes) -> list[list]:
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
    csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error:
        raise InvalidInput(
            _l("A cell of this .csv file is longer than %(kb)s KB or its quotes do not close."),
            kb=CSV_FIELD_LIMIT // 1024,
        ) from None


def _read_rows(filename: str, content: bytes) -> list[list]:
    name = (filename or "").lower()
    if name.endswith(".xlsx"):
        return _read_xlsx(content)
    if name.endswith(".csv"):
        return _read_csv(content)
    raise InvalidInput(_l("Upload a .csv or .xlsx file."))


# ------------------------------------------------------------------------ cells and columns


def cell_text(value) -> str:
    """A cell as the register shows it: numbers without '.0', full-width characters and every
    kind of space made ordinary, spaces tidied."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFKC", str(value))
    text = text.replace("\u3000", " ")
    text = re.sub(r"\s+", " ", text).strip()
    if re.fullmatch(r"-?[0-9]+\.0", text):  # a number a CSV export wrote as 12.0
        text = text[:-2]
    return text


def _key(header) -> str:
    return re.sub(r"\s+", "", cell_text(header)).lower()


_ALIASES = {alias.lower(): key for key, names in COLUMNS.items() for alias in names}


def _header_map(header: list) -> dict[str, int]:
    found: dict[str, int] = {}
    for i, h in enumerate(header):
        key = _ALIASES.get(_key(h))
        if key and key not in found:
            found[key] = i
    return found


def _find_header(rows: list[list]) -> tuple[int, dict[str, int]]:
    """The first of the first rows that names both required columns (title rows above it)."""
    best: dict[str, int] = {}
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        cols = _header_map(row)
        if "number" in cols and "head_name" in cols:
            return i, cols
        if len(cols) > len(best):
            best = cols
    missing = [COLUMNS[k][0] for k in ("number", "head_name") if k not in best]
    raise InvalidInput(
        _l("No row among the first %(n)s names the columns; missing: %(cols)s."),
        n=HEADER_SEARCH_ROWS,
        cols=", ".join(missing),
    )


def _village_number_width(village_id: int, file_numbers: list[str]) -> int | None:
    """How many digits the village writes its household numbers with (041: 3), from the
    zero-padded numbers it has, else from the file's own; None when nothing says."""
    widths = Counter(
        dict(
            db.session.execute(
                select(func.length(Household.number), func.count())
                .where(Household.village_id == village_id, Household.number.like("0%"))
                .group_by(func.length(Household.number))
            ).all()
        )
    )
    if not widths:
        widths = Counter(len(n) for n in file_numbers if n.isdigit() and n.startswith("0"))
    return widths.most_common(1)[0][0] if widths else None


# ------------------------------------------------------------------------ parsing


def file_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def parse(village_id: int, filename: str, content: bytes) -> ImportResult:
    """Check every row against the shape rules and the village's existing data. Writes nothing."""
    rows = _read_rows(filename, content)
    if not any(any(cell_text(c) for c in r) for r in rows):
        raise InvalidInput(_l("The file is empty."))
    header_index, cols = _find_header(rows)
    result = ImportResult(header_row=header_index + 1, sha256=file_hash(content))
    header = rows[header_index]
    used = {i: k for k, i in cols.items()}
    for i, h in enumerate(header):
        name = cell_text(h)
        if name or i in used:
            result.columns.append((name, str(LABELS[used[i]]) if i in used else None))
    body = []
    for rownum, row in enumerate(rows[header_index + 1 :], start=header_index + 2):
        texts = [cell_text(c) for c in row]
        if not any(texts):
            result.skipped.append((rownum, str(_l("blank row"))))
        elif any(t.lower().startswith(TOTAL_WORDS) for t in texts if t):
            result.skipped.append((rownum, str(_l("a total row (合计/小计)"))))
        else:
            body.append(
                (rownum, {k: (texts[i] if i < len(texts) else "") for k, i in cols.items()})
            )
    # Blank rows at the very end are how a sheet ends, not worth a line each.
    last = body[-1][0] if body else header_index + 1
    result.skipped = [s for s in result.skipped if s[0] < last or "合计" in s[1]]
    if not body:
        raise InvalidInput(_l("The file has no households below the header."))
    if len(body) > MAX_ROWS:
        raise InvalidInput(_l("At most %(n)s rows at a time."), n=MAX_ROWS)
    width = _village_number_width(village_id, [raw["number"] for _r, raw in body])
    header_of = {k: cell_text(header[i]) for k, i in cols.items()}
    numbers: dict[str, int] = {}
    phones: dict[str, int] = {}
    for rownum, raw in body:
        data = _clean_row(rownum, raw, width, header_of, result)
        if data is None:
            continue
        if data.number in numbers:
            result.errors.append(
                (
                    rownum,
                    header_of["number"],
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
                    header_of["phone"],
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
        result.row_numbers.append(rownum)
    _check_existing(village_id, result, header_of)
    result.errors.sort()
    result.notes.sort()
    result.skipped.sort()
    return result


def _clean_row(rownum, raw, width, header_of, result) -> HouseholdData | None:
    values: dict = {}
    errors_before = len(result.errors)

    def take(key, fn):
        if key not in raw:
            return None
        try:
            return fn(raw[key])
        except DomainError as e:
            result.errors.append((rownum, header_of[key], str(e)))
            return None

    number = take("number", rules.clean_number)
    if number and width and number.isdigit() and len(number) < width:
        padded = number.zfill(width)
        result.notes.append(
            (
                rownum,
                header_of["number"],
                str(
                    _l(
                        "%(raw)s written as %(number)s, as the village numbers its households.",
                        raw=number,
                        number=padded,
                    )
                ),
            )
        )
        number = padded
    values["number"] = number
    values["head_name"] = take(
        "head_name",
        lambda v: rules.clean_text(v, _l("Head of household"), required=True, max_len=50),
    )
    values["group_name"] = take(
        "group_name", lambda v: rules.clean_text(v, _l("Group"), required=False, max_len=50)
    )
    values["address"] = take(
        "address", lambda v: rules.clean_text(v, _l("Address"), required=False, max_len=200)
    )
    values["head_phone"], values["contact_phone"] = None, ""
    if raw.get("phone"):
        phone = take("phone", lambda v: _split_phone(v))
        if phone:
            values["head_phone"], values["contact_phone"] = phone
            if values["contact_phone"]:
                result.notes.append(
                    (
                        rownum,
                        header_of["phone"],
                        str(
                            _l(
                                "%(phone)s is not a mobile: kept as the household's contact "
                                "number, not as a login.",
                                phone=values["contact_phone"],
                            )
                        ),
                    )
                )
    if raw.get("landline") and not values["contact_phone"]:
        values["contact_phone"] = take("landline", _contact_number) or ""
    values["head_birth_year"] = take("head_birth_year", rules.clean_birth_year)
    if values["head_birth_year"] is None and raw.get("id_number"):
        year = _birth_year_from_id(raw["id_number"])
        if year:
            values["head_birth_year"] = year
            result.notes.append(
                (
                    rownum,
                    header_of["id_number"],
                    str(_l("Birth year %(year)s taken from the ID card number.", year=year)),
                )
            )
    values["opening_balance"] = take("opening_balance", rules.clean_points) or 0
    if len(result.errors) > errors_before or not values["number"] or not values["head_name"]:
        return None
    values["group_name"] = values["group_name"] or ""
    values["address"] = values["address"] or ""
    return HouseholdData(**values)


def _split_phone(value: str) -> tuple[str | None, str]:
    """(login mobile, contact number): a mobile is a login phone; a landline (0710-3456789) is
    kept as written, as a contact number; anything else is refused."""
    digits = rules.ascii_digits(value)
    if rules.PHONE_RE.match(digits):
        return digits, ""
    if LANDLINE_RE.match(digits):
        return None, value[:30]
    raise InvalidInput(_l("%(value)s is neither a mobile nor a landline number."), value=value)


def _contact_number(value: str) -> str:
    """Any phone number to reach the household (a landline or a mobile), kept as written."""
    digits = rules.ascii_digits(value)
    if rules.PHONE_RE.match(digits) or LANDLINE_RE.match(digits):
        return value[:30]
    raise InvalidInput(_l("%(value)s is neither a mobile nor a landline number."), value=value)


def _birth_year_from_id(value: str) -> int | None:
    text = value.upper().replace(" ", "")
    if not ID_RE.match(text):
        return None
    year = int(text[6:10]) if len(text) == 18 else 1900 + int(text[6:8])
    try:
        return rules.clean_birth_year(year)
    except DomainError:
        return None


def _check_existing(village_id: int, result: ImportResult, header_of: dict) -> None:
    """A household already in the village with the same head is left as it is (the register
    imported again); one with another head is an error. In chunks: a few queries, not one a row."""
    index = {d.number: i for i, d in enumerate(result.rows)}
    keep = [True] * len(result.rows)
    keys = list(index)
    for i in range(0, len(keys), 500):
        for number, head in db.session.execute(
            select(Household.number, Household.head_name).where(
                Household.village_id == village_id, Household.number.in_(keys[i : i + 500])
            )
        ):
            j = index[number]
            keep[j] = False
            rownum = result.row_numbers[j]
            if head == result.rows[j].head_name:
                result.skipped.append(
                    (rownum, str(_l("household %(number)s is already there", number=number)))
                )
            else:
                result.errors.append(
                    (
                        rownum,
                        header_of["number"],
                        str(_l("Household number %(number)s already exists.", number=number)),
                    )
                )
    phones = {d.head_phone: i for i, d in enumerate(result.rows) if d.head_phone and keep[i]}
    keys = list(phones)
    for i in range(0, len(keys), 500):
        for phone in db.session.scalars(
            select(Resident.phone).where(
                Resident.village_id == village_id, Resident.phone.in_(keys[i : i + 500])
            )
        ):
            result.errors.append(
                (
                    result.row_numbers[phones[phone]],
                    header_of["phone"],
                    str(_l("The phone %(phone)s belongs to another resident.", phone=phone)),
                )
            )
    result.rows = [d for d, k in zip(result.rows, keep, strict=True) if k]
    result.row_numbers = [n for n, k in zip(result.row_numbers, keep, strict=True) if k]


# ------------------------------------------------------------------------ preview, confirm


def preview(village_id: int, filename: str, content: bytes, actor_id: int | None) -> ImportResult:
    """Parse, and when no row is wrong keep the rows to write in an ImportBatch for `confirm`.
    No household, resident or ledger entry is written."""
    result = parse(village_id, filename, content)
    if result.errors:
        return result
    with transaction():
        batch = db.session.scalar(
            select(ImportBatch).where(
                ImportBatch.village_id == village_id, ImportBatch.sha256 == result.sha256
            )
        )
        if batch is not None and batch.status == "imported":
            result.imported_at = batch.imported_at
            result.batch_id = batch.id
            return result
        if batch is None:
            batch = ImportBatch(village_id=village_id, sha256=result.sha256)
            db.session.add(batch)
        batch.filename = (filename or "")[:200]
        batch.rows = [asdict(d) for d in result.rows]
        batch.created_by_id = actor_id
        batch.created_at = utcnow()
        db.session.flush()
        result.batch_id = batch.id
    return result


def confirm(village_id: int, batch_id: int, sha256: str, actor_id: int | None) -> int:
    """Write the households a preview showed, all or none, once: a batch already imported (the
    same file again, a double click, a second admin) writes nothing and says when it was.
    Returns how many households were written."""
    with transaction():
        ledger.lock_village(village_id)  # two confirmations at once: the second waits, then sees
        batch = db.session.get(ImportBatch, batch_id)
        if batch is None or batch.village_id != village_id or batch.sha256 != sha256:
            raise NotFound()
        if batch.status == "imported":
            raise InvalidInput(
                _l("This file was already imported (%(when)s UTC); nothing was written again."),
                when=batch.imported_at.strftime("%Y-%m-%d %H:%M"),
            )
        for row in batch.rows:
            create_household(village_id, HouseholdData(**row), actor_id)
        batch.status = "imported"
        batch.imported_at = utcnow()
        record(
            village_id,
            actor_id,
            "household.import",
            f"import:{batch.id}",
            f"{len(batch.rows)} {batch.filename}",
        )
        return len(batch.rows)


def import_households(
    village_id: int, filename: str, content: bytes, actor_id: int | None
) -> ImportResult:
    """Preview and confirm in one go (the CLI): when no row is wrong, every new household is
    written in one transaction; nothing otherwise."""
    result = preview(village_id, filename, content, actor_id)
    if result.ok:
        confirm(village_id, result.batch_id, result.sha256, actor_id)
    return result


def template_xlsx() -> bytes:
    """A blank register with the columns the import reads; 户号 formatted as text, so 041 stays."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "花名册"
    keys = [k for k in COLUMNS if k != "id_number"]
    ws.append([COLUMNS[k][0] for k in keys])
    for i in range(2, 502):
        ws.cell(row=i, column=1).number_format = "@"
        ws.cell(row=i, column=5).number_format = "@"
    for i, width in enumerate((10, 12, 12, 28, 16, 10, 10), start=1):
        ws.column_dimensions[chr(64 + i)].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
