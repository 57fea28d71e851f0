"""Every module that defines a table, so `Base.metadata` describes the whole database.

Alembic autogenerate compares the database with this metadata: a table whose module is not
imported here would look dropped, and its revision would drop it. The list lives in `workers`
because models live in all three layers (`shared`, each `tasks` domain, the API and the console)
and only `workers` may import all of them (`workers -> tasks -> shared`).

`tests/unit/test_models_registry.py` fails when a module that subclasses `Base` is missing here,
so a new or moved model module is caught before it reaches a revision.
"""

from __future__ import annotations

from types import ModuleType

from sqlalchemy import MetaData

from shared import idempotency, outbox
from shared.db import Base
from shared.dead_letters import models as dead_letters
from tasks.fulfilment import models as fulfilment
from tasks.ledger import models as ledger
from tasks.notifications import models as notifications
from tasks.shipping import models as shipping
from workers.api import accepted, tokens
from workers.api import idempotency as api_idempotency
from workers.dlq.console import login_throttle, sessions, users

MODEL_MODULES: tuple[ModuleType, ...] = (
    idempotency,
    outbox,
    dead_letters,
    fulfilment,
    ledger,
    notifications,
    shipping,
    accepted,
    api_idempotency,
    tokens,
    login_throttle,
    sessions,
    users,
)


def metadata() -> MetaData:
    """The metadata of every table (complete once this module is imported)."""
    return Base.metadata
