"""Every web process serves the model the database was last migrated to.

`crmforge upgrade` or `migrate`, run in any process on any machine, records the applied
model's hash in `crm_model`. A web process reads that row at most once a second (one small
SELECT), and when it names another model it opens the instance again from the packs on disk,
on the same engine, and serves it from the next request on. A request keeps the instance it
started with (`runtime.http.current.get_instance`), so no request sees two models.

When this machine's packs do not make the model the database names (the files were not
deployed here yet), the process keeps serving the model it has, says so in the log and in
`/readyz`, and tries again every `RETRY_AFTER` seconds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from threading import Lock

import sqlalchemy as sa
from flask import Flask, current_app, g

from runtime.core.instance import Instance
from runtime.http.current import EXTENSION
from runtime.process.setup import SetupError, last_applied, open_instance

CHECK_EVERY = 1.0  # seconds between two looks at crm_model, per process
RETRY_AFTER = 30.0  # seconds before a model that failed to open is tried again
WATCH = "crmforge_model_watch"  # the app extension holding the ModelWatch

log = logging.getLogger("crmforge.model")


@dataclass
class ModelWatch:
    """The model version check of one app (one per process)."""

    interval: float = CHECK_EVERY
    problem: str | None = None  # why the database's model is not served, for /readyz
    _checked_at: float = float("-inf")
    _failed: tuple[str, float] | None = None  # (hash that failed to open, when)
    _lock: Lock = field(default_factory=Lock)

    def current(self, app: Flask) -> Instance:
        """The instance to serve now: the database's model, reopened when it changed."""
        inst: Instance = app.extensions[EXTENSION]
        now = time.monotonic()
        if now - self._checked_at < self.interval or not self._lock.acquire(blocking=False):
            return inst  # looked a moment ago, or another thread is looking now
        try:
            self._checked_at = now
            applied = last_applied(inst.engine)
            if applied is None or applied == inst.model.hash:
                self.problem = None
                return inst
            return self._reopen(app, inst, applied, now)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("cannot read the model version: %s", _first_line(exc))
            return inst
        finally:
            self._lock.release()

    def _reopen(self, app: Flask, inst: Instance, applied: str, now: float) -> Instance:
        if self._failed and self._failed[0] == applied and now - self._failed[1] < RETRY_AFTER:
            return inst
        try:
            fresh = open_instance(engine=inst.engine, clock=inst.clock)
        except SetupError as exc:
            self._failed = (applied, now)
            self.problem = (f"the database is at model {applied[:12]} but this process cannot "
                            f"serve it ({_first_line(exc)}); it still serves "
                            f"{inst.model.hash[:12]}")
            log.error("%s", self.problem)
            return inst
        fresh.settings = inst.settings
        fresh.read_engine = inst.read_engine
        app.extensions[EXTENSION] = fresh
        self._failed, self.problem = None, None
        log.info("now serving model %s (was %s)", applied[:12], inst.model.hash[:12])
        return fresh


def watch(app: Flask) -> None:
    """Check the model version before every request of `app`."""
    app.extensions[WATCH] = ModelWatch()
    app.before_request(_pin_instance)


def _pin_instance() -> None:
    g.crm_instance = current_app.extensions[WATCH].current(current_app)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
