"""Dramatiq middleware owned by Circulate: process resources, dead-letter reasons, metrics."""
