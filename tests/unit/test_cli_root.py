"""The root `circulate` group survives a bad `CIRCULATE_*` value: only commands that read it fail.

The root reads the settings to configure logging. A refused value must not stop what never reads
settings (a command's `--help`, `db heads`), or an operator could not even read the help that
says how to fix it; a command that does read them still fails with the one-line error, exit code 2.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.unit.test_deploy_compose import logging_restored  # noqa: F401 (a fixture)
from workers.cli import main

pytestmark = pytest.mark.usefixtures("logging_restored")

BAD = {"CIRCULATE_WORKER_THREADS": "many", "CIRCULATE_LOG_LEVEL": "loud"}


@pytest.mark.parametrize("command", ["worker --help", "dlq --help", "db --help"])
def test_a_command_s_help_answers_despite_a_bad_setting(command: str):
    result = CliRunner().invoke(main, command.split(), env=BAD)

    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.startswith(f"Usage: main {command.split()[0]} ")


def test_a_command_that_reads_no_settings_runs_despite_a_bad_setting():
    result = CliRunner().invoke(main, ["db", "heads"], env=BAD)

    assert result.exit_code == 0, (result.output, result.exception)
    assert "(head)" in result.output


@pytest.mark.parametrize("command", ["relay", "migrate", "dlq stats"])
def test_a_command_that_reads_settings_still_fails_in_one_line_naming_each_bad_value(
    command: str,
):
    result = CliRunner().invoke(main, command.split(), env=BAD)

    assert result.exit_code == 2, (result.output, result.exception)
    (line,) = result.output.splitlines()
    assert line.startswith("Error: invalid settings: ")
    assert "CIRCULATE_WORKER_THREADS" in line and "CIRCULATE_LOG_LEVEL" in line, line


def test_a_good_log_level_still_configures_logging():
    import logging

    result = CliRunner().invoke(main, ["db", "heads"], env={"CIRCULATE_LOG_LEVEL": "ERROR"})

    assert result.exit_code == 0, (result.output, result.exception)
    assert logging.getLogger().level == logging.ERROR
