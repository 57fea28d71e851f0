"""MessageLog reads a message's ids without rendering what a producer put in their place."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from shared.middleware.message_log import message_ids


class _Unrenderable:
    """Stands for a huge nested value: rendering it would cost time in proportion to its size."""

    def __str__(self) -> str:
        raise AssertionError("the value was rendered")


def _message(payload: object, envelope: object = None) -> SimpleNamespace:
    return SimpleNamespace(kwargs={"envelope": envelope or {}, "payload": payload})


def test_an_order_id_that_is_not_text_is_never_rendered():
    assert message_ids(_message({"order_id": _Unrenderable()}))["order_id"] is None


def test_a_five_megabyte_order_id_is_ignored_without_parsing_it():
    assert message_ids(_message({"order_id": "a" * 5_000_000}))["order_id"] is None


def test_a_uuid_order_id_is_kept():
    order_id = uuid.uuid4()

    assert message_ids(_message({"order_id": str(order_id).upper()}))["order_id"] == str(order_id)
