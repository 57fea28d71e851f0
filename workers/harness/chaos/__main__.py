"""`python -m workers.harness.chaos`: the `chaos` command without going through `circulate`."""

from workers.harness.chaos.cli import chaos

chaos()
