"""The API reference (docs/api/*.md, built by mkdocs in .ci/run) covers the public namespace."""

import re
from pathlib import Path

import symml

API = Path(__file__).resolve().parents[1] / "docs" / "api"
ENTRY = re.compile(r"^:::\s+symml\.([A-Za-z_][\w.]*)\s*$", re.MULTILINE)


def _entries() -> dict[str, str]:
    """``{dotted name after 'symml.': page}`` for every ``::: symml.NAME`` line."""
    found = {}
    for page in sorted(API.glob("*.md")):
        for name in ENTRY.findall(page.read_text(encoding="utf-8")):
            found[name] = page.name
    return found


def test_every_public_name_has_a_reference_entry():
    entries = _entries()
    missing = sorted(set(symml.__all__) - set(entries))
    assert not missing, (
        f"{missing} are in symml.__all__ but on no page of docs/api/; add a line '::: symml.NAME' "
        "to the page of its stage (see mkdocs.yml for the pages)."
    )


def test_every_reference_entry_names_something_that_exists():
    stale = []
    for dotted, page in _entries().items():
        obj = symml
        for part in dotted.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                stale.append(f"symml.{dotted} ({page})")
                break
    assert not stale, f"reference entries for names symml does not have: {stale}"


def test_every_page_is_in_the_navigation():
    nav = (API.parents[1] / "mkdocs.yml").read_text(encoding="utf-8")
    absent = [p.name for p in API.glob("*.md") if f"api/{p.name}" not in nav]
    assert not absent, f"docs/api pages missing from the nav of mkdocs.yml: {absent}"
