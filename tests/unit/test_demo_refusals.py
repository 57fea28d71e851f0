"""The demo's driver sends the requests the API must refuse as a careful client does: a 503 while
the database restarts (a chaos run) is tried again, and the refusal it then gets is judged."""

from __future__ import annotations

import httpx
import pytest

from workers.harness.demo import driver as driver_module
from workers.harness.demo.driver import Driver
from workers.harness.demo.scenario import Refusal


def test_a_refusal_answered_503_first_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_module, "RETRY_PAUSE_S", 0.0)
    answers = iter([503, 409])

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), json={"error": "x"})

    client = httpx.Client(base_url="http://api", transport=httpx.MockTransport(api))
    driver = Driver(api=client, sandbox=client, engine=None)  # type: ignore[arg-type]
    refusal = Refusal(what="another body", path="/v1/orders", body={}, status=409)

    driver._refuse(refusal)

    assert driver.result.refusals == {"another body": None}
