"""Notifications' wire contract: ask for a notification, then deliver it on one channel.

`SendNotification` is what other domains enqueue; the send handler fans it out into one
`DeliverNotification` per channel, so an SMTP outage retries the email alone and never buzzes the
phone a second time. A message that names an unknown template, a role the template is not written
for, or lacks a context value the template needs fails validation: it is dead-lettered (or
refused with a 4xx by the API) once, instead of failing on every channel.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.messages import Payload
from shared.personal import Personal
from shared.values import Email, PrintableLine
from tasks.notifications.templates import AUDIENCES, REQUIRED_CONTEXT

Role = Literal["buyer", "seller"]
Channel = Literal["email", "push"]
CHANNELS: tuple[Channel, ...] = ("email", "push")

#: Context values the handlers fill in from the message itself; producers need not send them.
DERIVED_CONTEXT = frozenset({"order_id", "recipient_name", "recipient_role"})


class Recipient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: PrintableLine = Field(min_length=1, max_length=100)
    email: Personal[Email]
    name: Personal[PrintableLine] = Field(min_length=1, max_length=200)


class NotificationRequest(Payload):
    """What both commands carry: which template, about which order, for whom, with what values."""

    queue: ClassVar[str] = "notifications"

    order_id: UUID
    template: str
    recipient_role: Role
    recipient: Recipient
    context: dict[str, str | int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _renderable(self) -> NotificationRequest:
        required = REQUIRED_CONTEXT.get(self.template)
        if required is None:
            raise ValueError(f"unknown template {self.template!r}; known: {sorted(REQUIRED_CONTEXT)}")
        if self.recipient_role not in AUDIENCES[self.template]:
            raise ValueError(f"template {self.template!r} is not written for a {self.recipient_role}")
        missing = sorted(required - DERIVED_CONTEXT - self.context.keys())
        if missing:
            raise ValueError(f"template {self.template!r} needs context {missing}")
        return self

    def template_context(self) -> dict[str, str | int]:
        """The values the template sees; those taken from the message win over the context's."""
        derived = {
            "order_id": str(self.order_id),
            "recipient_name": self.recipient.name,
            "recipient_role": self.recipient_role,
        }
        return {**self.context, **derived}


class SendNotification(NotificationRequest):
    """Tell one party of an order about something, on every channel they have not opted out of."""

    kind: ClassVar[str] = "notifications.send"


class DeliverNotification(NotificationRequest):
    """Deliver one notification on one channel; `dedupe_key` names it across every retry and resend."""

    kind: ClassVar[str] = "notifications.deliver"

    channel: Channel
    dedupe_key: str = Field(min_length=1, max_length=200)
