"""`circulate token`: the bearer tokens of the services that call the HTTP API.

A token is printed once, when it is created; only its hash is stored (`workers.api.tokens`).
"""

from __future__ import annotations

import click

from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors

EPILOG = """\b
Examples:
  circulate token create checkout --scope enqueue --scope read
  circulate token revoke checkout
"""


@click.group(epilog=EPILOG)
def token() -> None:
    """Bearer tokens of the services that call the API."""


@token.command("create", short_help="Create a token for SERVICE and print it once.")
@click.argument("service")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["enqueue", "read"]),
    help="What the token may do (repeat for both): enqueue = place/cancel orders, set preferences; "
    "read = read orders and preferences.",
)
@reports_configuration_errors
@pass_cli
def token_create(cli: CliContext, service: str, scopes: tuple[str, ...]) -> None:
    """Create a token for SERVICE with the given scopes and print it once; only its hash is stored."""
    from workers.api.tokens import create_token

    with cli.sessions.begin() as session:
        value = create_token(session, service, scopes=scopes)
    click.echo(value)


@token.command("revoke", short_help="Revoke every token of SERVICE.")
@click.argument("service")
@reports_configuration_errors
@pass_cli
def token_revoke(cli: CliContext, service: str) -> None:
    """Revoke every token of SERVICE."""
    from workers.api.tokens import revoke_tokens

    with cli.sessions.begin() as session:
        count = revoke_tokens(session, service)
    click.echo(f"revoked {count} token(s) of {service}")
