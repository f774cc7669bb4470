"""The documentation keeps up with the code: every diagnostic code the builder can report is
in docs/errors.md, every field type is in docs/definition-files.md, and the documentation
list of README.md points at files that exist."""

from __future__ import annotations

import re
from pathlib import Path

from builder.fieldtypes import REGISTRY

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
CODE = re.compile(r"\b[EW][0-9]{3}\b")  # errors and warnings
NOT_REPORTED_BY_VALIDATE = {"E320"}  # evaluation problems at run time
EXAMPLE = re.compile(r"^\S+:\d+:\d+: (error|warning) ([EW]\d{3}) \S")


def builder_codes() -> set[str]:
    codes: set[str] = set()
    for path in [*(ROOT / "builder").rglob("*.py"), *(ROOT / "builder").rglob("*.json")]:
        codes.update(CODE.findall(path.read_text(encoding="utf-8")))
    return codes


def documented(text: str) -> dict[str, str]:
    """Code -> the meaning given in a table row `| E123 | meaning |`."""
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^\| ([EW]\d{3}) \|(.+)\|\s*$", text, re.MULTILINE)}


def test_the_builder_codes_are_found():
    codes = builder_codes()
    assert {"E001", "E101", "E201", "E301", "E401", "E415", "W201"} <= codes
    assert len(codes) > 40


def test_every_builder_code_is_in_errors_md():
    table = documented((DOCS / "errors.md").read_text(encoding="utf-8"))
    missing = sorted(builder_codes() - set(table))
    assert not missing, f"docs/errors.md does not explain {', '.join(missing)}"
    assert all(len(meaning) > 10 for meaning in table.values())


def test_errors_md_explains_no_code_the_builder_lacks():
    table = documented((DOCS / "errors.md").read_text(encoding="utf-8"))
    stale = sorted(set(table) - builder_codes())
    assert not stale, f"docs/errors.md explains codes nothing reports: {', '.join(stale)}"


def test_every_reported_code_has_an_example_line():
    examples: dict[str, list[str]] = {}
    for line in (DOCS / "errors.md").read_text(encoding="utf-8").splitlines():
        match = EXAMPLE.match(line)
        if match:
            examples.setdefault(match.group(2), []).append(line)
    missing = sorted(builder_codes() - NOT_REPORTED_BY_VALIDATE - set(examples))
    assert not missing, f"docs/errors.md has no example line for {', '.join(missing)}"


def test_every_field_type_is_in_definition_files_md():
    text = (DOCS / "definition-files.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z]+)` +\|", text, re.MULTILINE))
    missing = sorted(set(REGISTRY) - rows)
    assert not missing, f"docs/definition-files.md has no row for {', '.join(missing)}"


def test_validate_md_shows_the_json_keys():
    from builder.diagnostics import Diagnostic

    text = (DOCS / "validate.md").read_text(encoding="utf-8")
    keys = Diagnostic("f", 1, 1, "E000", "m").to_dict()
    for key in keys:
        assert f'"{key}":' in text and f"| `{key}`" in text, key
    assert "crmforge validate" in text and "crmforge packs" in text


def test_readme_documentation_links_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Documentation", 1)[1]
    links = re.findall(r"\]\(([^)#]+)\)", section)
    assert {"docs/errors.md", "docs/validate.md"} <= set(links)
    for link in links:
        assert (ROOT / link).is_file(), link


def test_links_between_docs_exist():
    for page in DOCS.glob("*.md"):
        for link in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text("utf-8")):
            assert (page.parent / link).is_file(), f"{page.name} -> {link}"


RUNTIME = ROOT / "runtime"
CITED_PATH = re.compile(r"`((?:runtime|builder|tools|benchmarks|tests)/[\w/.-]*)`")


def test_architecture_md_names_every_runtime_module():
    """docs/architecture.md lists each module by its path, or by name on the line of the
    folder it belongs to (`http/api/` ... `crud` ...)."""
    lines = (DOCS / "architecture.md").read_text(encoding="utf-8").splitlines()
    text = "\n".join(lines)
    missing = []
    for path in sorted(RUNTIME.rglob("*.py")):
        rel = path.relative_to(RUNTIME)
        if rel.name == "__init__.py" or rel.parent == Path("."):
            continue
        folder = f"`{rel.parent.as_posix()}/`"
        on_folder_line = any(folder in line and f"`{rel.stem}`" in line for line in lines)
        if f"`{rel.as_posix()}`" not in text and not on_folder_line:
            missing.append(rel.as_posix())
    assert not missing, f"docs/architecture.md does not place {', '.join(missing)}"


def test_every_path_the_docs_cite_exists():
    stale = []
    for doc in [ROOT / "README.md", *DOCS.glob("*.md"), *ROOT.glob("verticals/*/README.md")]:
        for match in CITED_PATH.finditer(doc.read_text(encoding="utf-8")):
            cited = match.group(1).rstrip("/.")
            if not (ROOT / cited).exists():
                stale.append(f"{doc.relative_to(ROOT)}: {cited}")
    assert not stale, f"the docs cite paths that do not exist: {stale}"
