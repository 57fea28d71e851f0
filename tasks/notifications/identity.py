"""Stable identities for notifications, so a resend is recognisable as the same notification.

A notification is sent outside any database transaction, so a worker that dies between the SMTP
250 and its commit sends it again on redelivery. Deriving the email's Message-ID from the
dedupe key gives that second copy the same Message-ID as the first, which is what receivers and
mail clients use to drop duplicates. Record the attempt under the same key.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

DEFAULT_DOMAIN = "notifications.circulate.test"

_SEPARATOR = ":"
_FORBIDDEN_IN_DOMAIN = frozenset("<>@ \t\r\n")


def dedupe_key_for(order_id: UUID | str, template: str, recipient_role: str, channel: str) -> str:
    """The one key for "this template, about this order, to this party, by this channel".

    Parts may not contain ":" so that two different tuples can never produce the same key.
    """
    parts = (str(order_id), template, recipient_role, channel)
    for part in parts:
        if not part or _SEPARATOR in part or part != part.strip():
            raise ValueError(f"dedupe key parts must be non-empty, trimmed and free of ':', got {part!r}")
    return _SEPARATOR.join(("notification", *parts))


def message_id_for(dedupe_key: str, domain: str = DEFAULT_DOMAIN) -> str:
    """An RFC 5322 Message-ID that is the same for every send of `dedupe_key` and for nothing else.

    The key is hashed rather than embedded so order ids and roles do not leak into mail headers.
    """
    if not domain or _FORBIDDEN_IN_DOMAIN.intersection(domain):
        raise ValueError(f"not a usable Message-ID domain: {domain!r}")
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"
