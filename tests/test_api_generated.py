"""Generated API requests (issue 12): schemathesis reads `/api/v1/openapi.json` of a real app
(the SPEC fixture pack with demo records, called in process through WSGI) and sends every
operation requests it generates from the document — valid ones and invalid ones — as an
administrator and as an agent (a role with row filters and a hidden field), on SQLite and
PostgreSQL. No answer may be a 500, and every answer must be one the document declares: its
status, its content type and its body's schema.

The budget is fixed and seeded: a few examples per operation and generation mode, no shrinking,
derandomized, so a run takes the same time and finds the same things every time. A failure is
reported with schemathesis' `curl` line to reproduce it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from api_support import bearer, make_app, user_with_token
from conftest import BACKENDS, build_instance, provision_database
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from support import FIXTURES, admin_actor
from web_support import seed

EXAMPLES = 4  # per operation, generation mode and role: about 15 s per role and database
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
BUDGET = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same requests on every run
    database=None,  # nothing remembered between runs
    deadline=None,  # a request's time is not the question here
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module", params=BACKENDS)
def tokens(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Flask, dict[str, str]]]:
    """(the app, {role: bearer token}) over one database for every role's run."""
    directory = tmp_path_factory.mktemp(f"generated-{request.param}")
    with provision_database(request.param, directory) as url:
        inst = build_instance([FIXTURES / "core", FIXTURES / "spec"], url)
        try:
            seed(inst, admin_actor(inst))
            _, agent = user_with_token(inst, "agnes", roles=("agent",))
            _, admin = user_with_token(inst, "root", is_admin=True)
            yield make_app(inst, directory), {"admin": admin, "agent": agent}
        finally:
            inst.engine.dispose()


def explore(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> str | None:
    """The first failure of `operation`'s generated requests, as schemathesis reports it."""

    @BUDGET
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        call()
    except (AssertionError, BaseExceptionGroup) as failure:  # schemathesis' failures are both
        return str(failure)
    return None


@pytest.mark.slow  # hundreds of generated requests: 10 s a role
@pytest.mark.parametrize("role", ["admin", "agent"])
def test_generated_requests_are_answered_as_documented(tokens, role: str) -> None:
    app, by_role = tokens
    headers = bearer(by_role[role])
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=headers)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = explore(operation, mode, headers)
            if failure is not None:
                failures.append(f"{operation.label} ({mode.value}):\n{failure}")
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
