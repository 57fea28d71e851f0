"""`CliContext`: the settings and the database of one `circulate` invocation, built once, on first use.

The root group puts one on click's context object; every command takes it with `@pass_cli`
instead of building its own `Settings()` or engine. Both are made on first use, so `--help` and
commands that never touch Postgres (`db heads`, `smtp-sink`) neither read a database URL nor open
a pool, and the engine is disposed when the invocation ends.

A command group invoked on its own (`CliRunner().invoke(dlq, ...)` in tests) gets a context of its
own the same way, so commands behave alike whichever group they were reached from.

    @click.command()
    @reports_configuration_errors
    @pass_cli
    def stats(cli: CliContext) -> None:
        with cli.sessions() as session: ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from shared.config import Settings

P = ParamSpec("P")
R = TypeVar("R")

#: Connections of the CLI's one pool: a command holds at most one session plus the audit log's.
POOL_SIZE = 2


class CliContext:
    """Settings read from the `CIRCULATE_*` environment and a pooled engine, each made once."""

    def __init__(self, *, settings: Settings | None = None) -> None:
        self._settings = settings
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @property
    def settings(self) -> Settings:
        """Read on first use; a refused value raises here, inside the command (one-line error)."""
        if self._settings is None:
            from shared.config import Settings

            self._settings = Settings()
        return self._settings

    @property
    def engine(self) -> Engine:
        """The invocation's one engine (connects on first query, not here)."""
        if self._engine is None:
            from shared.db import build_engine

            self._engine = build_engine(self.settings, pool_size=POOL_SIZE)
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            from shared.db import build_sessionmaker

            self._sessions = build_sessionmaker(self.engine)
        return self._sessions

    def close(self) -> None:
        """Dispose of the engine, if one was made (click calls this when the invocation ends)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessions = None


def cli_context(ctx: click.Context) -> CliContext:
    """The invocation's CliContext: the root group's, or a new one on the outermost context."""
    found = ctx.find_object(CliContext)
    if found is None:
        found = CliContext()
        root = ctx.find_root()
        root.obj = found
        root.call_on_close(found.close)
    return found


def pass_cli(function: Callable[Concatenate[CliContext, P], R]) -> Callable[P, R]:
    """Give the command the invocation's CliContext as its first argument."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return function(cli_context(click.get_current_context()), *args, **kwargs)

    return wrapper
