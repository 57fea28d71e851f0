"""Notification wording: one Jinja2 file per template, rendered to an email and a push message.

Each ``templates/<name>.j2`` defines four blocks (``subject``, ``text_body``, ``push_title``,
``push_body``) so the email and the push for one event are written side by side and cannot drift.
Rendering is pure: no I/O beyond reading the package's own files, so it is unit-tested directly.

The context a template may see is the closed list in `REQUIRED_CONTEXT`. `render` passes the
templates only those keys, whatever else the caller's mapping holds, so a full postal address
handed over by mistake can never reach an email or a lock screen.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import jinja2

from shared.errors import InvalidMessage, PermanentError
from shared.money import Money

#: The context keys each template needs, and may see. Values are preformatted for display:
#: ``amount`` is a string such as ``"GBP 12.50"`` (a `Money` is formatted for you).
REQUIRED_CONTEXT: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "order_confirmed": frozenset({"order_id", "recipient_name", "amount"}),
        "item_sold": frozenset({"order_id", "recipient_name", "amount", "label_url"}),
        "shipped": frozenset({"order_id", "recipient_name", "tracking_number"}),
        "delivered": frozenset({"order_id", "recipient_name"}),
        "funds_released": frozenset({"order_id", "recipient_name", "amount"}),
        "order_cancelled": frozenset({"order_id", "recipient_name", "recipient_role", "amount"}),
        "needs_attention": frozenset({"order_id", "recipient_name", "reason"}),
    }
)

#: Who each template is written for; `order_cancelled` reads differently for each role.
AUDIENCES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "order_confirmed": frozenset({"buyer"}),
        "item_sold": frozenset({"seller"}),
        "shipped": frozenset({"buyer"}),
        "delivered": frozenset({"buyer"}),
        "funds_released": frozenset({"seller"}),
        "order_cancelled": frozenset({"buyer", "seller"}),
        "needs_attention": frozenset({"seller"}),
    }
)

TEMPLATES: frozenset[str] = frozenset(REQUIRED_CONTEXT)

# Longer push texts are cut by the phone's lock screen anyway; cutting here keeps the end visible.
PUSH_TITLE_MAX = 50
PUSH_BODY_MAX = 150

_BLOCKS = ("subject", "text_body", "push_title", "push_body")

_UNDEFINED_NAME = re.compile(r"'(?P<name>\w+)' is undefined")


class UnknownTemplate(PermanentError):
    """The message names a template that does not exist; a retry would fail the same way."""


class TemplateContextMissing(InvalidMessage):
    """The message lacks a value the template needs; `variable` names it for the dead-letter reason."""

    def __init__(self, template: str, variable: str) -> None:
        super().__init__(f"template {template!r} needs the context variable {variable!r}")
        self.template = template
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Rendered:
    """One notification's text, ready for the mailer and the push client."""

    subject: str
    text_body: str
    push_title: str
    push_body: str


def render(template: str, context: Mapping[str, object]) -> Rendered:
    """Render `template` with the keys it needs from `context`; extra keys are ignored, never shown.

    Raises `UnknownTemplate`; `TemplateContextMissing` when a needed key is absent or None; and
    `InvalidMessage` when `recipient_role` names a party the template is not written for.
    """
    values = _template_values(template, context)
    compiled = _environment().get_template(f"{template}.j2")
    jinja_context = compiled.new_context(values)
    try:
        parts = {name: "".join(compiled.blocks[name](jinja_context)) for name in _BLOCKS}
    except jinja2.UndefinedError as exc:
        # Only reachable if a .j2 file uses a name missing from REQUIRED_CONTEXT (a test guards it).
        match = _UNDEFINED_NAME.search(exc.message or "")
        raise TemplateContextMissing(template, match["name"] if match else str(exc)) from exc
    return Rendered(
        subject=_one_line(parts["subject"]),
        text_body=parts["text_body"].strip() + "\n",
        push_title=_shorten(_one_line(parts["push_title"]), PUSH_TITLE_MAX),
        push_body=_shorten(_one_line(parts["push_body"]), PUSH_BODY_MAX),
    )


def _template_values(template: str, context: Mapping[str, object]) -> dict[str, str]:
    required = REQUIRED_CONTEXT.get(template)
    if required is None:
        raise UnknownTemplate(f"unknown notification template {template!r}; known: {sorted(TEMPLATES)}")
    for name in sorted(required):
        if context.get(name) is None:
            raise TemplateContextMissing(template, name)
    values = {name: _display(context[name]) for name in required}
    role = values.get("recipient_role")
    if role is not None and role not in AUDIENCES[template]:
        raise InvalidMessage(f"template {template!r} is not written for recipient_role {role!r}")
    return values


def _display(value: object) -> str:
    return value.format() if isinstance(value, Money) else str(value)


def _one_line(text: str) -> str:
    # Subjects become mail headers: a newline from a user-chosen name must not start a new header.
    return " ".join(text.split())


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@functools.cache
def _environment() -> jinja2.Environment:
    # Plain text only, so no HTML escaping; an HTML body would need autoescape=True on its own env.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("tasks.notifications", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
