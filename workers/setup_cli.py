"""`circulate setup` and `circulate migrate`: make the database and the broker ready to run on.

`setup` is idempotent and safe to run before every deploy: it creates only what is missing.
`migrate` is the schema half alone; `circulate db` has the rest of the schema's commands.
"""

from __future__ import annotations

import click

from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors


@click.command()
@reports_configuration_errors
@pass_cli
def migrate(cli: CliContext) -> None:
    """Upgrade the database schema to the latest revision."""
    from shared.migrate import migrate as run_migrations

    run_migrations(cli.settings)
    click.echo("database migrated")


@click.command()
@reports_configuration_errors
@pass_cli
def setup(cli: CliContext) -> None:
    """Create the database if missing, migrate it, create the vhost and declare every queue."""
    from shared.migrate import create_database_if_missing
    from shared.migrate import migrate as run_migrations
    from shared.topology import declare_queues, ensure_vhost, replace_stale_delay_queues

    settings = cli.settings
    created = create_database_if_missing(settings)
    run_migrations(settings)
    ensure_vhost(settings)
    queues = declare_queues(settings)
    replaced = replace_stale_delay_queues(settings, cli.sessions)
    click.echo(f"database {'created and ' if created else ''}migrated")
    click.echo(f"vhost {settings.amqp_vhost!r}: declared {', '.join(queues)}")
    for name, moved in replaced.items():
        click.echo(
            f"replaced {name} (declared with a delivery limit); {moved} message(s) moved to the schedule"
        )
