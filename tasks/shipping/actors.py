"""Shipping's actors: one line each (queue `shipping`, from the payloads)."""

from __future__ import annotations

from typing import Any

from shared.actors import ActorSpec, handler_actor
from tasks.shipping import handlers
from tasks.shipping.messages import BuyLabel, VoidLabel

buy_label = handler_actor(handlers.buy_label, BuyLabel)
void_label = handler_actor(handlers.void_label, VoidLabel)

ACTORS: list[ActorSpec[Any]] = [buy_label, void_label]
