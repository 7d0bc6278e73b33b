"""schemathesis against the app's own OpenAPI schema, signed in as a real user: no 5xx anywhere.

Every operation is called with generated valid and invalid inputs (path ids, bodies, query
strings, uploads). The user owns a project with a MIDI file, so project routes reach the
code behind the 404 as well. The test user's own sign-out is left out: it would end the
session the rest of the run needs (sign-out has its own tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from notefall.common.examples import EXAMPLE_MIDI
from notefall.common.tiers import Tier
from notefall.server.billing import catalog
from notefall.server.kit.app import create_app
from schemathesis import GenerationMode

from tests.support.stripe_fixture import running_stripe_server

from .conftest import TestClient, make_settings, signed_in_headers

pytestmark = pytest.mark.xdist_group("fuzz")

# Examples per operation and generation mode; enough to reach the error paths of every
# parameter without making this the slowest test of the suite.
EXAMPLES = 25


@pytest.fixture
def fuzzed(
    tmp_path: Path, migrated_url: str, redis_url: str
) -> Iterator[tuple[Any, dict[str, str]]]:
    # Billing configured against the local Stripe-compatible server, so its routes are
    # fuzzed for real instead of all answering 503 billing_not_configured.
    with running_stripe_server() as stripe_server:
        stripe_settings: dict[str, Any] = {
            "stripe_secret_key": stripe_server.api_key,
            "stripe_webhook_secret": stripe_server.webhook_secret,
            "stripe_api_base": stripe_server.url,
        }
        common = {"redis_url": redis_url, "rate_limit_scale": 1000.0, **stripe_settings}
        base = make_settings(tmp_path / "data", migrated_url, **common)
        prices = {line.tier: line.price_id for line in catalog.sync_catalog(base)}
        settings = make_settings(
            tmp_path / "data",
            migrated_url,
            stripe_price_pro=prices[Tier.PRO],
            stripe_price_enterprise=prices[Tier.ENTERPRISE],
            **common,
        )
        app = create_app(settings)
        with TestClient(app) as client:
            headers = signed_in_headers(client, settings, "fuzz@example.com")
            project = client.post("/api/v1/projects", json={"name": "Fuzz"}, headers=headers).json()
            with EXAMPLE_MIDI.open("rb") as song:
                client.put(
                    f"/api/v1/projects/{project['id']}/midi",
                    files={"file": ("song.mid", song, "audio/midi")},
                    headers=headers,
                ).raise_for_status()
            yield app, headers


def test_no_operation_answers_with_a_server_error(fuzzed: tuple[Any, dict[str, str]]):
    # Driven by hand rather than through schemathesis' pytest plugin, whose lazy fixture
    # loader does not run on pytest 9: one Hypothesis run per operation, valid and invalid
    # inputs alike, every failing operation reported at the end.
    app, headers = fuzzed
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(
        method="POST", path="/api/v1/auth/logout"
    )
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=cases)
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: Any) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}"
            )

        try:
            no_server_error()
        except Exception as failure:  # an assertion, or a server error the client re-raised
            failures[operation.label] = f"{type(failure).__name__}: {str(failure)[:600]}"
    assert operations >= 40
    assert failures == {}
