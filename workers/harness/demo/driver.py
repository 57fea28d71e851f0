"""Drives the scenario through the public API, as checkout, buyers and the carrier would.

Orders are POSTed by a pool of 16 threads (a double-buy is submitted next to the order it competes
with, so both are in flight together). Then the driver follows every order by polling the
database (one query for all orders, far cheaper than one GET each) and reacts to what it sees:
cancels the orders planned to be cancelled, and for the others asks the carrier sandbox for
"shipped" and, once that webhook has moved the order, "delivered". It stops when every order is in
a final state, or at the deadline, listing what is stuck.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from workers.harness.demo.scenario import FINAL_STATES, PlannedOrder, Refusal, Scenario

CONCURRENCY = 16
POLL_INTERVAL_S = 0.2
#: How long a request that met a 5xx or a refused connection is retried, and how often.
RETRY_FOR_S = 60.0
RETRY_PAUSE_S = 0.5

#: When a planned cancellation is sent: as soon as the order exists, or once its label is bought.
_CANCEL_WHEN = {"early": {"placed", "confirmed", "label_purchased"}, "after_label": {"label_purchased"}}

_STATES = text(
    "SELECT o.id::text, o.state, l.label_id FROM orders o "
    "LEFT JOIN labels l ON l.order_id = o.id AND l.status = 'purchased'"
)


@dataclass
class DriveResult:
    elapsed_s: float = 0.0
    #: From the first POST until the API had answered every order (and its replays).
    posting_s: float = 0.0
    timed_out: bool = False
    #: Requests made and what the API said: "orders_accepted", "http_replays", "cancels", ...
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    stuck: list[dict[str, str]] = field(default_factory=list)
    #: Each planned refusal's `what` -> None if the API refused it as expected, else what it said.
    refusals: dict[str, str | None] = field(default_factory=dict)


def _worth_retrying(response: httpx.Response) -> bool:
    """A 5xx, or the sandbox saying its webhook met a 5xx or no answer from the API."""
    if response.status_code >= 500:
        return True
    if response.status_code == 200 and "/v1/sandbox/" in response.request.url.path:
        body = response.json()
        return body.get("delivered") is not True and int(body.get("status_code") or 500) >= 500
    return False


def _stuck(scenario: Scenario, states: dict[str, tuple[str, str | None]]) -> list[dict[str, str]]:
    stuck = []
    for order in scenario.orders:
        state = states.get(order.order_id, ("missing", None))[0]
        if state not in FINAL_STATES:
            stuck.append({"order_id": order.order_id, "state": state, "plan": plan_of(order)})
    return stuck


def plan_of(order: PlannedOrder) -> str:
    """A short description of what was planned for an order, for stuck-order lists."""
    if order.double_of:
        return f"double-buy of {order.double_of}"
    if order.cancel:
        return f"cancel {order.cancel.replace('_', ' ')}"
    if order.invalid_address:
        return f"invalid {order.invalid_address} address"
    return "ship and deliver"


class Driver:
    def __init__(self, *, api: httpx.Client, sandbox: httpx.Client, engine: Engine) -> None:
        self.api, self.sandbox, self.engine = api, sandbox, engine
        self.result = DriveResult()
        self._lock = threading.Lock()
        self._requested: set[tuple[str, str]] = set()
        self._futures: list[Future[None]] = []
        # Orders the API refused: they will never exist, so the run does not wait for them.
        self._refused: set[str] = set()
        # One driver, one run: the pool is shut down when the run ends.
        self._pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="demo")
        self._started = time.monotonic()
        # Refusals that must wait until the order they are about was accepted (the 409).
        self._after: dict[str, list[Refusal]] = {}
        self._states: dict[str, tuple[str, str | None]] = {}

    def run(
        self,
        scenario: Scenario,
        *,
        timeout_s: float,
        progress: Callable[[int], None],
        check_alive: Callable[[], None],
    ) -> DriveResult:
        """Post every order, then follow them all until final or `timeout_s`; never raises for
        an order that goes wrong (that is for the report), only when a process dies."""
        started = self._started = time.monotonic()
        pause = threading.Event()
        try:
            for refusal in scenario.refusals:
                if refusal.after is None:
                    self._submit(self._refuse, refusal)
                else:
                    self._after.setdefault(refusal.after, []).append(refusal)
            for order in scenario.orders:
                self._submit(self._post_order, order)
            while True:
                states = self._poll()
                for order in scenario.orders:
                    self._react(order, *states.get(order.order_id, ("missing", None)))
                final = sum(state in FINAL_STATES for state, _ in states.values())
                progress(final)
                if final + len(self._refused) >= len(scenario.orders) and not self._pending():
                    break
                if time.monotonic() - started > timeout_s:
                    self.result.timed_out = True
                    break
                check_alive()
                pause.wait(POLL_INTERVAL_S)
        finally:
            # On Ctrl-C or a dead process, requests not yet started are dropped, not sent.
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.result.elapsed_s = time.monotonic() - started
        self.result.stuck = _stuck(scenario, states)
        return self.result

    def _react(self, order: PlannedOrder, state: str, label_id: str | None) -> None:
        if order.cancel is not None:
            if state in _CANCEL_WHEN[order.cancel]:
                self._once(order.order_id, "cancel", self._cancel, order)
        elif state == "label_purchased" and label_id:
            self._once(order.order_id, "shipped", self._carrier_event, label_id, "shipped")
        elif state == "shipped" and label_id:
            self._once(order.order_id, "delivered", self._carrier_event, label_id, "delivered")

    def _once(self, order_id: str, action: str, fn: Callable[..., None], *args: Any) -> None:
        if (order_id, action) not in self._requested:
            self._requested.add((order_id, action))
            self._submit(fn, *args)

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        self._futures.append(self._pool.submit(self._guarded, fn, *args))

    def _pending(self) -> bool:
        self._futures = [f for f in self._futures if not f.done()]
        return bool(self._futures)

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except httpx.HTTPError as error:
            self._error(f"{fn.__name__}{args!r}: {type(error).__name__}: {error}")

    def _post_order(self, order: PlannedOrder) -> None:
        headers = {"Idempotency-Key": order.idempotency_key}
        first = self._post(self.api, "/v1/orders", json=order.body, headers=headers)
        if not self._expect(first, 202, f"POST order {order.order_id}"):
            with self._lock:
                self._refused.add(order.order_id)
            return
        self._count("orders_accepted")
        for refusal in self._after.get(order.order_id, []):
            self._refuse(refusal)
        if order.replay:
            again = self._post(self.api, "/v1/orders", json=order.body, headers=headers)
            if self._expect(again, 202, f"replayed POST {order.order_id}"):
                replayed = again.headers.get("Idempotent-Replayed") == "true"
                self._count("http_replays" if replayed else "http_replays_not_recognised")
        if order.resend:
            other = {"Idempotency-Key": f"{order.idempotency_key}-resent"}
            resent = self._post(self.api, "/v1/orders", json=order.body, headers=other)
            if self._expect(resent, 202, f"resent POST {order.order_id}"):
                self._count("resends_other_key")
        with self._lock:
            self.result.posting_s = max(self.result.posting_s, time.monotonic() - self._started)

    def _cancel(self, order: PlannedOrder) -> None:
        headers = {"Idempotency-Key": f"cancel-{order.order_id}"}
        response = self._post(
            self.api, f"/v1/orders/{order.order_id}/cancel", json={"reason": "buyer_request"}, headers=headers
        )
        if self._expect(response, 202, f"cancel {order.order_id}"):
            self._count("cancels")

    def _refuse(self, refusal: Refusal) -> None:
        """Send a request the API must refuse, and note whether it answered as documented (a 503
        while the database restarts is tried again, as for every other request of the run)."""
        response = self._post(self.api, refusal.path, json=refusal.body)
        problem = None
        if response.status_code != refusal.status:
            problem = f"HTTP {response.status_code} {response.text[:200]}"
        elif refusal.field is not None:
            named = {item.get("field") for item in response.json().get("fields", [])}
            if refusal.field not in named:
                problem = f"422 without naming {refusal.field}: {response.text[:200]}"
        with self._lock:
            self.result.refusals[refusal.what] = problem
        self._count("refused_at_the_edge" if problem is None else "refusals_not_as_documented")

    def _carrier_event(self, label_id: str, event: str) -> None:
        response = self._post(self.sandbox, f"/v1/sandbox/labels/{label_id}/events", json={"event": event})
        if self._expect(response, 200, f"{event} event for {label_id}"):
            delivered = response.json().get("delivered") is True
            self._count(f"webhooks_{event}" if delivered else f"webhooks_{event}_refused")
            if not delivered:
                self._error(f"{event} webhook for {label_id} not accepted: {response.text[:200]}")

    def _post(self, client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
        """POST as a careful client does: a 5xx, or an outage of the receiver behind the carrier's
        webhook, is tried again with the same body and Idempotency-Key for up to RETRY_FOR_S (a
        chaos run restarts the database under the API); anything else is answered at once."""
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            try:
                response = client.post(path, **kwargs)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            else:
                if not _worth_retrying(response) or time.monotonic() > deadline:
                    return response
            with self._lock:
                self.result.counts["requests_retried"] += 1
            time.sleep(RETRY_PAUSE_S)

    def _poll(self) -> dict[str, tuple[str, str | None]]:
        """Every order's state; while the database is unreachable (a chaos run restarts it), the
        states seen last, so following the orders pauses instead of ending the run."""
        try:
            with self.engine.connect() as connection:
                self._states = {row[0]: (row[1], row[2]) for row in connection.execute(_STATES)}
        except OperationalError:
            pass
        return self._states

    def _expect(self, response: httpx.Response, status: int, what: str) -> bool:
        if response.status_code == status:
            return True
        self._error(f"{what}: HTTP {response.status_code} {response.text[:200]}")
        return False

    def _count(self, name: str) -> None:
        with self._lock:
            self.result.counts[name] += 1

    def _error(self, message: str) -> None:
        with self._lock:
            self.result.errors.append(message)
