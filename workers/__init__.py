"""What runs: the worker, the outbox relay, the HTTP API and the command line."""
