"""A bad setting stops any `circulate` command with one line and exit code 2, never a traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from shared.errors import ConfigurationError
from workers.cli import main
from workers.cli_errors import reports_configuration_errors

BAD_SETTINGS = {
    "refused by pydantic": ({"CIRCULATE_DATABASE_POOL_SIZE": "0"}, "CIRCULATE_DATABASE_POOL_SIZE"),
    "a ConfigurationError": ({"CIRCULATE_AMQP_URL": "amqp://a/x,amqp://b/y"}, "CIRCULATE_AMQP_URL"),
}
COMMANDS = [
    "api", "migrate", "setup", "worker", "relay", "exporter", "scheduled", "ledger trial-balance",
    "dlq stats", "db current", "token revoke checkout",
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_a_bad_setting_is_one_line_naming_the_variable_and_exit_code_2(command: str, case: str):
    env, variable = BAD_SETTINGS[case]

    result = CliRunner().invoke(main, command.split(), env=env)

    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    (line,) = result.output.splitlines()
    assert line.startswith("Error: ") and variable in line, line


def test_a_configuration_error_raised_inside_a_command_is_one_line_too():
    @click.command()
    @reports_configuration_errors
    def broken() -> None:
        raise ConfigurationError("CIRCULATE_METRICS_PORT 9191 is taken on 127.0.0.1")

    result = CliRunner().invoke(broken, [])

    assert (result.exit_code, result.output) == (
        2,
        "Error: CIRCULATE_METRICS_PORT 9191 is taken on 127.0.0.1\n",
    )


def test_several_refused_settings_are_named_on_one_line():
    env = {"CIRCULATE_DATABASE_POOL_SIZE": "0", "CIRCULATE_QUEUE_TYPE": "lazy"}

    result = CliRunner().invoke(main, ["migrate"], env=env)

    (line,) = result.output.splitlines()
    assert "CIRCULATE_DATABASE_POOL_SIZE" in line and "CIRCULATE_QUEUE_TYPE" in line, line
