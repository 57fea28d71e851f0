"""A cluster's nodes in one setting: parsed once, checked, and tried in turn by every client."""

from __future__ import annotations

import random
import re

import httpx
import pytest

from shared.broker_nodes import FailoverTransport, ReconnectBackoff, pika_parameters, rotated
from shared.config import Settings
from shared.errors import ConfigurationError

NODE_A = "amqp://circ:secret@10.0.0.1:5672/circulate"
NODE_B = "amqp://circ:secret@10.0.0.2:5672/circulate"
NODE_C = "amqp://circ:secret@10.0.0.3:5673/circulate"


@pytest.mark.parametrize("separator", [";", ",", " ; ", ",\n"])
def test_the_vhost_of_a_list_of_urls_is_the_vhost_each_url_names(separator: str) -> None:
    settings = Settings(amqp_url=separator.join([NODE_A, NODE_B, NODE_C]))
    assert settings.amqp_vhost == "circulate"
    assert settings.amqp_urls == [NODE_A, NODE_B, NODE_C]
    assert [(node.host, node.port) for node in settings.amqp_nodes] == [
        ("10.0.0.1", 5672),
        ("10.0.0.2", 5672),
        ("10.0.0.3", 5673),
    ]


def test_one_url_is_a_cluster_of_one() -> None:
    settings = Settings(amqp_url="amqp://guest:guest@127.0.0.1:5672/%2F")
    assert settings.amqp_urls == ["amqp://guest:guest@127.0.0.1:5672/%2F"]
    assert settings.amqp_vhost == "/"
    assert Settings(amqp_url="amqp://guest:guest@127.0.0.1").amqp_vhost == "/"


def test_nodes_naming_different_vhosts_are_refused_with_both_names() -> None:
    with pytest.raises(
        ConfigurationError, match=re.escape("'circulate' at 10.0.0.1:5672 and 'other' at 10.0.0.2")
    ):
        Settings(amqp_url=f"{NODE_A};amqp://circ:secret@10.0.0.2:5672/other")


def test_nodes_with_different_credentials_are_refused_without_showing_the_password() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("other credentials at 10.0.0.2:5672")) as refused:
        Settings(amqp_url=f"{NODE_A},amqp://circ:hunter2@10.0.0.2:5672/circulate")
    assert "hunter2" not in str(refused.value) and "secret" not in str(refused.value)


@pytest.mark.parametrize("raw", ["", " ; ", "http://10.0.0.1:15672/circulate", f"{NODE_A};10.0.0.2:5672"])
def test_a_setting_that_names_no_amqp_node_is_refused(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="CIRCULATE_AMQP_URL"):
        Settings(amqp_url=raw)


def test_management_urls_are_a_list_too() -> None:
    settings = Settings(rabbitmq_management_url="http://10.0.0.1:15672/, http://10.0.0.2:15672")
    assert settings.rabbitmq_management_urls == ("http://10.0.0.1:15672", "http://10.0.0.2:15672")
    with pytest.raises(ConfigurationError, match="CIRCULATE_RABBITMQ_MANAGEMENT_URL"):
        Settings(rabbitmq_management_url="amqp://10.0.0.1:5672")


def test_rotation_starts_anywhere_but_keeps_the_order_and_every_node() -> None:
    nodes = ["a", "b", "c"]
    seen = {tuple(rotated(nodes, rng=random.Random(seed))) for seed in range(50)}
    assert seen == {("a", "b", "c"), ("b", "c", "a"), ("c", "a", "b")}


def test_pika_gives_up_on_a_dead_node_sooner_unless_the_url_says_otherwise() -> None:
    parameters = pika_parameters([NODE_A, NODE_B + "?socket_timeout=30"])
    by_host = {p.host: p for p in parameters}
    assert by_host["10.0.0.1"].socket_timeout == 3.0
    assert by_host["10.0.0.1"].stack_timeout == 6.0
    assert by_host["10.0.0.2"].socket_timeout == 30.0
    assert {p.virtual_host for p in parameters} == {"circulate"}


def test_reconnect_waits_are_jittered_and_capped() -> None:
    backoff = ReconnectBackoff(first_s=0.2, cap_s=5.0, rng=random.Random(7))
    waits = [backoff.next_delay() for _ in range(40)]
    assert all(0 <= wait <= 5.0 for wait in waits)
    assert all(wait <= 0.2 * 2**n for n, wait in enumerate(waits))
    assert len({round(wait, 6) for wait in waits[10:]}) > 20  # jittered, not in step
    assert max(waits[10:]) > 2.5  # and it does grow to the cap
    backoff.reset()
    assert backoff.next_delay() <= 0.2


class _Nodes(httpx.BaseTransport):
    """Stands in for three management API nodes: `down` refuse connections, `booting` answer 503."""

    def __init__(self, *, down: set[str], booting: frozenset[str] = frozenset()) -> None:
        self.down, self.booting, self.asked = down, booting, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = f"{request.url.host}:{request.url.port}"
        self.asked.append(f"{host}{request.url.path}")
        assert request.headers["Host"] == host
        if host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if host in self.booting:
            return httpx.Response(503, request=request)
        return httpx.Response(200, json={"node": host}, request=request)


def test_the_management_api_is_asked_of_the_next_node_when_one_is_down() -> None:
    nodes = _Nodes(down={"10.0.0.1:15672"}, booting=frozenset({"10.0.0.2:15672"}))
    bases = ["http://10.0.0.1:15672", "http://10.0.0.2:15672", "http://10.0.0.3:15672/mq"]
    with httpx.Client(base_url=bases[0], transport=FailoverTransport(bases, inner=nodes)) as client:
        assert client.get("/api/queues/circulate").json() == {"node": "10.0.0.3:15672"}
        # The node that answered is asked first next time
        assert client.get("/api/overview").json() == {"node": "10.0.0.3:15672"}
    assert nodes.asked == [
        "10.0.0.1:15672/api/queues/circulate",
        "10.0.0.2:15672/api/queues/circulate",
        "10.0.0.3:15672/mq/api/queues/circulate",
        "10.0.0.3:15672/mq/api/overview",
    ]


def test_when_every_management_node_is_down_the_last_error_is_raised() -> None:
    nodes = _Nodes(down={"10.0.0.1:15672", "10.0.0.2:15672"})
    bases = ["http://10.0.0.1:15672", "http://10.0.0.2:15672"]
    with (
        httpx.Client(base_url=bases[0], transport=FailoverTransport(bases, inner=nodes)) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get("/api/overview")
    assert len(nodes.asked) == 2
