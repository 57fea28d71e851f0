"""Every actor and adapter factory of every domain, for the processes that bind them."""

from __future__ import annotations

from typing import Any

from shared.actors import ActorSpec
from shared.runtime import AdapterFactory
from tasks.fulfilment import actors as fulfilment

ACTORS: list[ActorSpec[Any]] = [*fulfilment.ACTORS]

ADAPTERS: dict[str, AdapterFactory] = {}

PAYLOAD_TYPES = {spec.name: spec.payload_type for spec in ACTORS}
