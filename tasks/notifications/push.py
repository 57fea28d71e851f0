"""The push gateway as the notification handlers need it: one call, and errors that decide retries.

The gateway collapses sends that share a `dedupe_key` into one notification, so the handler
passes the message's idempotency key and a retry (ours or the broker's) never buzzes a phone
twice. That is why a couple of quick in-handler retries are safe.

    PushUnavailable(TransientError)  5xx, 429, timeout or connection error after the quick
                                     retries; `delay_ms` carries a Retry-After too long to wait here
    PushRejected(PermanentError)     any 4xx: the request itself is wrong, never retried

The connection, timeout, quick retries and Retry-After are `shared.http_adapter.HttpAdapter`'s.
"""

from __future__ import annotations

from shared.config import Settings
from shared.errors import PermanentError, TransientError
from shared.http_adapter import HttpAdapter, HttpResponse


class PushUnavailable(TransientError):
    """The gateway did not answer usefully; sending again with the same dedupe key is safe."""


class PushRejected(PermanentError):
    """The gateway refused the notification (auth, bad payload); retrying cannot help."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class PushClient(HttpAdapter):
    """The push gateway; one pooled connection, built at worker boot and closed at shutdown."""

    service = "push gateway"
    unavailable = PushUnavailable
    default_max_retry_wait_s = 1.0

    def send(self, *, user_id: str, title: str, body: str, dedupe_key: str) -> str:
        """Queue one notification and return the gateway's push id (the same id for a repeated key)."""
        payload = {"user_id": user_id, "title": title, "body": body, "dedupe_key": dedupe_key}
        response = self._request("push_send", "POST", "/v1/push", payload=payload)
        try:
            return str(response.json()["push_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PushUnavailable(f"push gateway answered {response.status_code} without a push_id") from exc

    def _refused(self, operation: str, response: HttpResponse) -> PermanentError:
        status = response.status_code
        return PushRejected(f"push gateway refused with {status}: {response.text[:200]}", status_code=status)


def push_from_settings(settings: Settings) -> PushClient:
    """The "push" adapter factory (`tasks.registry.ADAPTERS`), built at worker boot."""
    return PushClient(
        base_url=settings.push_url,
        api_key=settings.push_api_key.get_secret_value(),
        timeout_s=settings.push_timeout_s,
    )
