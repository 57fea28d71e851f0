"""Database creation and Alembic migrations, for `circulate migrate`, `circulate setup` and tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.db import connect_options, database_name

MIGRATIONS = Path(__file__).parent / "migrations"
PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def create_database_if_missing(settings: Settings) -> bool:
    """Create the configured database through the server's `postgres` database; True if created."""
    url = make_url(settings.database_url)
    name = database_name(settings)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def alembic_config() -> Config:
    """`[tool.alembic]` of pyproject.toml in a source checkout; an installed package has only its scripts."""
    # stdout as it is now (Alembic's default is bound at import), so click can capture what it prints.
    config = Config(toml_file=PYPROJECT if PYPROJECT.exists() else None, stdout=sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@contextmanager
def connected_config(settings: Settings, **attributes: Any) -> Iterator[Config]:
    """An Alembic config whose env.py uses one transaction on the configured database.

    `attributes` reach env.py too (`target_metadata` for autogenerate).
    """
    engine = create_engine(settings.database_url, connect_args=connect_options(settings))
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes.update(attributes, connection=connection)
            yield config
    finally:
        engine.dispose()


def migrate(settings: Settings, revision: str = "heads") -> None:
    """Upgrade the database to `revision`; by default to the head (every head, were there several)."""
    with connected_config(settings) as config:
        command.upgrade(config, revision)
