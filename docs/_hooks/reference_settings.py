"""The settings reference: one row per field of `shared.config.Settings`, read at build time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from reference_markdown import cell

from shared.config import Settings

_CONSTRAINTS = {"ge": "≥ {}", "gt": "> {}", "le": "≤ {}", "lt": "< {}", "pattern": "matches `{}`"}


def env_name(field: str) -> str:
    """The environment variable a field is read from (the `CIRCULATE_` prefix, upper case)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


def settings_markdown() -> str:
    """A table of every setting: variable, type, default, constraints and description."""
    rows = [
        "| variable | type | default | constraints | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        anchor = env_name(name).lower()
        cells = (
            f'<a id="{anchor}"></a>`{env_name(name)}`',
            _type_of(field),
            _default_of(field),
            ", ".join(_constraints_of(field)),
            cell(field.description or ""),
        )
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def _type_of(field: FieldInfo) -> str:
    text = getattr(field.annotation, "__name__", None) or str(field.annotation)
    if "|" in text or "Optional" in text:
        text = str(field.annotation)
    text = re.sub(r"\b[a-z_]+(?:\.[a-z_]+)+\.(\w+)", r"\1", text)  # pydantic.types.SecretStr -> SecretStr
    return cell(f"`{text.replace('SecretStr', 'secret')}`")


def _default_of(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "a development value (secret)"
    return cell(f"`{value}`")


def _constraints_of(field: FieldInfo) -> Iterator[str]:
    for item in field.metadata:
        for key, template in _CONSTRAINTS.items():
            value = getattr(item, key, None)
            if value is not None:
                yield cell(template.format(value))
