"""`circulate --help` is the CLI's first page: every command and option explains itself, at once.

The tree is walked from the root group, loading every lazy command the way running it would, so a
command added later is checked without being listed here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version

import click
import pytest
from click.testing import CliRunner

from workers.cli import COMMANDS, main
from workers.cli_errors import MARK

#: A summary longer than this wraps in an 80-column `--help`.
SUMMARY_LIMIT = 60


def walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        context = click.Context(command, info_name=path[-1] if path else "circulate")
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, f"`circulate {' '.join((*path, name))}` is listed but does not load"
            yield from walk(sub, (*path, name))


EVERY_COMMAND = list(walk(main))
IDS = [" ".join(path) or "circulate" for path, _ in EVERY_COMMAND]


@pytest.mark.parametrize(("path", "command"), EVERY_COMMAND, ids=IDS)
def test_every_command_has_help_and_a_whole_summary(path: tuple[str, ...], command: click.Command):
    assert (command.help or "").strip(), f"`circulate {' '.join(path)}` has no help text"
    if path:
        assert command.short_help, (
            f"`circulate {' '.join(path)}` has no short_help (click would cut its help)"
        )
        assert len(command.short_help) <= SUMMARY_LIMIT, command.short_help


@pytest.mark.parametrize(("path", "command"), EVERY_COMMAND, ids=IDS)
def test_every_option_has_help(path: tuple[str, ...], command: click.Command):
    silent = [
        param.name
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert not silent, f"`circulate {' '.join(path)}` options without help: {silent}"


@pytest.mark.parametrize(("path", "command"), EVERY_COMMAND, ids=IDS)
def test_every_command_reports_a_bad_setting_in_one_line(path: tuple[str, ...], command: click.Command):
    if isinstance(command, click.Group) and path:
        return  # a group's callback does nothing; its commands are checked one by one
    assert getattr(command.callback, MARK, False), (
        f"`circulate {' '.join(path)}` lacks @reports_configuration_errors"
    )


@pytest.mark.parametrize(("path", "command"), EVERY_COMMAND, ids=IDS)
def test_every_help_page_renders(path: tuple[str, ...], command: click.Command):
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="circulate")

    assert result.exit_code == 0, result.output
    assert "Usage: circulate" in result.output


def test_the_root_help_lists_every_command_by_section_with_its_whole_summary():
    result = CliRunner().invoke(main, ["--help"], terminal_width=80)

    for section, commands in COMMANDS.items():
        assert f"\n{section}:\n" in result.output
        for name, (_target, summary) in commands.items():
            assert len(summary) <= SUMMARY_LIMIT, summary
            assert f"  {name.ljust(9)}  {summary}\n" in result.output or f" {summary}\n" in result.output
    assert "Examples:" in result.output


def test_a_lazy_command_shows_the_summary_of_its_line_in_the_map():
    for commands in COMMANDS.values():
        for name, (_target, summary) in commands.items():
            loaded = main.get_command(click.Context(main), name)
            assert loaded is not None and loaded.short_help == summary


def test_version_is_the_installed_package_version():
    result = CliRunner().invoke(main, ["--version"])

    assert (result.exit_code, result.output) == (0, f"circulate {version('circulate')}\n")


HEAVY = ("sqlalchemy", "dramatiq", "fastapi", "uvicorn", "alembic", "pydantic", "pika", "workers.harness")
IMPORTED_BY_HELP = """
import json, sys
from workers.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def test_the_root_help_imports_no_command_module():
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED_BY_HELP], capture_output=True, text=True, check=True, timeout=60
    )

    loaded = json.loads(done.stderr)
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY or name.startswith(HEAVY))
    assert not heavy, heavy
    assert "Processes" in done.stdout
