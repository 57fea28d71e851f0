"""`circulate ledger ...`: operator commands for the commission ledger.

`trial-balance` exits 1 when the journal is unsound, so cron or CI can run it as a check and alert on
the exit code alone; the report itself says which currency or transaction is at fault.
"""

from __future__ import annotations

import json

import click
from sqlalchemy.orm import Session

from tasks.ledger.reports import as_json, render_text, trial_balance_report
from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors


@click.group()
def ledger() -> None:
    """The commission ledger: balances and invariant checks."""


@ledger.command("trial-balance", short_help="Balances per account and currency; exit 1 if unsound.")
@click.option("--json", "json_output", is_flag=True, help="Print the report as JSON (minor units).")
@reports_configuration_errors
@pass_cli
@click.pass_context
def trial_balance(ctx: click.Context, cli: CliContext, json_output: bool) -> None:
    """Print every account's balance per currency; exit 1 if a currency does not sum to zero or an
    invariant is violated."""
    # One read-only snapshot: the balances and the checks must describe the same journal.
    snapshot = cli.engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with Session(snapshot) as session:
        report = trial_balance_report(session)
    click.echo(json.dumps(as_json(report), indent=2) if json_output else render_text(report))
    if not report.ok:
        ctx.exit(1)
