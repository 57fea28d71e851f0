"""Alembic environment: migrates, or compares with the models, the database it is given.

`shared.migrate` passes the connection (and, for autogenerate, the models' metadata) in
`config.attributes`. Plain `alembic` run from the repository passes neither: the database then
comes from Settings (`CIRCULATE_DATABASE_URL`) and the metadata from `target_metadata` in
`[tool.alembic]`, a "module:function" name loaded here rather than imported, because the model
modules live in every layer and `shared` imports none above it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from alembic import context
from sqlalchemy import Connection, MetaData, create_engine

from shared.config import Settings

config = context.config


def _named_metadata() -> MetaData | None:
    """The metadata `[tool.alembic]` names, for plain `alembic` (None outside a source checkout)."""
    name = config.get_alembic_option("target_metadata")
    if not name:
        return None  # enough to upgrade; autogenerate then says it has no metadata
    module, _, function = name.partition(":")
    build: Callable[[], MetaData] = getattr(importlib.import_module(module), function)
    return build()


def _run(connection: Connection, target_metadata: MetaData | None) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        transaction_per_migration=True,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if "connection" in config.attributes:
    # From shared.migrate: upgrades import no model; autogenerate and check pass the metadata.
    _run(config.attributes["connection"], config.attributes.get("target_metadata"))
else:
    engine = create_engine(Settings().database_url)
    try:
        with engine.begin() as connection:
            _run(connection, _named_metadata())
    finally:
        engine.dispose()
