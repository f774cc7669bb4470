"""benchmarks/report.py: each benchmark rewrites its own section of docs/performance.md and
leaves the others as they are."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import HEADER, write_section


def test_sections_are_replaced_in_place_and_others_kept(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    write_section("api", "## API\n\nold table", doc)
    write_section("demo", "## Demo\n\n44.4 s", doc)
    text = write_section("api", "## API\n\nnew table", doc)
    assert text.startswith(HEADER)
    assert "new table" in text and "old table" not in text
    assert text.index("## API") < text.index("## Demo")  # the order stays
    assert text.count("<!-- begin api -->") == 1 and "44.4 s" in text


def test_a_report_from_before_sections_starts_again(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\n| old | table |\n", encoding="utf-8")
    text = write_section("demo", "## Demo\n\n44.4 s", doc)
    assert "old | table" not in text and "44.4 s" in text


def test_the_committed_report_has_both_sections() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "performance.md").read_text()
    assert "<!-- begin api -->" in text and "<!-- begin demo -->" in text
