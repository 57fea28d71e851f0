"""Notifications' actors: one line each (queue `notifications`, from the payloads)."""

from __future__ import annotations

from shared.actors import handler_actor
from tasks.notifications import handlers
from tasks.notifications.messages import DeliverNotification, SendNotification

send = handler_actor(handlers.send, SendNotification)
deliver = handler_actor(handlers.deliver, DeliverNotification)

ACTORS = [send, deliver]
