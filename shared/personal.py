"""Which payload fields hold personal data, declared once, on the schema field itself.

    class Party(BaseModel):
        id: str                       # an id: kept, operators need it
        name: Personal[str] = Field(min_length=1, max_length=200)
        address: Personal[Address]    # a whole object: everything in it is personal

`Personal[T]` is `T` with `{"personal": true}` in the field's JSON schema, so the mark travels
with the schema (OpenAPI shows it too) and validation is unchanged. Whatever shows messages to
people (the dead-letter console) asks `personal_paths` / `personal_names` instead of keeping a
list of its own, so a new personal field is masked the day it is added to a schema.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

T = TypeVar("T")

#: The mark in a field's JSON schema.
PERSONAL_MARK = "personal"
Personal = Annotated[T, Field(json_schema_extra={PERSONAL_MARK: True})]


def is_personal(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get(PERSONAL_MARK) is True


def personal_paths(model: type[BaseModel]) -> set[tuple[str, ...]]:
    """Paths (`("buyer", "name")`) of the personal fields of `model`, through nested models.

    A personal field that is itself a model is one path: all of it is personal.
    """
    paths: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        key = field.alias or name
        if is_personal(field):
            paths.add((key,))
            continue
        for nested in _models_in(field.annotation):
            paths.update((key, *path) for path in personal_paths(nested))
    return paths


def personal_names(models: Iterable[type[BaseModel]]) -> frozenset[str]:
    """The key of every personal field of `models` (`name`, `email`, `address`, ...)."""
    return frozenset(path[-1] for model in models for path in personal_paths(model))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Models an annotation holds: `Address`, `Address | None`, `list[Contact]` ..."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple, set, frozenset, dict):
        return [model for argument in typing.get_args(annotation) for model in _models_in(argument)]
    return []
