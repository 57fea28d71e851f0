"""Database creation and Alembic migrations, for `circulate migrate`, `circulate setup` and tests."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.db import database_name

MIGRATIONS = Path(__file__).parent / "migrations"


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
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(settings: Settings, revision: str = "heads") -> None:
    """Upgrade the database to `revision`; by default every head (each domain has its own branch)."""
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
