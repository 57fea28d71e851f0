"""Shipping's actors: one line each (queue `shipping`, from the payloads)."""

from __future__ import annotations

from shared.actors import handler_actor
from tasks.shipping import handlers
from tasks.shipping.messages import BuyLabel, VoidLabel

buy_label = handler_actor(handlers.buy_label, BuyLabel)
void_label = handler_actor(handlers.void_label, VoidLabel)

ACTORS = [buy_label, void_label]
