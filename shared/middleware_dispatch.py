"""Which middleware a hook has to be called on: only those whose class defines it.

Dramatiq's broker calls every hook of every middleware for every message (`before_ack`,
`after_ack`, `before_process_message` ...), most of them `Middleware`'s empty defaults: with the
worker's eleven middleware that is about sixty calls per message, most doing nothing. A
`HookTable` answers, per hook name, the middleware that override it, in the broker's order
(`before`) or reversed (`after`), worked out on first use and kept until the list changes.

Skipping an inherited empty default changes nothing a middleware can observe: it neither runs
code nor raises. Order, and what the broker does when a hook raises (`SkipMessage` and other
`MiddlewareError`s propagate from `before_` hooks, the rest are logged), stay the broker's.
A hook assigned on an instance (`middleware.after_ack = ...`) counts as an override.
"""

from __future__ import annotations

from dramatiq.middleware import Middleware


class HookTable:
    """The broker's middleware list, and per hook name the middleware that define that hook.

    The list is re-read when it is assigned, when `forget` is called (`add_middleware`), or when
    its length changes; replacing an element in place is not noticed, so the broker's list is
    changed through `add_middleware` or by assigning a new one.
    """

    def __init__(self) -> None:
        self._middleware: list[Middleware] = []
        self._before: dict[str, tuple[Middleware, ...]] = {}
        self._after: dict[str, tuple[Middleware, ...]] = {}
        self._size = 0

    @property
    def middleware(self) -> list[Middleware]:
        return self._middleware

    @middleware.setter
    def middleware(self, middleware: list[Middleware]) -> None:
        self._middleware = middleware
        self.forget()

    def forget(self) -> None:
        """Work the table out again on next use (the middleware list changed)."""
        self._before, self._after, self._size = {}, {}, len(self._middleware)

    def before(self, hook: str) -> tuple[Middleware, ...]:
        """Middleware defining `hook`, in the broker's order."""
        if self._size != len(self._middleware):
            self.forget()
        found = self._before.get(hook)
        if found is None:
            found = self._before[hook] = tuple(m for m in self._middleware if defines(m, hook))
        return found

    def after(self, hook: str) -> tuple[Middleware, ...]:
        """Middleware defining `hook`, in reverse order (as Dramatiq runs `after_` hooks)."""
        if self._size != len(self._middleware):
            self.forget()
        found = self._after.get(hook)
        if found is None:
            found = self._after[hook] = tuple(m for m in reversed(self._middleware) if defines(m, hook))
        return found


def defines(middleware: object, hook: str) -> bool:
    """Whether calling `hook` on `middleware` could do anything (not `Middleware`'s empty default).

    An object that has no such attribute at all counts as defining it, so the broker calls it
    and reports the failure, as Dramatiq would.
    """
    if hook in getattr(middleware, "__dict__", {}):
        return True
    inherited = getattr(type(middleware), hook, None)
    return inherited is None or inherited is not getattr(Middleware, hook, None)
