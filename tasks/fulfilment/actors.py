"""Fulfilment's actors: one line each."""

from __future__ import annotations

from shared.actors import handler_actor
from tasks.fulfilment import handlers
from tasks.fulfilment.messages import PlaceOrder

place_order = handler_actor(handlers.place_order, PlaceOrder)

ACTORS = [place_order]
