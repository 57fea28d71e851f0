"""The broker addresses of a setting, parsed once: one RabbitMQ node or the nodes of a cluster.

`CIRCULATE_AMQP_URL` and `CIRCULATE_RABBITMQ_MANAGEMENT_URL` each take one URL or several,
separated by `,` or `;` (Dramatiq's own separator), so pointing Circulate at a cluster is a
change of one value, not of every process. The nodes of one cluster share their vhosts and
users, so every AMQP URL must name the same vhost, user and password: a list that mixes them
would make a failover land somewhere else, so it is refused here with the reason, before any
process connects. The vhost is read from the parsed URLs, never from the raw setting (a raw
`a;b` once made `circulate setup` create a vhost named after the whole string).

Pure parsing: no connection is made here (`shared.broker_nodes` connects).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from shared.errors import ConfigurationError

_SEPARATORS = re.compile(r"[,;]")
AMQP_SCHEMES = frozenset({"amqp", "amqps"})
HTTP_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class AmqpNode:
    """One AMQP URL and what it names; `url` is passed to pika and aiormq as it was written."""

    url: str
    host: str
    port: int
    vhost: str
    username: str
    password: str


def split_urls(raw: str) -> list[str]:
    """The URLs of a setting: split on `,` or `;`, blanks dropped (a trailing separator is fine)."""
    return [part.strip() for part in _SEPARATORS.split(raw) if part.strip()]


def parse_amqp_urls(raw: str) -> tuple[AmqpNode, ...]:
    """Every node of the setting, or a ConfigurationError that says what is wrong and where."""
    urls = split_urls(raw)
    if not urls:
        raise ConfigurationError("CIRCULATE_AMQP_URL is empty; give one amqp:// URL or several")
    nodes = tuple(_amqp_node(url) for url in urls)
    first = nodes[0]
    for node in nodes[1:]:
        if node.vhost != first.vhost:
            raise ConfigurationError(
                f"CIRCULATE_AMQP_URL names vhost {first.vhost!r} at {first.host}:{first.port} and "
                f"{node.vhost!r} at {node.host}:{node.port}; the nodes of a cluster share one vhost"
            )
        if (node.username, node.password) != (first.username, first.password):
            raise ConfigurationError(
                f"CIRCULATE_AMQP_URL has other credentials at {node.host}:{node.port} than at "
                f"{first.host}:{first.port}; the nodes of a cluster share their users"
            )
    return nodes


def parse_http_urls(raw: str, *, setting: str) -> tuple[str, ...]:
    """Base URLs of an HTTP API (the management API of each node), without a trailing slash."""
    urls = split_urls(raw)
    if not urls:
        raise ConfigurationError(f"{setting} is empty; give one http:// URL or several")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in HTTP_SCHEMES or not parts.hostname:
            raise ConfigurationError(f"{setting} has {url!r}, which is not an http:// or https:// URL")
    return tuple(url.rstrip("/") for url in urls)


def _amqp_node(url: str) -> AmqpNode:
    parts = urlsplit(url)
    if parts.scheme not in AMQP_SCHEMES or not parts.hostname:
        raise ConfigurationError(
            f"CIRCULATE_AMQP_URL has {_without_password(url)!r}, which is not an amqp:// or amqps:// URL "
            "with a host"
        )
    try:
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    except ValueError as error:
        raise ConfigurationError(
            f"CIRCULATE_AMQP_URL has a bad port in {_without_password(url)!r}"
        ) from error
    path = parts.path
    return AmqpNode(
        url=url,
        host=parts.hostname,
        port=port,
        # The AMQP URI spec: no path means the default vhost `/`; `/%2F` spells it out.
        vhost=unquote(path[1:]) if len(path) > 1 else "/",
        username=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
