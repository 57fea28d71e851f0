"""One decorator for every `circulate` command: a setting that cannot work is one line, exit code 2.

A refused `CIRCULATE_*` value (pydantic's ValidationError) or a `ConfigurationError` (a port that
is taken, cluster URLs that disagree) is the operator's to fix, not a bug, so it gets click's
`Error: ...` line naming the variable instead of a traceback. Exit code 2, as for a usage error:
the command was not run as given. Any other exception keeps its traceback, because that one is ours.

`tests/unit/test_cli_help.py` walks the command tree and fails on a command without it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

from shared.errors import ConfigurationError

F = TypeVar("F", bound=Callable[..., Any])

#: Set on a wrapped callback, so the command-tree test can tell it is wrapped.
MARK = "__reports_configuration_errors__"


class BadConfiguration(click.ClickException):
    """Printed by click as `Error: <message>`; exit code 2."""

    exit_code = 2


def reports_configuration_errors(function: F) -> F:
    """Wrap a command's callback (put it under `@click.command`) so bad settings exit cleanly."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ConfigurationError as error:
            raise BadConfiguration(str(error)) from error
        except ValueError as error:
            from pydantic import ValidationError  # only once something failed: --help stays light

            if not isinstance(error, ValidationError):
                raise
            raise BadConfiguration(refused_settings(error.errors())) from error

    setattr(wrapper, MARK, True)
    return wrapper  # type: ignore[return-value]


#: A refused value of these settings is not echoed: it may hold a password.
_SECRET_WORDS = ("url", "password", "secret", "key", "token")


def refused_settings(errors: Sequence[Mapping[str, Any]]) -> str:
    """pydantic's errors as one line: `CIRCULATE_X: why (got 'value'); CIRCULATE_Y: ...`."""
    parts = []
    for error in errors:
        name = "_".join(str(part) for part in error["loc"])
        value = error.get("input")
        shown = isinstance(value, str | int | float) and not any(word in name for word in _SECRET_WORDS)
        parts.append(f"CIRCULATE_{name.upper()}: {error['msg']}" + (f" (got {value!r})" if shown else ""))
    return "invalid settings: " + "; ".join(parts)
