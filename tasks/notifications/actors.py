"""Notifications' actors: one line each (queue `notifications`, from the payloads)."""

from __future__ import annotations

from typing import Any

from shared.actors import ActorSpec, handler_actor
from tasks.notifications import handlers
from tasks.notifications.messages import DeliverNotification, SendNotification

send = handler_actor(handlers.send, SendNotification)
deliver = handler_actor(handlers.deliver, DeliverNotification)

ACTORS: list[ActorSpec[Any]] = [send, deliver]
