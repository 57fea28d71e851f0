"""Stand-ins for the outside world and the harnesses that drive the platform; never production.

Nothing in `shared/`, `tasks/` or the production processes under `workers/` imports this package
(an import-linter contract in pyproject.toml enforces it); only the CLI's development commands
load it, lazily, and tests use it directly.

    sandbox/      a real HTTP carrier and push gateway with faults on demand (`circulate sandbox`)
    smtp_sink.py  a real SMTP server that keeps what it receives (`circulate smtp-sink`)
    demo/         the whole platform end to end, checked by its own report (`circulate demo`)
    bench/        throughput figures, never assertions (`make bench`)
"""
