"""The dead-letter archive, the part every process needs: its tables and the code that reads and writes them.

`models` (one typed model per table), `record` (what the worker's middleware writes when Dramatiq
rejects a message), `archive` (reads), `changes` (sweeping in, purge, restore, edits, history,
audit) and `filter` (which messages an operator means). It lives in `shared` because worker
processes record deaths and imports go `workers -> tasks -> shared`, never back; the sweeper, the
CLI and the console that work on the archive are in `workers/dlq`.
"""
