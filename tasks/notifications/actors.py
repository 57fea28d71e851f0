"""Notifications' actors: one line each (queue `notifications`, from the payloads)."""

from __future__ import annotations

from typing import Any

from shared.actors import ActorSpec, handler_actor
from tasks.notifications import handlers
from tasks.notifications.messages import DeliverNotification, SendNotification

# Notifications yield to order work held by the same worker: a label matters more than an email.
send = handler_actor(handlers.send, SendNotification, priority=20)
deliver = handler_actor(handlers.deliver, DeliverNotification, priority=20)

ACTORS: list[ActorSpec[Any]] = [send, deliver]
