"""Notification wording and identity: pure functions, no I/O."""

from __future__ import annotations

import re
from uuid import UUID

import jinja2
import jinja2.meta
import pytest

from shared.errors import InvalidMessage, PermanentError
from shared.money import Money
from tasks.notifications import smtp, templates
from tasks.notifications.identity import dedupe_key_for, message_id_for
from tasks.notifications.templates import (
    AUDIENCES,
    PUSH_BODY_MAX,
    PUSH_TITLE_MAX,
    REQUIRED_CONTEXT,
    TEMPLATES,
    Rendered,
    TemplateContextMissing,
    UnknownTemplate,
    render,
)

ORDER_ID = "3f2b6c1e-9a4d-4e1f-8c2a-5b7d9e0f1a2b"
FULL_CONTEXT: dict[str, object] = {
    "order_id": ORDER_ID,
    "recipient_name": "Ada",
    "amount": "GBP 12.50",
    "label_url": "https://labels.carrier.test/L-991.pdf",
    "tracking_number": "TRK-55512",
    "reason": "the carrier could not validate the postcode",
    "recipient_role": "buyer",
}
ADDRESS = "221B Baker Street, London NW1 6XE"
RFC5322_MSG_ID = re.compile(r"^<[0-9a-f]{32}@[A-Za-z0-9.-]+>$")


def context_for(template: str, **overrides: object) -> dict[str, object]:
    return {key: FULL_CONTEXT[key] for key in REQUIRED_CONTEXT[template]} | overrides


def parts(rendered: Rendered) -> list[str]:
    return [rendered.subject, rendered.text_body, rendered.push_title, rendered.push_body]


def declared_variables(template: str) -> set[str]:
    env = templates._environment()
    assert env.loader is not None
    source = env.loader.get_source(env, f"{template}.j2")[0]
    return set(jinja2.meta.find_undeclared_variables(env.parse(source)))


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_renders_with_just_its_required_context(template: str) -> None:
    rendered = render(template, context_for(template))

    assert all(part.strip() for part in parts(rendered))
    assert "\n" not in rendered.subject + rendered.push_title + rendered.push_body
    assert rendered.text_body.endswith("Circulate\n")
    assert "\n\n\n" not in rendered.text_body
    assert ORDER_ID in rendered.subject + rendered.push_body
    assert rendered.text_body.startswith("Hi Ada,")


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_each_template_uses_exactly_the_context_it_declares(template: str) -> None:
    assert declared_variables(template) == REQUIRED_CONTEXT[template]


def test_every_template_file_is_listed_and_every_listed_template_has_a_file() -> None:
    files = set(templates._environment().list_templates(extensions=["j2"]))

    assert files == {f"{name}.j2" for name in TEMPLATES}
    assert set(AUDIENCES) == TEMPLATES


@pytest.mark.parametrize(
    ("template", "missing"),
    [(template, key) for template in sorted(TEMPLATES) for key in sorted(REQUIRED_CONTEXT[template])],
)
def test_a_missing_context_key_is_named_in_the_error(template: str, missing: str) -> None:
    context = context_for(template)
    del context[missing]

    with pytest.raises(TemplateContextMissing) as caught:
        render(template, context)

    assert caught.value.variable == missing
    assert repr(missing) in str(caught.value)
    assert isinstance(caught.value, InvalidMessage)


def test_a_none_value_counts_as_missing() -> None:
    with pytest.raises(TemplateContextMissing, match="tracking_number"):
        render("shipped", context_for("shipped", tracking_number=None))


def test_an_unknown_template_is_a_permanent_error() -> None:
    with pytest.raises(UnknownTemplate, match="order_lost") as caught:
        render("order_lost", FULL_CONTEXT)

    assert isinstance(caught.value, PermanentError)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_no_template_renders_an_address_even_when_the_context_carries_one(template: str) -> None:
    leaky = context_for(template) | {
        "address": ADDRESS,
        "shipping_address": ADDRESS,
        "buyer_address": ADDRESS,
        "street": "221B Baker Street",
        "postcode": "NW1 6XE",
    }

    rendered = "\n".join(parts(render(template, leaky)))

    assert "Baker Street" not in rendered
    assert "NW1 6XE" not in rendered
    assert not any(re.search("address|street|postcode|city", name) for name in declared_variables(template))


def test_the_buyer_is_told_about_the_refund_and_the_seller_is_told_not_to_ship() -> None:
    buyer = render("order_cancelled", context_for("order_cancelled", recipient_role="buyer"))
    seller = render("order_cancelled", context_for("order_cancelled", recipient_role="seller"))

    assert "refunded GBP 12.50" in buyer.text_body
    assert "refunded" in buyer.push_body
    assert "do not ship" in seller.text_body
    assert "refunded" not in seller.text_body + seller.push_body


def test_a_recipient_role_the_template_is_not_written_for_is_invalid() -> None:
    with pytest.raises(InvalidMessage, match="courier"):
        render("order_cancelled", context_for("order_cancelled", recipient_role="courier"))


def test_the_seller_gets_the_label_url_when_an_item_sells() -> None:
    rendered = render("item_sold", context_for("item_sold"))

    assert "https://labels.carrier.test/L-991.pdf" in rendered.text_body
    assert "ship" in rendered.subject


def test_the_seller_is_told_why_an_order_needs_attention() -> None:
    rendered = render("needs_attention", context_for("needs_attention"))

    assert "the carrier could not validate the postcode" in rendered.text_body
    assert "the carrier could not validate the postcode" in rendered.push_body


def test_a_line_break_in_a_context_value_cannot_split_the_subject() -> None:
    rendered = render("funds_released", context_for("funds_released", amount="GBP 1\r\nBcc: x@evil.test"))

    assert "\n" not in rendered.subject
    assert "\r" not in rendered.subject


def test_long_push_text_is_cut_to_fit_a_lock_screen() -> None:
    rendered = render("needs_attention", context_for("needs_attention", reason="postcode " * 50))

    assert len(rendered.push_body) == PUSH_BODY_MAX
    assert rendered.push_body.endswith("…")
    assert len(rendered.push_title) <= PUSH_TITLE_MAX
    assert rendered.text_body.count("postcode") == 50


def test_money_and_uuids_are_formatted_for_display() -> None:
    context = context_for("order_confirmed", amount=Money(1250, "GBP"), order_id=UUID(ORDER_ID))

    rendered = render("order_confirmed", context)

    assert "GBP 12.50" in rendered.text_body
    assert ORDER_ID in rendered.subject


def test_message_ids_are_deterministic_for_one_dedupe_key() -> None:
    key = dedupe_key_for(UUID(ORDER_ID), "shipped", "buyer", "email")

    assert message_id_for(key) == message_id_for(key)
    assert dedupe_key_for(ORDER_ID, "shipped", "buyer", "email") == key
    assert RFC5322_MSG_ID.match(message_id_for(key))
    assert message_id_for(key).endswith("@notifications.circulate.test>")
    assert message_id_for(key, "mail.example.test").endswith("@mail.example.test>")


def test_message_ids_differ_when_any_part_of_the_dedupe_key_differs() -> None:
    keys = {
        dedupe_key_for(ORDER_ID, "shipped", "buyer", "email"),
        dedupe_key_for("another-order", "shipped", "buyer", "email"),
        dedupe_key_for(ORDER_ID, "delivered", "buyer", "email"),
        dedupe_key_for(ORDER_ID, "shipped", "seller", "email"),
        dedupe_key_for(ORDER_ID, "shipped", "buyer", "push"),
    }

    assert len(keys) == 5
    assert len({message_id_for(key) for key in keys}) == 5


def test_message_ids_do_not_reveal_the_order() -> None:
    assert ORDER_ID not in message_id_for(dedupe_key_for(ORDER_ID, "shipped", "buyer", "email"))


@pytest.mark.parametrize("part", ["", "a:b", " buyer"])
def test_a_dedupe_key_part_that_could_collide_is_refused(part: str) -> None:
    with pytest.raises(ValueError, match="dedupe key parts"):
        dedupe_key_for(ORDER_ID, "shipped", part, "email")


@pytest.mark.parametrize("domain", ["", "a b", "x@y", "evil>"])
def test_a_message_id_domain_that_would_break_the_header_is_refused(domain: str) -> None:
    with pytest.raises(ValueError, match="Message-ID domain"):
        message_id_for("key", domain)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_subject_fits_one_header_line_so_the_mailer_writes_the_email_itself(template: str) -> None:
    """A subject longer than a header line is folded, which only the `email` package does: about a
    millisecond of a worker's CPU per email instead of tens of microseconds (`Mailer._plain_email`).
    Measured with a UUID order id and an amount up to EUR 999.99, as the handlers send them."""
    subject = render(template, context_for(template, amount="EUR 999.99")).subject
    assert len("Subject: ") + len(subject) <= smtp._MAX_LINE, subject
