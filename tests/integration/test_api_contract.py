"""Schemathesis against the live API: every documented operation, all checks, real Postgres.

The app runs under uvicorn in a thread with its console. The schema is the app's own OpenAPI
document, built at collection time (schemathesis' lazy fixture loader does not run on this pytest),
and one test checks that the running server publishes exactly that document. Each operation gets
generated valid and invalid requests (positive and negative modes, coverage phase included). All
of schemathesis' checks run: no 5xx, every status and body as documented (the error shape
included), invalid data refused, missing credentials refused. The example budget is small, so
the module stays well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from shared.config import Settings
from shared.runtime import Runtime
from tests.fixtures.live_api import live_api
from tests.fixtures.services import make_settings
from workers.api.app import create_app
from workers.api.tokens import create_token

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def live_url(settings: Settings, runtime: Runtime) -> Iterator[str]:
    with live_api(settings) as url:
        yield url


@pytest.fixture(scope="module")
def token(runtime: Runtime) -> str:
    with runtime.sessions.begin() as session:
        return create_token(session, "contract-test")


#: Rules JSON Schema cannot state, so a schema-valid request may still get 422 here: an order's
#: buyer and seller differ, its market and currency agree with the fee schedule, its `placed_at` is
#: recent (workers.api.orders); a cancel reason is printable text (shared.values.PrintableLine,
#: checked after the schema). Every other operation must accept whatever its schema allows.
CROSS_FIELD_RULES = {"/v1/orders", "/v1/orders/{order_id}/cancel"}
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-path": path,
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "403", "404", "409", "422"]
                    }
                },
            }
            for path in sorted(CROSS_FIELD_RULES)
        ]
    }
)
DOCUMENT = create_app(make_settings()).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


def test_the_running_server_publishes_the_document_under_test(live_url):
    assert httpx.get(f"{live_url}/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_every_operation_keeps_its_documented_contract_under_generated_input(case, live_url, token):
    case.call_and_validate(base_url=live_url, headers={"Authorization": f"Bearer {token}"})
