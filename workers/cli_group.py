"""The root group's machinery: commands imported only when used, and help listed in sections.

Importing every subcommand up front (SQLAlchemy, Alembic, FastAPI, the harnesses) made
`circulate --help` take about a second. `LazyGroup` knows each command by a `module:attribute`
string with its section and summary, lists them from that alone, and imports a command's module
only when that command is run or asked for its own help. Click 8 has no sections of its own, so
`format_commands` writes one block per section.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class LazyCommand:
    """One top-level command: where it lives, under which heading it is listed, and its summary."""

    name: str
    target: str  # "package.module:attribute", a click command or group
    section: str
    summary: str  # one line in `circulate --help`; becomes the command's short_help


class LazyGroup(click.Group):
    """A group whose commands are `LazyCommand`s, listed by section in the order given."""

    lazy_commands: dict[str, LazyCommand]

    def __init__(
        self, *args: Any, sections: Mapping[str, Mapping[str, tuple[str, str]]], **kwargs: Any
    ) -> None:
        """`sections`: heading -> command name -> ("module:attribute", summary), in listing order."""
        super().__init__(*args, **kwargs)
        self.lazy_commands = {
            name: LazyCommand(name, target, section, summary)
            for section, commands in sections.items()
            for name, (target, summary) in commands.items()
        }
        self.sections = tuple(sections)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(name for name in self.lazy_commands if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(_load(self.lazy_commands[cmd_name]))
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """One section per heading, each summary whole (click would cut it to the terminal width)."""
        width = max((len(name) for name in self.lazy_commands), default=0)
        for section in self.sections:
            # Names padded to one width, so the summaries line up across sections.
            rows = [
                (e.name.ljust(width), e.summary) for e in self.lazy_commands.values() if e.section == section
            ]
            if rows:
                with formatter.section(section):
                    formatter.write_dl(rows)


def _load(entry: LazyCommand) -> click.Command:
    module_name, _, attribute = entry.target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{entry.target} is a {type(command).__name__}, not a click command")
    if command.name != entry.name:
        raise ValueError(f"{entry.target} is the command {command.name!r}; its line says {entry.name!r}")
    command.short_help = entry.summary
    return command
