"""`circulate chaos`: the demo's scenario run while something breaks, then audited as the demo is.

Each scenario runs every process of the platform (API, relay, workers, carrier sandbox, SMTP
sink) against a PostgreSQL and RabbitMQ of its own (never the machine's), drives the demo's
seeded orders with all their twists, injects its faults mid-run, and then checks the demo's
invariants, that nothing was dead-lettered, and how long the platform took to recover.

    monitor.py    samples progress (orders final, messages handled, last commit and publish) and
                  records each fault with its start, the moment it was lifted, and its recovery
    keeper.py     restarts the relay or the workers when they die, as systemd or Kubernetes would
    faults.py     the faults themselves: kill storms, node loss, database restarts, proxy cuts
    scenarios.py  the five scenarios: which services each needs and what it breaks when
    runner.py     one scenario, start to finish, on a fresh database and vhost
    report.py     the figures per scenario, `artifacts/chaos-report.json` and the Markdown table
    cli.py        the `chaos` click command (also `python -m workers.harness.chaos`)
"""
