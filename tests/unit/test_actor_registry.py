"""tasks/registry.py: every actor once, with a payload that names its kind and a declared queue."""

from __future__ import annotations

import importlib
from collections import Counter

import pytest

from shared.actors import ActorSpec
from shared.config import QUEUES
from shared.messages import Payload
from tasks.registry import ACTORS, PAYLOAD_TYPES

DOMAINS = ("fulfilment", "shipping", "ledger", "notifications")


def test_every_actor_has_a_payload_type_with_a_kind_and_a_queue():
    for spec in ACTORS:
        assert issubclass(spec.payload_type, Payload), spec
        assert isinstance(spec.payload_type.kind, str) and spec.payload_type.kind, spec.payload_type
        assert isinstance(spec.payload_type.queue, str) and spec.payload_type.queue, spec.payload_type


def test_actor_kinds_are_unique():
    duplicates = [kind for kind, count in Counter(spec.name for spec in ACTORS).items() if count > 1]
    assert duplicates == []
    assert len(PAYLOAD_TYPES) == len(ACTORS)


def test_every_payload_queue_is_a_declared_queue():
    undeclared = {spec.name: spec.queue for spec in ACTORS if spec.queue not in QUEUES}
    assert undeclared == {}


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_actor_a_domain_defines_is_in_the_registry(domain):
    module = importlib.import_module(f"tasks.{domain}.actors")
    defined = {id(value) for value in vars(module).values() if isinstance(value, ActorSpec)}
    assert defined, f"tasks.{domain}.actors defines no actor"
    assert defined <= {id(spec) for spec in ACTORS}
