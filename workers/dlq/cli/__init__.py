"""`circulate dlq`: the dead-letter archive from the command line.

    circulate dlq sweep [--loop]             move .XQ messages into the archive
    circulate dlq stats | groups | list      what is in the archive
    circulate dlq show ID                    one message, its traceback and history
    circulate dlq edit ID                    fix a payload before re-driving it
    circulate dlq redrive ID | --group G     publish again (--dry-run, --rate, --limit)
    circulate dlq purge | restore            soft-delete and undo
    circulate dlq export | import            JSON lines, history included
    circulate dlq user add NAME --role R     console users

docs/operations/dead-letters.md describes each with examples. Settings and the database come
from the CLI's one context (`workers.cli_context`), like every other command's.
"""

from __future__ import annotations

import click

from workers.dlq.cli import actions, read, users


@click.group()
def dlq() -> None:
    """Dead letters: archive, inspect, re-drive, purge, export and console users."""


for command in (
    read.stats,
    read.list_messages,
    read.show,
    read.groups,
    actions.sweep,
    actions.redrive,
    actions.purge,
    actions.restore,
    actions.edit,
    actions.export,
    actions.import_,
    users.user,
):
    dlq.add_command(command)
