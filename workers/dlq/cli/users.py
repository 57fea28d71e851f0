"""`circulate dlq user ...`: console users (a viewer reads, an operator also re-drives and purges)."""

from __future__ import annotations

import click

from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors
from workers.dlq.actions import audited
from workers.dlq.cli.support import TEXT, cli_operator, operator_option, print_table
from workers.dlq.console import users


@click.group(short_help="Console users and their roles.")
def user() -> None:
    """Console users and their roles."""


@user.command("add", short_help="Create a console user or change one's role.")
@click.argument("name", type=TEXT)
@click.option(
    "--role",
    type=click.Choice(users.ROLES),
    default="viewer",
    show_default=True,
    help="viewer reads; operator also acts (re-drive, purge, edit).",
)
@click.password_option(help="Asked for when not given (never pass it on a shared machine's command line).")
@operator_option
@reports_configuration_errors
@pass_cli
def add(cli: CliContext, name: str, role: str, password: str, operator: str) -> None:
    """Create a console user, or set an existing user's password and role."""
    try:
        who, where = cli_operator(operator), {"user": name, "role": role}
        with audited(cli.sessions, who, "user-add", where) as audit, cli.sessions.begin() as session:
            users.add_user(session, name, password, role)
            audit.done(1, f"{name} is a console {role}", session=session)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{name} is a console {role}")


@user.command("remove", short_help="Delete a console user.")
@click.argument("name", type=TEXT)
@operator_option
@reports_configuration_errors
@pass_cli
def remove(cli: CliContext, name: str, operator: str) -> None:
    """Delete a console user; their open sessions stop working at the next request."""
    who, where = cli_operator(operator), {"user": name}
    with audited(cli.sessions, who, "user-remove", where) as audit, cli.sessions.begin() as session:
        removed = users.remove_user(session, name)
        audit.done(int(removed), "removed" if removed else "no such user", session=session)
    click.echo(f"removed {name}" if removed else f"no console user {name!r}")


@user.command("list", short_help="Every console user and their role.")
@reports_configuration_errors
@pass_cli
def list_users(cli: CliContext) -> None:
    """Every console user and their role."""
    with cli.sessions() as session:
        print_table(("name", "role"), [(u.name, u.role) for u in users.list_users(session)])
