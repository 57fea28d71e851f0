"""`python -m workers.harness.bench`: the same as `circulate bench`."""

from workers.harness.bench.cli import bench

bench()
