"""axe-core in the browser tests: every page a Playwright test visits is checked against the
WCAG 2 A and AA rules, and a test fails on any violation with a readable list (rule, element,
what is wrong).

axe is vendored from the npm registry (tests/vendor/axe.min.js, `npm pack axe-core`, licence
beside it); it is a test tool and never served to users. The pages send
`Content-Security-Policy: script-src 'self'`, which refuses an inline <script> (what
`page.add_script_tag(path=...)` would add), so axe runs through `page.evaluate`: the DevTools
protocol evaluates in the page's main world and the CSP does not apply to it.

`watch(page)` checks the page after every load (`page.goto`, a link followed, a form posted)
and keeps what it found on the page (`check_watched()` fails on it); `assert_accessible(page)`
checks the page as it is now (after an htmx swap, say) and fails on anything found so far.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa"]}}
FOUND = "_axe_found"  # the violations found on a watched page, kept on the page object
IN_GOTO = "_axe_in_goto"  # a watched page's goto is under way (and will check the page)

RUN = """async (options) => {
    // one run at a time: the check after a load may still be running when a test checks
    while (axe._running) await new Promise(done => setTimeout(done, 50));
    const result = await axe.run(document, options);
    return result.violations.map(v => ({
        rule: v.id,
        help: v.help,
        nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
    }));
}"""


def violations(page: Any) -> list[str]:
    """The WCAG 2 A/AA violations on the page as it is now, one readable line per element."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(RUN, RULES)
    where = page.url
    return [f"{where}: {item['rule']} ({item['help']}) at {node['target']}: "
            f"{' '.join(node['summary'].split())}"
            for item in found for node in item["nodes"]]


WATCHED: list[Any] = []  # the pages watch() was asked to check, until check_watched()


def watch(page: Any) -> Any:
    """Check `page` with axe after every load from now on; returns the page.

    A `page.goto` is checked before it returns (the test cannot move on first); any other load
    (a link followed, a form posted) is checked as its "load" event arrives, beside the test,
    and a page the test has already left by then is skipped. axe is added to every document
    as it is created (an init script, which the CSP does not apply to), so a check is quick."""
    setattr(page, FOUND, [])
    page.add_init_script(path=str(AXE))
    page.on("load", _check_loaded)
    navigate = page.goto

    def goto(url: str, **options: Any) -> Any:
        setattr(page, IN_GOTO, True)
        try:
            answer = navigate(url, **options)
        finally:
            setattr(page, IN_GOTO, False)
        getattr(page, FOUND).extend(violations(page))
        return answer

    page.goto = goto
    WATCHED.append(page)
    return page


def _check_loaded(page: Any) -> None:
    if getattr(page, IN_GOTO, False):
        return  # goto checks it
    where = page.url
    try:
        getattr(page, FOUND).extend(violations(page))
    except Exception as exc:  # noqa: BLE001 - see _gone
        if not _gone(page, where, exc):
            getattr(page, FOUND).append(f"{where}: axe could not run: {exc}")


def _gone(page: Any, where: str, exc: Exception) -> bool:
    """Did the test move on (another page loaded, the page closed) while axe ran? Then the
    page that loaded is gone and there is nothing left to check."""
    if page.is_closed() or page.url != where:
        return True
    return any(phrase in str(exc) for phrase in (
        "Execution context was destroyed", "has been closed", "Target closed", "navigat",
        "detached", "Cannot find context"))


def unwatch(page: Any) -> Any:
    """Stop checking `page` (a test that breaks a page on purpose); returns the page."""
    if page in WATCHED:
        WATCHED.remove(page)
    return page


def check_watched() -> None:
    """Fail on every violation found on the watched pages (then forget them)."""
    found = [line for page in WATCHED for line in getattr(page, FOUND, [])]
    WATCHED.clear()
    assert not found, "accessibility (axe, WCAG 2 A/AA) violations:\n" + "\n".join(
        dict.fromkeys(found))


def assert_accessible(page: Any) -> None:
    """Check the page now, then fail on every violation found on it so far."""
    found = list(getattr(page, FOUND, [])) + violations(page)
    setattr(page, FOUND, [])
    assert not found, "accessibility (axe, WCAG 2 A/AA) violations:\n" + "\n".join(
        dict.fromkeys(found))
