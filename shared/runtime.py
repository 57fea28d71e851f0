"""Runtime: the long-lived resources of one process (engine, sessions, HTTP/SMTP adapters).

Created at worker boot and closed at shutdown by `shared.middleware.resources`; tests build their
own pointing at test servers. `shared` cannot import the domains, so domain adapters arrive as
named factories (`tasks.registry.ADAPTERS`) and each domain reads its own back with `adapter()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db import build_engine, build_sessionmaker

T = TypeVar("T")
AdapterFactory = Callable[[Settings], Any]


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    adapters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, adapters: Mapping[str, AdapterFactory] | None = None
    ) -> Runtime:
        engine = build_engine(settings)
        built = {name: factory(settings) for name, factory in (adapters or {}).items()}
        return cls(settings=settings, engine=engine, sessions=build_sessionmaker(engine), adapters=built)

    def adapter(self, name: str, kind: type[T]) -> T:
        """The adapter registered under `name`, checked to be a `kind`."""
        value = self.adapters.get(name)
        if not isinstance(value, kind):
            raise LookupError(f"no {kind.__name__} adapter named {name!r} in this runtime")
        return value

    def close(self) -> None:
        for adapter in self.adapters.values():
            close = getattr(adapter, "close", None)
            if callable(close):
                close()
        self.engine.dispose()
