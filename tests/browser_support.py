"""What every browser test shares: Debian's Chromium through Playwright, an instance served on
127.0.0.1 (a random port, in a thread), signing in, and screenshots.

A browser test module defines a module-scoped `server` fixture that yields
`served(inst, directory, **extra)` — a dict with "url", "inst" and the extras — usually of
`browser_instance` (a fresh instance of the core pack, skipped without a browser), with
`give_passwords` for the people who sign in; the `browser`
fixture (tests/conftest.py) launches Chromium for it, and `accessible_pages` checks every page
the module's tests visit with axe. Without Chromium or Playwright the tests are skipped, visibly
(`apt-get install -y chromium`).

`CRMFORGE_SCREENSHOTS=1` saves pages, desktop (1366 px) and phone (390 px), to
docs/screenshots/ (the pictures in docs/web.md).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from axe_support import watch
from conftest import build_instance
from web_support import PASSWORD, make_app
from werkzeug.serving import make_server

from runtime.core.instance import Actor, Instance
from runtime.http.auth import set_password

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
DESKTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = (("desktop", DESKTOP), ("phone", PHONE))
CORE = Path(__file__).resolve().parent.parent / "verticals" / "core"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = expect = None


def require_browser() -> None:
    """Skip, saying how to get it, when Chromium or Playwright is missing."""
    if CHROMIUM is None or sync_playwright is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); browser tests "
                    "skipped")


def browser_instance(tmp_path_factory: pytest.TempPathFactory, name: str,
                     packs: list[Path] | None = None) -> tuple[Instance, Path]:
    """For a module's `server` fixture: skip without a browser, else a new instance of `packs`
    (the core pack) on SQLite in a new temporary folder `name`, and that folder."""
    require_browser()
    directory = tmp_path_factory.mktemp(name)
    return build_instance(packs or [CORE], f"sqlite:///{directory / 'crm.db'}"), directory


def give_passwords(inst: Instance, *people: Actor) -> None:
    """Let `people` sign in in the browser (password PASSWORD)."""
    for person in people:
        set_password(inst, person.user_id, PASSWORD)


@contextmanager
def served(inst: Instance | None, directory: Path, *, dispose: bool = True, app: Any = None,
           **extra: Any) -> Iterator[dict[str, Any]]:
    """The instance's web app on 127.0.0.1 until the block ends; the dict the tests receive.
    `dispose=False` leaves the engine to the fixture that made the instance; `app` serves
    that WSGI app instead (the workspaces' dispatcher: `inst` None)."""
    httpd = make_server("127.0.0.1", 0, app or make_app(inst, directory), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{httpd.server_port}", "inst": inst, **extra}
    finally:
        httpd.shutdown()
        if dispose and inst is not None:
            inst.engine.dispose()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, for one module's tests."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


def sign_in(browser: Browser, server: dict[str, Any], username: str = "admin",
            viewport: dict | None = None) -> Page:
    """A new page, signed in as `username` (password PASSWORD), on the home page; watched by
    axe."""
    page = watch(browser.new_page(viewport=viewport or DESKTOP))
    page.set_default_timeout(10_000)
    page.goto(server["url"] + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server["url"] + "/")
    return page


def shooting() -> bool:
    return bool(os.environ.get("CRMFORGE_SCREENSHOTS"))


def shoot(page: Page, name: str, *, full_page: bool = True) -> None:
    """Save the page as docs/screenshots/<name>.png (CRMFORGE_SCREENSHOTS=1)."""
    if shooting():
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def shoot_both(browser: Browser, server: dict[str, Any], username: str, path: str, name: str,
               prepare: Callable[[Page], Any] | None = None) -> None:
    """Save `path` as `username` sees it, desktop-<name>.png and phone-<name>.png
    (CRMFORGE_SCREENSHOTS=1); `prepare` runs on the page first."""
    if not shooting():
        return
    for device, viewport in VIEWPORTS:
        page = sign_in(browser, server, username, viewport)
        page.goto(server["url"] + path)
        if prepare is not None:
            prepare(page)
        shoot(page, f"{device}-{name}")
        page.close()
