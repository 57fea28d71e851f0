"""The `circulate` command line: one entry point for every process and operator task.

Every command is one line of `COMMANDS` below, under the section of `circulate --help` it is
listed in: its name, the `module:attribute` of its click command and the summary shown in the
list. The module is imported only when the command is run or asked for its help
(`workers.cli_group`), so `circulate --help` imports no command module. To add a command:

1. write it in a module of its own, decorated with `@reports_configuration_errors` (so a bad
   setting is one line) and, if it needs settings or the database, `@pass_cli`
   (`workers.cli_context.CliContext`); give every option a `help=`;
2. add its line here, in the section it belongs to (a new section is a new key), e.g. under
   "Development": `"bench": ("workers.harness.bench.cli:bench", "Measure throughput ..."),`

`tests/unit/test_cli_help.py` loads every line and fails on a missing help text or decorator;
the docs' CLI reference (mkdocs-click) renders every command from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from workers.cli_errors import reports_configuration_errors
from workers.cli_group import LazyGroup

if TYPE_CHECKING:
    from workers.cli_context import CliContext

#: Section of `circulate --help` -> command name -> ("module:attribute", summary shown in the list).
COMMANDS: dict[str, dict[str, tuple[str, str]]] = {
    "Processes (run until SIGTERM)": {
        "worker": ("workers.process_cli:worker", "Run Dramatiq workers on the queues."),
        "relay": ("workers.process_cli:relay", "Publish outbox rows to RabbitMQ."),
        "exporter": ("workers.process_cli:exporter", "Serve queue, outbox and ledger metrics."),
        "api": ("workers.process_cli:api", "Serve the HTTP enqueue API."),
    },
    "Operations": {
        "setup": ("workers.setup_cli:setup", "Create and migrate the database, declare queues."),
        "migrate": ("workers.setup_cli:migrate", "Upgrade the database schema to the head."),
        "db": ("workers.db_cli:db", "Schema revisions: create, apply, check."),
        "token": ("workers.token_cli:token", "Create and revoke the API's bearer tokens."),
        "dlq": ("workers.dlq.cli:dlq", "Dead letters: inspect, re-drive, purge, export."),
        "ledger": ("workers.ledger_cli:ledger", "The commission ledger's balances and checks."),
        "scheduled": ("workers.schedule_cli:scheduled", "Delayed messages waiting in PostgreSQL."),
    },
    "Development (fakes, demo, harnesses)": {
        "sandbox": ("workers.harness.fakes_cli:sandbox", "Serve the fake carrier and push gateway."),
        "smtp-sink": ("workers.harness.fakes_cli:smtp_sink", "Serve an SMTP sink that keeps every message."),
        "demo": ("workers.harness.demo.cli:demo", "Run every process on N orders and audit them."),
        "chaos": ("workers.harness.chaos.cli:chaos", "Run the demo under faults on instances of its own."),
        "bench": ("workers.harness.bench.cli:bench", "Measure throughput, CPU and memory against baselines."),
    },
}

EPILOG = """\b
Examples:
  circulate setup                        create what is missing, migrate
  circulate worker --queues fulfilment   consume one queue
  circulate dlq groups --since 2h        what failed lately, grouped by cause
  circulate demo --orders 50             the whole platform on 50 orders

Every command reads its settings from the CIRCULATE_* environment. `circulate COMMAND --help`
shows a command's options.
"""


@click.group(
    cls=LazyGroup,
    sections=COMMANDS,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="circulate", prog_name="circulate", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@reports_configuration_errors
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Circulate: idempotent marketplace workers on RabbitMQ and PostgreSQL."""
    from shared.logs import configure_logging
    from workers.cli_context import CliContext

    cli = ctx.ensure_object(CliContext)
    ctx.call_on_close(cli.close)
    level, json_lines = _logging_settings(cli)
    configure_logging(level="DEBUG" if verbose else level, json=json_lines)


def _logging_settings(cli: CliContext) -> tuple[str, bool]:
    """The log level and format of the settings, or the defaults when a setting is refused.

    A refused value must not stop what never reads settings (a command's `--help`, `db heads`):
    the commands that do read them raise the same error again, as one line with exit code 2.
    """
    from pydantic import ValidationError

    from shared.config import Settings
    from shared.errors import ConfigurationError

    try:
        settings = cli.settings
    except (ValidationError, ConfigurationError):
        settings = Settings.model_construct()  # the defaults, without reading the environment
    return settings.log_level, settings.log_format == "json"
