from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.http_adapter import retry_after_ms

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("1", 1_000), ("120", 120_000), (" 7 ", 7_000)])
def test_a_retry_after_in_seconds_is_read_as_milliseconds(value: str, expected: int) -> None:
    assert retry_after_ms(value, now=NOW) == expected


def test_a_retry_after_as_an_http_date_is_the_time_left_until_then() -> None:
    assert retry_after_ms("Sat, 28 Nov 2026 12:00:30 GMT", now=NOW) == 30_000


def test_an_http_date_without_a_known_zone_is_taken_as_utc() -> None:
    assert retry_after_ms("Sat, 28 Nov 2026 12:01:00 -0000", now=NOW) == 60_000


def test_an_http_date_in_another_zone_is_converted() -> None:
    assert retry_after_ms("Sat, 28 Nov 2026 13:00:05 +0100", now=NOW) == 5_000


def test_an_http_date_in_the_past_means_now() -> None:
    assert retry_after_ms("Sat, 28 Nov 2026 11:59:00 GMT", now=NOW) == 0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "٣", "Sat, 99 Nov 2026 25:00:00 GMT"])
def test_a_missing_or_garbled_retry_after_is_none(value: str | None) -> None:
    assert retry_after_ms(value, now=NOW) is None
