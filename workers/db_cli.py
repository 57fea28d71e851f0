"""`circulate db`: the schema's one path, from a changed model to a reviewed, applied revision.

Alembic with `[tool.alembic]` of pyproject.toml (date-prefixed files in shared/migrations/versions)
and the metadata of `workers.models_registry`, on the database Settings name. The history is
linear: every revision follows the single head, so no command needs `--head`.
docs/development/schema-changes.md walks through a change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from alembic import command
from alembic.config import Config
from alembic.util import CommandError

from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors

EPILOG = """\b
Examples:
  circulate db upgrade
  circulate db revision --autogenerate -m "add labels.weight_grams"
  circulate db check
"""


@contextmanager
def _alembic(cli: CliContext | None, *, metadata: bool = False) -> Iterator[Config]:
    """A config for one command; given the CLI context, connected to the configured database."""
    from shared.migrate import alembic_config, connected_config

    try:
        if cli is None:
            yield alembic_config()
            return
        attributes: dict[str, Any] = {}
        if metadata:
            from workers.models_registry import metadata as models_metadata

            attributes["target_metadata"] = models_metadata()
        with connected_config(cli.settings, **attributes) as config:
            yield config
    except CommandError as error:
        raise click.ClickException(str(error)) from error


@click.group(epilog=EPILOG)
def db() -> None:
    """Schema migrations: create, apply and check revisions."""


@db.command(short_help="Write a new revision after the head.")
@click.option("-m", "--message", required=True, help="What the revision changes (becomes its file name).")
@click.option(
    "--autogenerate",
    is_flag=True,
    help="Fill it with the difference between the models and the database (which must be at head).",
)
@reports_configuration_errors
@pass_cli
def revision(cli: CliContext, message: str, autogenerate: bool) -> None:
    """Write shared/migrations/versions/<date>_<slug>.py; review it before committing."""
    with _alembic(cli if autogenerate else None, metadata=autogenerate) as config:
        command.revision(config, message=message, autogenerate=autogenerate)


@db.command(short_help="Apply revisions up to REVISION (default: the head).")
@click.argument("revision", default="heads")
@reports_configuration_errors
@pass_cli
def upgrade(cli: CliContext, revision: str) -> None:
    """Upgrade the configured database to REVISION (`circulate migrate` upgrades to the head)."""
    _run(cli, command.upgrade, revision)
    click.echo(f"database upgraded to {revision}")


@db.command(short_help="Show the database's revision.")
@reports_configuration_errors
@pass_cli
def current(cli: CliContext) -> None:
    """Print the revision the configured database is at."""
    _run(cli, command.current, verbose=False)


@db.command(short_help="Show the head revision of the scripts.")
@reports_configuration_errors
def heads() -> None:
    """Print the head revision (one, as the history is linear); needs no database."""
    with _alembic(None) as config:
        command.heads(config)


@db.command(short_help="Show the revisions, newest first.")
@reports_configuration_errors
def history() -> None:
    """Print every revision with the one it follows; needs no database."""
    with _alembic(None) as config:
        command.history(config)


@db.command(short_help="Fail if the models differ from the migrated database.")
@reports_configuration_errors
@pass_cli
def check(cli: CliContext) -> None:
    """Exit non-zero when autogenerate would write something (the database must be at head)."""
    with _alembic(cli, metadata=True) as config:
        command.check(config)


def _run(cli: CliContext, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    with _alembic(cli) as config:
        operation(config, *args, **kwargs)
