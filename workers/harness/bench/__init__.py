"""`make bench`: throughput of the idempotent core and the outbox relay beside their bare baselines."""
