"""The broker calls a hook only on middleware that define it, in Dramatiq's order and with its rules.

The broker here never connects: only its hook dispatch is exercised.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from shared.broker import CirculateBroker
from shared.config import Settings
from shared.errors import MiddlewareFailed
from shared.middleware_dispatch import HookTable, defines


class _Recorder(Middleware):
    """Records every ack hook it defines, under its name, in one shared list."""

    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    def before_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self.calls.append(f"before {self.name}")

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self.calls.append(f"after {self.name}")


class _Silent(Middleware):
    """Defines nothing but counts every attribute looked up on it that names a hook."""

    def __init__(self) -> None:
        self.looked_up: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name.startswith(("before_", "after_")):
            object.__getattribute__(self, "looked_up").append(name)
        return object.__getattribute__(self, name)


class _Skipper(Middleware):
    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        raise SkipMessage("too old")


class _Broken(Middleware):
    def before_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        raise ValueError("boom")

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        raise ValueError("boom")


def _broker(*middleware: Middleware) -> CirculateBroker:
    return CirculateBroker(settings=Settings(), middleware=list(middleware))


def _message() -> MessageProxy:
    return MessageProxy(dramatiq.Message("fulfilment", "fulfilment.place_order", (), {}, {}))


def test_a_hook_runs_only_on_the_middleware_that_define_it_in_dramatiqs_order() -> None:
    calls: list[str] = []
    silent = _Silent()
    broker = _broker(_Recorder("a", calls), silent, _Recorder("b", calls))
    silent.looked_up.clear()  # whatever the broker read while adding it
    broker.emit_before("ack", _message())
    broker.emit_after("ack", _message())
    assert calls == ["before a", "before b", "after b", "after a"]
    assert silent.looked_up == []


def test_middleware_added_or_assigned_later_is_dispatched_to() -> None:
    calls: list[str] = []
    broker = _broker(_Recorder("a", calls))
    broker.emit_after("ack", _message())
    broker.add_middleware(_Recorder("b", calls))
    broker.emit_after("ack", _message())
    broker.middleware = [_Recorder("c", calls)]
    broker.emit_after("ack", _message())
    assert calls == ["after a", "after b", "after a", "after c"]


def test_a_skip_from_a_before_hook_still_reaches_the_worker() -> None:
    calls: list[str] = []
    broker = _broker(_Skipper(), _Recorder("a", calls))
    with pytest.raises(SkipMessage):
        broker.emit_before("process_message", _message())
    assert calls == []


def test_an_unguarded_hook_that_raises_is_logged_and_the_rest_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    broker = _broker(_Broken(), _Recorder("a", calls))
    with caplog.at_level(logging.CRITICAL):
        broker.emit_before("ack", _message())
    assert calls == ["before a"]
    assert "Unexpected failure in before_ack" in caplog.text


def test_a_failing_before_process_message_hook_still_fails_the_attempt() -> None:
    broker = _broker(_Broken())
    with pytest.raises(MiddlewareFailed, match="before_process_message of _Broken raised ValueError"):
        broker.emit_before("process_message", _message())


def test_a_hook_assigned_on_an_instance_counts_as_defined() -> None:
    calls: list[str] = []
    plain = Middleware()
    plain.after_ack = lambda broker, message: calls.append("patched")  # type: ignore[method-assign]
    broker = _broker(plain)
    broker.emit_after("ack", _message())
    assert calls == ["patched"]


def test_only_overridden_hooks_are_defined() -> None:
    assert defines(_Recorder("a", []), "after_ack")
    assert not defines(_Recorder("a", []), "after_nack")
    assert defines(object(), "after_ack")  # no such hook at all: called, and its failure reported


def test_the_table_notices_a_list_that_grew_in_place() -> None:
    table = HookTable()
    table.middleware = []
    assert table.after("after_ack") == ()
    recorder = _Recorder("a", [])
    table.middleware.append(recorder)
    assert table.after("after_ack") == (recorder,)
