"""The ledger domain."""
