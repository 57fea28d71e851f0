"""`circulate dlq user ...`: console users (a viewer reads, an operator also re-drives and purges)."""

from __future__ import annotations

import click

from workers.dlq.actions import audited
from workers.dlq.cli.support import TEXT, DlqContext, cli_operator, operator_option, pass_dlq, print_table
from workers.dlq.console import users


@click.group()
def user() -> None:
    """Console users and their roles."""


@user.command("add")
@click.argument("name", type=TEXT)
@click.option("--role", type=click.Choice(users.ROLES), default="viewer", show_default=True)
@click.password_option(help="Asked for when not given (never pass it on a shared machine's command line).")
@operator_option
@pass_dlq
def add(dlq: DlqContext, name: str, role: str, password: str, operator: str) -> None:
    """Create a console user, or set an existing user's password and role."""
    try:
        who, where = cli_operator(operator), {"user": name, "role": role}
        with audited(dlq.sessions, who, "user-add", where) as audit, dlq.sessions.begin() as session:
            users.add_user(session, name, password, role)
            audit.done(1, f"{name} is a console {role}", session=session)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{name} is a console {role}")


@user.command("remove")
@click.argument("name", type=TEXT)
@operator_option
@pass_dlq
def remove(dlq: DlqContext, name: str, operator: str) -> None:
    """Delete a console user; their open sessions stop working at the next request."""
    who, where = cli_operator(operator), {"user": name}
    with audited(dlq.sessions, who, "user-remove", where) as audit, dlq.sessions.begin() as session:
        removed = users.remove_user(session, name)
        audit.done(int(removed), "removed" if removed else "no such user", session=session)
    click.echo(f"removed {name}" if removed else f"no console user {name!r}")


@user.command("list")
@pass_dlq
def list_users(dlq: DlqContext) -> None:
    """Every console user and their role."""
    with dlq.sessions() as session:
        print_table(("name", "role"), [(u.name, u.role) for u in users.list_users(session)])
