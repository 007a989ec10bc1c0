"""Village admin pages for households and residents: list, search, create, edit, archive,
residents, villager logins, and every form's bad input."""

import html
import io
import re

import pytest
from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from app.households.models import Household, Resident
from app.ledger.chain import verify
from app.ledger.models import LedgerEntry

from .. import factories
from ..conftest import csrf_token
from ..services.test_import import ROWS, ZH_HEADER, csv_bytes, xlsx_bytes
from .helpers import (
    assert_chinese_error,
    count,
    error_messages,
    fresh,
    location_path,
    post,
    snapshot,
    text_of,
)


@pytest.fixture
def admin(login_as):
    return login_as("village_admin")


def listed_numbers(resp) -> list[str]:
    body = text_of(resp).split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<tr><td><a href="/admin/households/\d+">([^<]+)</a>', body)


def household_by_number(village, number) -> Household:
    fresh()
    return db.session.scalar(
        select(Household).where(Household.village_id == village.id, Household.number == number)
    )


# --- list, search, pagination -------------------------------------------------------------


@pytest.fixture
def some_households(village):
    factories.household(village, number="0101", head="王建国", group="一组")
    factories.household(village, number="0102", head="王秀英", group="二组")
    factories.household(village, number="0201", head="李德明", group="二组")
    archived = factories.household(village, number="0301", head="赵老汉", group="三组")
    from app.households.services import set_status

    set_status(village.id, archived.id, "archived", None)


def test_list_shows_active_households_in_number_order(client, admin, some_households):
    resp = client.get("/admin/households/")
    assert resp.status_code == 200
    assert listed_numbers(resp) == ["0101", "0102", "0201"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("0102", ["0102"]),  # by household number
        ("01", ["0101", "0102"]),  # by the start of the number
        ("王", ["0101", "0102"]),  # by part of the head's name
        ("李德明", ["0201"]),
        ("二组", ["0102", "0201"]),  # by group
        ("没有这个人", []),
    ],
)
def test_search_finds_households_by_number_name_or_group(
    client, admin, some_households, query, expected
):
    resp = client.get("/admin/households/", query_string={"q": query})
    assert resp.status_code == 200
    assert listed_numbers(resp) == expected


def test_archived_households_are_listed_only_under_archived(client, admin, some_households):
    resp = client.get("/admin/households/", query_string={"status": "archived"})
    assert listed_numbers(resp) == ["0301"]


def test_scorer_may_list_households_but_sees_no_admin_buttons(client, login_as, some_households):
    login_as("scorer")
    resp = client.get("/admin/households/")
    assert listed_numbers(resp) == ["0101", "0102", "0201"]
    assert "/admin/households/new" not in text_of(resp)


def next_page(resp) -> str | None:
    """The pager's "next" link, or None on the last page."""
    m = re.search(r'<nav class="pager"[^>]*>.*?href="([^"]*after=[^"]*)"', text_of(resp), re.S)
    return html.unescape(m.group(1)) if m else None


def test_list_is_paginated_and_page_3_of_45_has_the_last_5(client, admin, village):
    for n in range(1, 46):
        factories.household(village, number=f"{n:03d}")
    page1 = client.get("/admin/households/")
    assert listed_numbers(page1) == [f"{n:03d}" for n in range(1, 21)]
    page2 = client.get(next_page(page1))
    assert listed_numbers(page2) == [f"{n:03d}" for n in range(21, 41)]
    page3 = client.get(next_page(page2))
    assert listed_numbers(page3) == [f"{n:03d}" for n in range(41, 46)]
    assert next_page(page3) is None
    assert "« 第一页" in text_of(page3) and "« 第一页" not in text_of(page1)


def test_pagination_keeps_the_search_and_the_status(client, admin, village):
    for n in range(1, 26):
        factories.household(village, number=f"{n:03d}", group="五组")
    factories.household(village, number="900", group="六组")
    page1 = client.get("/admin/households/", query_string={"q": "五组"})
    assert len(listed_numbers(page1)) == 20
    link = next_page(page1)
    assert "q=%E4%BA%94%E7%BB%84" in link and "status=active" in link
    assert listed_numbers(client.get(link)) == [f"{n:03d}" for n in range(21, 26)]


def test_a_page_after_the_last_household_is_empty_not_an_error(client, admin, village):
    factories.household(village, number="001")
    resp = client.get("/admin/households/?after=zzz")
    assert resp.status_code == 200 and listed_numbers(resp) == []


# --- create, edit, archive ----------------------------------------------------------------


def test_create_household_with_head_phone_year_and_opening_balance(client, admin, village):
    resp = post(
        client,
        "/admin/households/new",
        {
            "number": "0420",
            "head_name": "陈桂兰",
            "group_name": "四组",
            "address": "双塘村四组12号",
            "head_phone": "13912340420",
            "head_birth_year": "1958",
            "opening_balance": "135",
        },
    )
    assert resp.status_code == 302
    h = household_by_number(village, "0420")
    assert location_path(resp) == f"/admin/households/{h.id}"
    assert (h.head_name, h.group_name, h.address, h.status) == (
        "陈桂兰",
        "四组",
        "双塘村四组12号",
        "active",
    )
    assert h.balance == 135
    [head] = h.residents
    assert (head.name, head.phone, head.birth_year) == ("陈桂兰", "13912340420", 1958)
    [entry] = db.session.scalars(select(LedgerEntry).where(LedgerEntry.household_id == h.id))
    assert (entry.kind, entry.points, entry.balance_after) == ("opening", 135, 135)
    assert verify() == []
    detail = text_of(client.get(f"/admin/households/{h.id}"))
    assert "<b>135</b>" in detail and "13912340420" in detail


def test_create_household_without_opening_balance_posts_no_entry(client, admin, village):
    resp = post(client, "/admin/households/new", {"number": "0001", "head_name": "周大山"})
    assert resp.status_code == 302
    h = household_by_number(village, "0001")
    assert h.balance == 0
    assert count(LedgerEntry) == 0


def test_edit_household_changes_its_fields_but_not_its_balance(client, admin, village):
    h = factories.household(village, number="0007", head="孙文", opening=20)
    resp = post(
        client,
        f"/admin/households/{h.id}/edit",
        {"number": "0007A", "head_name": "孙文华", "group_name": "七组", "address": "东头"},
    )
    assert resp.status_code == 302
    fresh()
    h = db.session.get(Household, h.id)
    assert (h.number, h.head_name, h.group_name, h.address) == ("0007A", "孙文华", "七组", "东头")
    assert h.balance == 20
    assert count(LedgerEntry) == 1


def test_edit_form_shows_the_current_values(client, admin, village):
    h = factories.household(village, number="0008", head="钱多多", group="八组")
    html = text_of(client.get(f"/admin/households/{h.id}/edit"))
    assert 'value="0008"' in html and 'value="钱多多"' in html and 'value="八组"' in html


def test_archive_and_restore_household(client, admin, village):
    h = factories.household(village, number="0009")
    resp = post(client, f"/admin/households/{h.id}/status", {"status": "archived"})
    assert resp.status_code == 302
    fresh()
    assert db.session.get(Household, h.id).status == "archived"
    assert listed_numbers(client.get("/admin/households/")) == []
    assert "0009" in listed_numbers(client.get("/admin/households/?status=archived"))

    resp = post(client, f"/admin/households/{h.id}/status", {"status": "active"})
    assert resp.status_code == 302
    fresh()
    assert db.session.get(Household, h.id).status == "active"
    assert listed_numbers(client.get("/admin/households/")) == ["0009"]


# --- residents and villager logins ---------------------------------------------------------


def test_add_and_edit_resident(client, admin, village):
    h = factories.household(village, number="0010")
    resp = post(
        client,
        f"/admin/households/{h.id}/residents/new",
        {"name": "王小红", "phone": "13700000010", "birth_year": "1990"},
    )
    assert resp.status_code == 302
    fresh()
    member = db.session.scalar(select(Resident).where(Resident.name == "王小红"))
    assert (member.household_id, member.phone, member.birth_year) == (h.id, "13700000010", 1990)

    resp = post(
        client,
        f"/admin/households/{h.id}/residents/{member.id}",
        {"name": "王晓红", "phone": "13700000011", "birth_year": ""},
    )
    assert resp.status_code == 302
    fresh()
    member = db.session.get(Resident, member.id)
    assert (member.name, member.phone, member.birth_year) == ("王晓红", "13700000011", None)
    assert "王晓红" in text_of(client.get(f"/admin/households/{h.id}"))


def test_villager_given_a_login_signs_in_with_the_phone_and_sees_me(app, client, admin, village):
    h = factories.household(village, number="0011", opening=88)
    resident = h.residents[0]
    post(
        client,
        f"/admin/households/{h.id}/residents/{resident.id}",
        {"name": resident.name, "phone": "13600000011"},
    )
    resp = post(
        client, f"/admin/households/residents/{resident.id}/login", {"password": "villager-pw"}
    )
    assert resp.status_code == 302
    login = db.session.scalar(select(User).where(User.resident_id == resident.id))
    assert (login.username, login.role, login.village_id) == ("13600000011", "villager", village.id)
    assert "13600000011" in text_of(client.get(f"/admin/households/{h.id}"))

    phone = app.test_client()
    resp = post(phone, "/login", {"username": "13600000011", "password": "villager-pw"})
    assert resp.status_code == 302
    me = phone.get("/me")
    assert me.status_code == 200
    assert '<p class="big-number" id="balance">88</p>' in text_of(me)


def test_changing_a_villagers_phone_changes_the_login(app, client, admin, village):
    villager = factories.user(village, "villager")
    resident_id, household_id = villager.resident_id, villager.resident.household_id
    resp = post(
        client,
        f"/admin/households/{household_id}/residents/{resident_id}",
        {"name": "新号码", "phone": "13500000099"},
    )
    assert resp.status_code == 302
    fresh()
    assert db.session.get(User, villager.id).username == "13500000099"
    phone = app.test_client()
    resp = post(phone, "/login", {"username": "13500000099", "password": factories.PASSWORD})
    assert resp.status_code == 302


# --- bad input: a Chinese message, nothing written ----------------------------------------

LONG = "长" * 51


@pytest.fixture
def existing(village):
    """A household 0500 whose head has phone 13900000500, and one more household 0501."""
    h = factories.household(village, number="0500", head="已有户")
    from app.households.services import save_resident

    save_resident(
        village.id,
        h.id,
        name="已有户",
        phone="13900000500",
        birth_year=1950,
        actor_id=None,
        resident_id=h.residents[0].id,
    )
    other = factories.household(village, number="0501", head="另一户")
    return {"h": h.id, "r": h.residents[0].id, "other": other.id, "other_r": other.residents[0].id}


GOOD_NEW = {"number": "0600", "head_name": "新户主", "head_phone": "", "head_birth_year": ""}

BAD_FORMS = [
    # new household
    ("/admin/households/new", dict(GOOD_NEW, number="")),
    ("/admin/households/new", dict(GOOD_NEW, head_name="")),
    ("/admin/households/new", dict(GOOD_NEW, head_name="   ")),
    ("/admin/households/new", dict(GOOD_NEW, head_name=LONG)),
    ("/admin/households/new", dict(GOOD_NEW, group_name=LONG)),
    ("/admin/households/new", dict(GOOD_NEW, number="1" * 21)),
    ("/admin/households/new", dict(GOOD_NEW, number="05/00")),
    ("/admin/households/new", dict(GOOD_NEW, head_phone="12345")),
    ("/admin/households/new", dict(GOOD_NEW, head_phone="23900000600")),
    ("/admin/households/new", dict(GOOD_NEW, head_birth_year="1800")),
    ("/admin/households/new", dict(GOOD_NEW, head_birth_year="2099")),
    ("/admin/households/new", dict(GOOD_NEW, head_birth_year="五八年")),
    ("/admin/households/new", dict(GOOD_NEW, opening_balance="很多")),
    ("/admin/households/new", dict(GOOD_NEW, opening_balance="99999999")),
    ("/admin/households/new", dict(GOOD_NEW, number="0500")),  # taken
    ("/admin/households/new", dict(GOOD_NEW, head_phone="13900000500")),  # taken
    # edit household
    ("/admin/households/{h}/edit", {"number": "0500", "head_name": ""}),
    ("/admin/households/{h}/edit", {"number": "0501", "head_name": "已有户"}),  # taken
    ("/admin/households/{h}/edit", {"number": "0500", "head_name": "户", "address": "址" * 201}),
    # new resident
    ("/admin/households/{h}/residents/new", {"name": ""}),
    ("/admin/households/{h}/residents/new", {"name": LONG}),
    ("/admin/households/{h}/residents/new", {"name": "张三", "phone": "1390000050"}),
    ("/admin/households/{h}/residents/new", {"name": "张三", "birth_year": "1899"}),
    ("/admin/households/{h}/residents/new", {"name": "张三", "birth_year": "abc"}),
    ("/admin/households/{h}/residents/new", {"name": "张三", "phone": "13900000500"}),  # taken
    # edit resident
    ("/admin/households/{other}/residents/{other_r}", {"name": "另一户", "phone": "13900000500"}),
    ("/admin/households/{h}/residents/{r}", {"name": ""}),
    # villager login
    ("/admin/households/residents/{r}/login", {"password": "short"}),
    ("/admin/households/residents/{r}/login", {"password": ""}),
    ("/admin/households/residents/{other_r}/login", {"password": "long-enough-1"}),  # no phone
]


@pytest.mark.parametrize(("path", "data"), BAD_FORMS)
def test_bad_input_gets_a_chinese_message_and_writes_nothing(client, admin, existing, path, data):
    before = snapshot()
    resp = post(client, path.format(**existing), data)
    assert_chinese_error(resp, 422)
    assert snapshot() == before


def test_resident_who_already_has_a_login_gets_no_second(client, admin, village):
    villager = factories.user(village, "villager")
    before = snapshot()
    resp = post(
        client,
        f"/admin/households/residents/{villager.resident_id}/login",
        {"password": "long-enough-1"},
    )
    assert_chinese_error(resp, 422)
    assert snapshot() == before


FORM_POSTS = [
    ("/admin/households/new", dict(GOOD_NEW)),
    ("/admin/households/{h}/edit", {"number": "0500", "head_name": "改"}),
    ("/admin/households/{h}/status", {"status": "archived"}),
    ("/admin/households/{h}/residents/new", {"name": "新人"}),
    ("/admin/households/{h}/residents/{r}", {"name": "改名"}),
    ("/admin/households/residents/{other_r}/login", {"password": "long-enough-1"}),
]


@pytest.mark.parametrize(("path", "data"), FORM_POSTS)
def test_form_without_csrf_token_is_refused_with_400(client, admin, existing, path, data):
    before = snapshot()
    resp = post(client, path.format(**existing), data, token=False)
    assert_chinese_error(resp, 400)
    assert snapshot() == before


def test_form_with_a_forged_csrf_token_is_refused(client, admin, existing):
    before = snapshot()
    csrf_token(client)
    resp = client.post(
        "/admin/households/new", data=dict(GOOD_NEW, csrf_token="forged.token.value")
    )
    assert resp.status_code == 400
    assert snapshot() == before


# --- the import page ----------------------------------------------------------------------


def upload(client, filename: str, content: bytes):
    return post(
        client,
        "/admin/households/import",
        {"file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


def confirm_form(resp) -> dict:
    html = text_of(resp)
    return {
        "batch": re.search(r'name="batch" value="(\d+)"', html).group(1),
        "sha256": re.search(r'name="sha256" value="([0-9a-f]+)"', html).group(1),
    }


def test_import_page_previews_then_imports_on_confirm_once(client, admin, village):
    content = csv_bytes([ZH_HEADER, *ROWS])
    before = snapshot()
    resp = upload(client, "户籍.csv", content)
    assert resp.status_code == 200
    assert "预览：新增 3 户" in text_of(resp)
    assert snapshot() == before  # nothing written before the admin confirms
    form = confirm_form(resp)
    resp = post(client, "/admin/households/import/confirm", form)
    assert resp.status_code == 302 and location_path(resp) == "/admin/households/"
    assert "已导入 3 户。" in text_of(client.get("/admin/households/"))
    assert count(Household) == 3
    # A second click, or the same file again: nothing doubles.
    resp = post(client, "/admin/households/import/confirm", form)
    assert resp.status_code == 302
    assert "已经导入过" in text_of(client.get("/admin/households/import"))
    assert "已经导入过" in text_of(upload(client, "户籍.csv", content))
    assert count(Household) == 3
    assert verify() == []


def test_import_confirm_of_another_villages_batch_is_not_found(client, admin, village):
    from app.households.importer import preview

    other = factories.village("xiwan", "西湾村")
    result = preview(other.id, "a.csv", csv_bytes([ZH_HEADER, *ROWS]), None)
    form = {"batch": str(result.batch_id), "sha256": result.sha256}
    assert post(client, "/admin/households/import/confirm", form).status_code == 404
    assert post(client, "/admin/households/import/confirm", {"batch": "x"}).status_code == 404
    assert count(Household) == 0


def test_import_template_downloads_as_xlsx(client, admin):
    resp = client.get("/admin/households/import/template.xlsx")
    assert resp.status_code == 200
    assert resp.data[:2] == b"PK" and "attachment" in resp.headers["Content-Disposition"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/households/import"),
        ("get", "/admin/households/import/template.xlsx"),
        ("post", "/admin/households/import/confirm"),
    ],
)
def test_import_is_for_the_village_admin_only(client, login_as, method, path):
    login_as("scorer")
    resp = post(client, path, {}) if method == "post" else client.get(path)
    assert resp.status_code == 403


def test_import_page_shows_each_bad_row_and_imports_nothing(client, admin, village):
    factories.household(village, number="0003")
    content = xlsx_bytes(
        [
            ZH_HEADER,
            ROWS[0],
            ["0002", "李秀英", "", "", "1380000", "", ""],  # row 3
            ROWS[2],  # row 4: exists
        ]
    )
    before = snapshot()
    resp = upload(client, "户籍.xlsx", content)
    messages = assert_chinese_error(resp, 422)
    assert "没有导入：有 2 行不对。" in text_of(resp)
    rows = re.findall(r"<tr><td>(\d+)</td><td>", text_of(resp))
    assert rows == ["3", "4"]
    assert "<td>电话</td>" in text_of(resp) and "<td>户号</td>" in text_of(resp)
    assert any("1380000" in m for m in messages) and any("0003" in m for m in messages)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("户籍.xlsx", b"number,head_name\n1,x\n"),
        ("户籍.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
        ("户籍.txt", b"number,head_name\n1,x\n"),
        ("户籍.csv", b""),
        ("户籍.csv", "户主,电话\n王,13800001001\n".encode()),
    ],
    ids=["text-as-xlsx", "binary-as-csv", "txt", "empty", "no-number-column"],
)
def test_import_page_refuses_a_file_that_is_not_a_list(client, admin, filename, content):
    before = snapshot()
    assert_chinese_error(upload(client, filename, content), 422)
    assert snapshot() == before


def test_import_page_without_a_file_asks_for_one(client, admin):
    before = snapshot()
    assert_chinese_error(post(client, "/admin/households/import", {}), 422)
    assert snapshot() == before


def test_import_page_without_csrf_token_is_refused(client, admin):
    resp = client.post(
        "/admin/households/import",
        data={"file": (io.BytesIO(csv_bytes([ZH_HEADER, *ROWS])), "户籍.csv")},
        content_type="multipart/form-data",
    )
    assert_chinese_error(resp, 400)
    assert count(Household) == 0


def test_import_page_refuses_a_file_over_the_size_limit(client, admin, app):
    too_big = b"0" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    before = snapshot()
    assert_chinese_error(upload(client, "户籍.csv", too_big), 413)
    assert snapshot() == before


def test_a_villager_with_a_login_keeps_a_phone(client, admin, village):
    villager = factories.user(village, "villager")
    household_id = db.session.get(Resident, villager.resident_id).household_id
    before = snapshot()
    resp = post(
        client,
        f"/admin/households/{household_id}/residents/{villager.resident_id}",
        {"name": "没电话", "phone": ""},
    )
    assert_chinese_error(resp, 422)
    assert snapshot() == before


def test_names_are_shown_as_text_never_as_markup(client, admin, village):
    factories.household(village, number="0666", head="<script>alert(1)</script>")
    for path in ("/admin/households/", "/admin/households/?q=0666"):
        html = text_of(client.get(path))
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_spaces_typed_around_a_number_or_inside_a_phone_are_ignored(client, admin, village):
    """Phone keyboards add a space after a word, and people write phones as 138 0000 0700;
    the import accepts both, so the forms do too."""
    resp = post(
        client,
        "/admin/households/new",
        {"number": " 0700 ", "head_name": " 刘洋 ", "head_phone": "138 0000 0700"},
    )
    assert resp.status_code == 302, error_messages(resp)
    h = household_by_number(village, "0700")
    assert (h.head_name, h.residents[0].phone) == ("刘洋", "13800000700")

    resp = post(
        client,
        f"/admin/households/{h.id}/residents/new",
        {"name": "刘小洋 ", "phone": " 137 0000 0701"},
    )
    assert resp.status_code == 302, error_messages(resp)
    fresh()
    assert db.session.scalar(select(Resident.phone).where(Resident.name == "刘小洋")) == (
        "13700000701"
    )
