"""`circulate ledger ...`: operator commands for the commission ledger.

`trial-balance` exits 1 when the journal is unsound, so cron or CI can run it as a check and alert on
the exit code alone; the report itself says which currency or transaction is at fault.
"""

from __future__ import annotations

import json

import click
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.db import build_engine
from tasks.ledger.reports import as_json, render_text, trial_balance_report


@click.group()
def ledger() -> None:
    """The commission ledger: balances and invariant checks."""


@ledger.command("trial-balance")
@click.option("--json", "json_output", is_flag=True, help="Print the report as JSON (minor units).")
@click.pass_context
def trial_balance(ctx: click.Context, json_output: bool) -> None:
    """Print every account's balance per currency; exit 1 if a currency does not sum to zero or an
    invariant is violated."""
    engine = build_engine(Settings(), pool_size=1)
    # One read-only snapshot: the balances and the checks must describe the same journal.
    snapshot = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    try:
        with Session(snapshot) as session:
            report = trial_balance_report(session)
    finally:
        engine.dispose()
    click.echo(json.dumps(as_json(report), indent=2) if json_output else render_text(report))
    if not report.ok:
        ctx.exit(1)
