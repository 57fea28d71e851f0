"""Dead letters: the sweeper that archives every `.XQ`, the `circulate dlq` CLI and the web console.

The archive itself (tables, filters, reads and writes) is in `shared/dead_letters/`; this package
holds the processes and entry points that work on it: `cli/` (the `circulate dlq` group and its
commands), `console/` (the web console), and beside them the sweeper, what a dead copy tells
(`deaths`), re-drive, payload edits, export/import (`transfer`) and the audited actions the CLI and
the console share (`actions`). README.md, "Dead letters", is the operator guide.
"""
