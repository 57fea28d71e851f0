"""Connecting to whichever RabbitMQ node is alive: every process's way in to a cluster.

A process handed the nodes of a cluster (`Settings.amqp_nodes`) must not hang on to one of them:
when that node dies, its clients reconnect to another within seconds, and many clients must not
all pick the same survivor at the same instant. So, for every kind of client here:

- the nodes are tried in turn, from a random first one (`rotated`), so a fleet of processes
  spreads over the cluster instead of all landing on the first URL;
- a dead node costs little: pika's TCP and handshake timeouts are lowered (`pika_parameters`)
  unless the URL sets its own, and aiormq's connect is bounded (`CONNECT_TIMEOUT_S`);
- between rounds that found no node at all, the wait is capped and jittered (`ReconnectBackoff`,
  "full jitter": uniform between 0 and a doubling bound), so a whole fleet does not retry in step;
- the management API is a list too: `management_client` sends each request to the node that last
  answered and moves on to the next when one cannot be reached (`FailoverTransport`).

Clients: Dramatiq's consumers and publishers (`shared.broker`), `circulate setup`
(`shared.topology`), the relay and re-drive (aiormq, `connect_any`), the sweeper, the exporter, the
demo's preparation. See docs/operations/cluster.md.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import aiormq
import httpx
import pika

from shared.config import Settings

logger = logging.getLogger(__name__)

#: aiormq has no connect timeout of its own for the AMQP handshake; a black-holed node costs this.
CONNECT_TIMEOUT_S = 5.0
#: pika's defaults (10 s TCP connect, 15 s whole handshake) per dead node, unless the URL says.
PIKA_SOCKET_TIMEOUT_S = 3.0
PIKA_STACK_TIMEOUT_S = 6.0
MANAGEMENT_TIMEOUT_S = 10.0

_T = TypeVar("_T")


class ReconnectBackoff:
    """Capped exponential backoff with full jitter: uniform(0, min(cap, first * 2**failures))."""

    def __init__(self, *, first_s: float = 0.2, cap_s: float = 5.0, rng: random.Random | None = None) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        bound = min(self.cap_s, self.first_s * 2**self.failures)
        self.failures += 1
        return self._rng.uniform(0, bound)

    def reset(self) -> None:
        """A connection succeeded: the next failure starts from the first, short wait again."""
        self.failures = 0


def rotated(items: Sequence[_T], *, rng: random.Random | None = None) -> list[_T]:
    """The items in their order, starting from a random one: every node is still tried once."""
    if len(items) < 2:
        return list(items)
    start = (rng or random).randrange(len(items))
    return [*items[start:], *items[:start]]


def pika_parameters(urls: Sequence[str]) -> list[pika.URLParameters]:
    """pika parameters for each URL, rotated; quicker to give up on a dead node than pika's own.

    `pika.BlockingConnection` takes the list and tries each in turn (its connection workflow), so
    a list of these is a connection that fails over. A URL's own `socket_timeout` or
    `stack_timeout` query parameter wins.
    """
    parameters = []
    for url in rotated(urls):
        given = parse_qs(urlsplit(url).query)
        node = pika.URLParameters(url)
        if "socket_timeout" not in given:
            node.socket_timeout = PIKA_SOCKET_TIMEOUT_S
        if "stack_timeout" not in given:
            node.stack_timeout = PIKA_STACK_TIMEOUT_S
        parameters.append(node)
    return parameters


def blocking_connection(settings: Settings) -> pika.BlockingConnection:
    """A pika connection to the first live node of `settings.amqp_urls` (from a random start)."""
    return pika.BlockingConnection(pika_parameters(settings.amqp_urls))


async def connect_any(
    urls: Sequence[str], *, timeout_s: float = CONNECT_TIMEOUT_S
) -> aiormq.abc.AbstractConnection:
    """An aiormq connection to the first node that answers, trying each once from a random start.

    Raises ConnectionError naming every node's failure when none answers; the caller waits
    (`ReconnectBackoff`) and calls again.
    """
    failures = []
    for url in rotated(urls):
        try:
            return await asyncio.wait_for(_connect(url), timeout=timeout_s)
        except (OSError, TimeoutError, aiormq.AMQPError) as error:
            failures.append(f"{_where(url)}: {type(error).__name__}: {error}")
    raise ConnectionError("no RabbitMQ node answered: " + "; ".join(failures))


async def _connect(url: str) -> aiormq.abc.AbstractConnection:
    return await aiormq.connect(url)


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5672}"


class FailoverTransport(httpx.BaseTransport):
    """Sends each request to one of several base URLs: the last that answered, then the others.

    A node that cannot be reached (connect error, timeout) or answers 502/503 (booting, behind a
    proxy that lost it) is skipped for the next; the last node's answer or error is what the
    caller sees. Requests are built against the first base URL and re-pointed here.
    """

    SKIP_STATUSES = frozenset({502, 503})

    def __init__(self, base_urls: Sequence[str], *, inner: httpx.BaseTransport | None = None) -> None:
        if not base_urls:
            raise ValueError("FailoverTransport needs at least one base URL")
        self._bases = [httpx.URL(url) for url in base_urls]
        self._inner = inner or httpx.HTTPTransport()
        self._preferred = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        count = len(self._bases)
        for step in range(count):
            index = (self._preferred + step) % count
            last = step == count - 1
            request.url = self._repointed(request.url, self._bases[index])
            request.headers["Host"] = self._bases[index].netloc.decode("ascii")
            try:
                response = self._inner.handle_request(request)
            except (httpx.ConnectError, httpx.TimeoutException) as error:
                if last:
                    raise
                logger.warning(
                    "management API at %s did not answer (%s); trying the next", self._bases[index], error
                )
                continue
            if response.status_code in self.SKIP_STATUSES and not last:
                response.close()
                continue
            self._preferred = index
            return response
        raise AssertionError("unreachable: the last base URL returns or raises")

    def close(self) -> None:
        self._inner.close()

    def _repointed(self, url: httpx.URL, base: httpx.URL) -> httpx.URL:
        """`url` sent to `base`'s scheme, host and port, under `base`'s path prefix if it has one.

        The client builds every request against the first base URL, so its prefix comes off first.
        """
        relative = url.raw_path
        for known in self._bases:
            prefix = known.raw_path.rstrip(b"/")
            if prefix and relative.startswith(prefix + b"/"):
                relative = relative[len(prefix) :]
                break
        return url.copy_with(
            scheme=base.scheme, host=base.host, port=base.port, raw_path=base.raw_path.rstrip(b"/") + relative
        )


def management_client(settings: Settings) -> httpx.Client:
    """An httpx client for RabbitMQ's management API that fails over between the listed nodes."""
    bases = settings.rabbitmq_management_urls
    return httpx.Client(
        base_url=bases[0],
        transport=FailoverTransport(bases),
        auth=(settings.rabbitmq_management_user, settings.rabbitmq_management_password.get_secret_value()),
        timeout=MANAGEMENT_TIMEOUT_S,
    )
