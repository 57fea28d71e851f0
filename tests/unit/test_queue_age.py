"""The oldest-message age estimated from RabbitMQ's publish counter and the queue depth."""

from __future__ import annotations

from workers.queue_age import PublishHistory


def test_an_empty_queue_has_no_age() -> None:
    history = PublishHistory()

    assert history.oldest_age("shipping", now=100.0, published=10, depth=0) == 0.0


def test_a_queue_nobody_consumes_ages_from_the_first_sample_that_saw_its_head() -> None:
    history = PublishHistory()

    history.oldest_age("shipping", now=100.0, published=3, depth=3)
    history.oldest_age("shipping", now=160.0, published=5, depth=5)

    assert history.oldest_age("shipping", now=220.0, published=8, depth=8) == 120.0


def test_the_age_follows_the_head_as_consumers_take_messages() -> None:
    history = PublishHistory()
    history.oldest_age("shipping", now=0.0, published=10, depth=10)
    history.oldest_age("shipping", now=60.0, published=20, depth=15)

    # 12 messages have gone: the head (the 13th) was published after t=0, by t=60.
    assert history.oldest_age("shipping", now=90.0, published=20, depth=8) == 30.0


def test_a_counter_that_goes_backwards_starts_the_history_again() -> None:
    history = PublishHistory()
    history.oldest_age("shipping", now=0.0, published=500, depth=5)

    assert history.oldest_age("shipping", now=300.0, published=2, depth=2) == 0.0


def test_queues_are_tracked_apart() -> None:
    history = PublishHistory()
    history.oldest_age("shipping", now=0.0, published=1, depth=1)

    assert history.oldest_age("ledger", now=50.0, published=1, depth=1) == 0.0
    assert history.oldest_age("shipping", now=50.0, published=1, depth=1) == 50.0


def test_the_history_is_bounded() -> None:
    history = PublishHistory(max_samples=3)
    for tick in range(10):
        history.oldest_age("shipping", now=float(tick), published=tick + 1, depth=tick + 1)

    # The first samples were dropped: the estimate is a lower bound, never unbounded memory.
    assert history.oldest_age("shipping", now=10.0, published=10, depth=10) == 3.0
