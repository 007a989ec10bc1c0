"""Every string the UI can show has Chinese, in one of the zh_CN catalogs under app/**/translations.

The strings are extracted the way `pybabel extract -F babel.cfg -k _l` does, from all of app/ and
templates/, so a string added anywhere without a translation fails here with its msgid listed.
"""

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None}
# A named placeholder, an escaped percent sign, or a bare one: templates always apply "%" to the
# translation, so a stray "%" in a msgstr breaks the page even where the msgid has none.
PERCENT = re.compile(r"%\(\w+\)[sdif]|%%|%")


def _extracted() -> dict[str, list[str]]:
    """msgid -> where it is used ("path:line"); a plural counts by its singular and plural."""
    with open(ROOT / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str, list[str]] = {}
    for top in ("app", "templates"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / top, method_map, options_map, keywords=KEYWORDS
        ):
            for msgid in message if isinstance(message, tuple) else (message,):
                if msgid:
                    found.setdefault(msgid, []).append(f"{top}/{filename}:{lineno}")
    return found


def _catalogs():
    paths = sorted((ROOT / "app").glob("**/translations/zh_CN/LC_MESSAGES/messages.po"))
    assert paths, "no zh_CN catalog found under app/**/translations"
    for path in paths:
        with open(path, "rb") as f:
            yield path.relative_to(ROOT), read_po(f)


def _translated() -> dict[str, list[tuple[str, str]]]:
    """msgid -> [(catalog, msgstr)] for every non-empty, non-fuzzy translation (a fuzzy one is
    not compiled, so the user would see English)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for path, catalog in _catalogs():
        for m in catalog:
            if not m.id or m.fuzzy:
                continue
            ids = m.id if isinstance(m.id, tuple) else (m.id,)
            strings = m.string if isinstance(m.string, tuple | list) else (m.string,)
            if not all(strings):
                continue
            for i, msgid in enumerate(ids):
                found.setdefault(msgid, []).append((str(path), strings[min(i, len(strings) - 1)]))
    return found


@pytest.fixture(scope="module")
def extracted():
    return _extracted()


@pytest.fixture(scope="module")
def translated():
    return _translated()


def test_extraction_finds_the_core_strings(extracted):
    # Guards the test itself: if extraction silently found nothing, everything would "pass".
    assert "Sign in" in extracted
    assert "Village Points" in extracted
    assert "Not enough points: the balance is %(balance)s, %(needed)s are needed." in extracted


def test_every_extracted_string_has_chinese(extracted, translated):
    missing = sorted(set(extracted) - set(translated))
    if missing:
        pytest.fail(
            f"{len(missing)} strings have no zh_CN translation:\n"
            + "\n".join(f"  {m!r}  ({', '.join(extracted[m][:2])})" for m in missing),
            pytrace=False,
        )


def test_no_catalog_is_skipped_by_the_compiler():
    # pybabel skips a catalog whose header is marked fuzzy (a new catalog is, by default): its
    # strings would pass the tests above and still show in English.
    fuzzy = [str(path) for path, catalog in _catalogs() if catalog.fuzzy]
    assert not fuzzy, f"catalogs marked fuzzy (remove '#, fuzzy' from the header): {fuzzy}"


def test_translations_keep_the_placeholders_of_their_msgid(translated):
    wrong = [
        f"  {path}: {msgid!r} -> {msgstr!r}"
        for msgid, entries in sorted(translated.items())
        for path, msgstr in entries
        if sorted(PERCENT.findall(msgid)) != sorted(PERCENT.findall(msgstr))
    ]
    if wrong:
        pytest.fail(
            "placeholders differ between msgid and msgstr:\n" + "\n".join(wrong), pytrace=False
        )
