"""workers/models_registry.py lists every module that defines a table, so autogenerate sees them all."""

from __future__ import annotations

import ast
from pathlib import Path

from shared.db import Base
from workers.models_registry import MODEL_MODULES, metadata

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("shared", "tasks", "workers")


def _modules_defining_models() -> set[str]:
    """Modules with a class deriving from `Base` (read from source, so nothing is imported)."""
    found = set()
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            if any(
                isinstance(node, ast.ClassDef)
                and any(isinstance(base, ast.Name) and base.id == "Base" for base in node.bases)
                for node in ast.walk(tree)
            ):
                parts = path.relative_to(ROOT).with_suffix("").parts
                found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found - {"shared.db"}


def test_every_module_that_defines_a_model_is_in_the_registry():
    listed = {module.__name__ for module in MODEL_MODULES}
    assert _modules_defining_models() - listed == set()


def test_the_registry_lists_no_module_without_a_model():
    listed = {module.__name__ for module in MODEL_MODULES}
    assert listed - _modules_defining_models() == set()


def test_the_registry_metadata_is_the_declarative_base_metadata():
    tables = metadata().tables
    assert metadata() is Base.metadata
    assert {"orders", "outbox", "processed_messages", "dead_letters", "api_tokens"} <= set(tables)
