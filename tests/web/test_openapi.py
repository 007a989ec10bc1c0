"""The counter API keeps to its OpenAPI document: schemathesis generates requests from
/api/v1/openapi.json (valid ones, and ones that break the schema) and checks every answer's
status, content type and body against the document. No 500 for any of them.

One exception: a photo for /decode is any bytes by its schema, and bytes that are no picture
are refused with the documented 422, which schemathesis would count as a valid request refused.
"""

import pytest
import schemathesis
from flask import g
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation import GenerationMode

from .. import factories
from ..services.test_store import make_store
from .test_store_api import sign_in

EXAMPLES = 60


@pytest.fixture
def counter(app, client, village):
    """A clerk signed in at a store with a household to serve: (headers, cookies)."""
    store = make_store(village)
    factories.household(village, opening=500)
    token = sign_in(client, store.clerk)
    return {"X-CSRFToken": token}, {"session": client.get_cookie("session").value}


def _run(app, auth, mode):
    headers, cookies = auth

    def isolated(environ, start_response):
        # Requests run inside the test's app context and would share its `g` (where Flask-Login
        # keeps the signed-in user): start each with an empty one, as in production.
        g.__dict__.clear()
        # The WSGI transport reads bodies as sent: no compressed answer (the offline list is
        # large enough to be compressed).
        environ.pop("HTTP_ACCEPT_ENCODING", None)
        return app(environ, start_response)

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", isolated)

    @schema.auth()
    class Clerk:
        """The signed-in clerk's cookie and CSRF header on every case, except a case that
        leaves them out on purpose to check that the API refuses it."""

        def get(self, case, context):
            return headers, cookies

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), **data[0]}
            case.cookies = {**(case.cookies or {}), **data[1]}

    failures = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        excluded = [positive_data_acceptance] if operation.path.endswith("/decode") else []
        check = _checker(operation, mode, excluded)
        try:
            check()
        except Exception as e:  # noqa: BLE001 - collect every operation's failure
            failures[operation.label] = str(e)[:3000]
    return failures


def _checker(operation, mode, excluded):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        case.call_and_validate(excluded_checks=excluded)

    return check


def test_valid_requests_get_answers_the_document_lists(app, counter):
    failures = _run(app, counter, GenerationMode.POSITIVE)
    assert not failures, failures


def test_invalid_requests_are_refused_as_the_document_says(app, counter):
    failures = _run(app, counter, GenerationMode.NEGATIVE)
    assert not failures, failures
