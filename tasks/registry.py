"""Every actor and adapter factory of every domain, for the processes that bind them."""

from __future__ import annotations

from typing import Any

from shared.actors import ActorSpec
from shared.fees import fee_schedule_from_settings
from shared.runtime import AdapterFactory
from tasks.fulfilment import actors as fulfilment
from tasks.ledger import actors as ledger
from tasks.notifications import actors as notifications
from tasks.notifications.push import push_from_settings
from tasks.notifications.smtp import mailer_from_settings
from tasks.shipping import actors as shipping
from tasks.shipping.carrier import carrier_from_settings

ACTORS: list[ActorSpec[Any]] = [
    *fulfilment.ACTORS,
    *shipping.ACTORS,
    *notifications.ACTORS,
    *ledger.ACTORS,
]

ADAPTERS: dict[str, AdapterFactory] = {
    "carrier": carrier_from_settings,
    "fees": fee_schedule_from_settings,
    "mailer": mailer_from_settings,
    "push": push_from_settings,
}

PAYLOAD_TYPES = {spec.name: spec.payload_type for spec in ACTORS}
