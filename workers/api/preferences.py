"""Notification preferences: a user's opt-out per channel, set by the services that own accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from tasks.notifications.handlers import opted_out_channels, set_preference
from tasks.notifications.messages import CHANNELS, Channel
from workers.api.deps import DbSession, Enqueuer, Reader

router = APIRouter(prefix="/v1/users", tags=["notification preferences"])

#: Printable text without `/` (which would end the path segment): the pattern publishes, in the
#: OpenAPI document, what `workers.api.printable` enforces for every path.
USER_ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f/]+$"
UserId = Annotated[str, Path(min_length=1, max_length=100, pattern=USER_ID_PATTERN)]


class Preference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opted_out: StrictBool  # `0` or `"no"` is a client bug, not a choice


class ChannelPreference(BaseModel):
    user_id: str
    channel: Channel
    opted_out: bool


class UserPreferences(BaseModel):
    user_id: str
    channels: dict[Channel, bool] = Field(description="Every channel, true where the user opted out")


@router.put("/{user_id}/notification-preferences/{channel}", response_model=ChannelPreference)
def put_preference(
    user_id: UserId, channel: Channel, body: Preference, session: DbSession, service: Enqueuer
) -> ChannelPreference:
    """Opt a user out of (or back into) one channel; it applies to every later delivery."""
    set_preference(session, user_id, channel, body.opted_out)
    session.commit()
    return ChannelPreference(user_id=user_id, channel=channel, opted_out=body.opted_out)


@router.get("/{user_id}/notification-preferences", response_model=UserPreferences)
def get_preferences(user_id: UserId, session: DbSession, service: Reader) -> UserPreferences:
    """Every channel with whether the user opted out of it (nobody is, until they say so)."""
    refused = opted_out_channels(session, user_id)
    return UserPreferences(user_id=user_id, channels={channel: channel in refused for channel in CHANNELS})
