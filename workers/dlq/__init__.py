"""Dead letters: the sweeper that archives every `.XQ`, the `circulate dlq` CLI and the web console.

The archive itself (tables, filters, reads and writes) is in `shared/archive*.py`; this package
holds the processes and entry points that work on it. README.md, "Dead letters", is the operator guide.
"""
