"""The demo's plan: N orders and what happens to each, the same for the same seed.

Pure (no I/O), so the same seed gives the same orders, ids and twists, and a failing run can be
replayed exactly. The twists are the situations the platform must survive, in roughly the shares a
busy marketplace sees them:

- double-buys (~8%): a second order for a listing already ordered, posted alongside the first;
  exactly one may be confirmed, the other is cancelled with a refund;
- buyer cancellations (~8%): half as soon as the order exists, half once its label is bought;
- invalid addresses (~5%): the buyer's or the seller's street contains "INVALID", which the carrier
  refuses, so the order needs attention;
- HTTP replays (~5%): the same POST again with the same Idempotency-Key, answered from the API's
  record; and a few resends under another key, which enqueue a second message the worker must skip;
- opt-outs: a few buyers turned push off and a few sellers email, so some notifications are skipped;
- refusals: one request of each kind the API must refuse (docs/orders-at-the-edge.md): a market
  priced in another currency, an unknown market, a NUL in a name, a line break in a name, a
  `placed_at` in year 10000, an amount beyond int64 (each a 422 naming the field), another body for
  an order already accepted (409) and a cancellation of an order never placed (404). None of them
  may ever reach a worker. They come from a random generator of their own, so adding them changed
  no other twist of a seed.
"""

from __future__ import annotations

import copy
import random
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from workers.harness.demo.catalogue import CROSS_BORDER_SHIPPING_MINOR, EURO_COUNTRIES, ITEMS, MARKETS, Market

#: Where the demo stops following an order: it is settled, or a human has to act.
FINAL_STATES = frozenset({"completed", "cancelled", "needs_attention"})

Cancel = Literal["early", "after_label"]
Party = Literal["buyer", "seller"]

_MARKET_WEIGHTS = (30, 20, 20, 20, 10)  # GB, US, FR, DE, IT
_BY_COUNTRY = {market.country: market for market in MARKETS}


@dataclass(frozen=True)
class PlannedOrder:
    body: dict[str, Any]
    item: str
    cancel: Cancel | None = None
    invalid_address: Party | None = None
    replay: bool = False
    resend: bool = False
    double_of: str | None = None

    @property
    def order_id(self) -> str:
        return str(self.body["order_id"])

    @property
    def idempotency_key(self) -> str:
        """What a checkout service would send: one key per order, reused on its own retries."""
        return f"checkout-{self.order_id}"


@dataclass(frozen=True)
class Refusal:
    """A request the API must refuse: what it is, where it goes, and the answer it must get."""

    what: str
    path: str
    body: dict[str, Any]
    status: int
    #: The field a 422 must name; None for a 404 or a 409.
    field: str | None = None
    #: An order that must have been accepted first (the 409 is about its body).
    after: str | None = None

    @property
    def order_id(self) -> str:
        """The order the request is about; only `after`'s may ever exist."""
        return str(self.body.get("order_id") or self.path.split("/")[3])


@dataclass(frozen=True)
class Scenario:
    seed: int
    #: In posting order; a double-buy comes right after the order it competes with.
    orders: tuple[PlannedOrder, ...]
    opt_outs: tuple[tuple[str, str], ...] = field(default=())
    refusals: tuple[Refusal, ...] = field(default=())

    def planned(self) -> dict[str, int]:
        """How many of each twist, for the report."""
        return {
            "orders": len(self.orders),
            "double_buys": sum(o.double_of is not None for o in self.orders),
            "cancellations_early": sum(o.cancel == "early" for o in self.orders),
            "cancellations_after_label": sum(o.cancel == "after_label" for o in self.orders),
            "invalid_addresses": sum(o.invalid_address is not None for o in self.orders),
            "http_replays": sum(o.replay for o in self.orders),
            "resends_other_key": sum(o.resend for o in self.orders),
            "opt_outs": len(self.opt_outs),
            "refusals": len(self.refusals),
        }


def build_scenario(n: int, *, seed: int, now: datetime) -> Scenario:
    """`n` orders in total (double-buys included), with twists on disjoint orders."""
    rng = random.Random(seed)
    doubles = min(round(n * 0.08), n // 2)
    firsts = [_order(rng, now) for _ in range(n - doubles)]
    pool = list(range(len(firsts)))
    rng.shuffle(pool)
    doubled = set(_take(pool, doubles))
    cancelled, invalid = _take(pool, round(n * 0.08)), _take(pool, round(n * 0.05))
    for position, index in enumerate(cancelled):
        firsts[index] = replace(firsts[index], cancel="early" if position % 2 == 0 else "after_label")
    for position, index in enumerate(invalid):
        firsts[index] = _invalid(firsts[index], "buyer" if position % 2 == 0 else "seller")
    retried = rng.sample(range(len(firsts)), min(len(firsts), round(n * 0.05) + max(1, round(n * 0.015))))
    for position, index in enumerate(retried):
        resend = position >= round(n * 0.05)
        firsts[index] = replace(firsts[index], replay=not resend, resend=resend)
    orders: list[PlannedOrder] = []
    for index, first in enumerate(firsts):
        orders.append(first)
        if index in doubled:
            orders.append(_second_buyer(rng, first))
    refusals = _refusals(random.Random(f"refusals-{seed}"), orders)
    return Scenario(seed=seed, orders=tuple(orders), opt_outs=_opt_outs(rng, orders), refusals=refusals)


def _refusals(rng: random.Random, orders: list[PlannedOrder]) -> tuple[Refusal, ...]:
    """One hostile variant of each kind, built on a plain order that ships (fresh ids)."""
    plain = [o for o in orders if plan_is_plain(o)]
    if not plain:
        return ()
    template = rng.choice(plain)

    def variant(what: str, field_: str, change: Callable[[dict[str, Any]], None]) -> Refusal:
        body = copy.deepcopy(template.body)
        body["order_id"], body["listing_id"] = str(_uuid(rng)), str(_uuid(rng))
        change(body)
        return Refusal(what, "/v1/orders", body, 422, field_)

    def set_(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
        def change(body: dict[str, Any]) -> None:
            target = body
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value(target[path[-1]]) if callable(value) else value

        return change

    foreign = "USD" if template.body["currency"] != "USD" else "GBP"
    return (
        variant("a market priced in another currency", "currency", set_(("currency",), foreign)),
        variant("an unknown market", "market", set_(("market",), "ZZ")),
        variant(
            "a NUL byte in the buyer's name", "buyer.name", set_(("buyer", "name"), lambda n: f"{n}\x00")
        ),
        variant(
            "a line break in the seller's name",
            "seller.name",
            set_(("seller", "name"), lambda n: f"{n}\r\nX"),
        ),
        variant("a placed_at in year 10000", "placed_at", set_(("placed_at",), "9999-12-31T23:00:00-05:00")),
        variant("an amount beyond int64", "item_price_minor", set_(("item_price_minor",), 2**63)),
        Refusal(
            "another body for an accepted order",
            "/v1/orders",
            {**template.body, "item_price_minor": template.body["item_price_minor"] + 100},
            409,
            after=template.order_id,
        ),
        Refusal(
            "a cancellation of an order never placed",
            f"/v1/orders/{_uuid(rng)}/cancel",
            {"reason": "buyer_request"},
            404,
        ),
    )


def plan_is_plain(order: PlannedOrder) -> bool:
    """No twist at all: the order is simply shipped and delivered."""
    twists = (
        order.cancel,
        order.invalid_address,
        order.double_of,
        order.replay or None,
        order.resend or None,
    )
    return all(twist is None for twist in twists)


def _take(pool: list[int], k: int) -> list[int]:
    taken, pool[:] = pool[:k], pool[k:]
    return taken


def _order(rng: random.Random, now: datetime) -> PlannedOrder:
    market = rng.choices(MARKETS, weights=_MARKET_WEIGHTS)[0]
    seller_market, shipping = market, market.shipping_minor
    if market.country in EURO_COUNTRIES and rng.random() < 0.15:
        seller_market = _BY_COUNTRY[rng.choice([c for c in EURO_COUNTRIES if c != market.country])]
        shipping = CROSS_BORDER_SHIPPING_MINOR
    item, lowest, highest = rng.choice(ITEMS)
    price = rng.randint(lowest, highest) * 100 - rng.choice((0, 0, 1, 50))
    body = {
        "order_id": str(_uuid(rng)),
        "listing_id": str(_uuid(rng)),
        "buyer": _person(rng, market, "buyer"),
        "seller": _person(rng, seller_market, "seller"),
        "market": market.country,
        "currency": market.currency,
        "item_price_minor": price,
        "shipping_price_minor": shipping,
        "placed_at": now.isoformat(),
    }
    return PlannedOrder(body=body, item=item)


def _second_buyer(rng: random.Random, first: PlannedOrder) -> PlannedOrder:
    market = _BY_COUNTRY[first.body["market"]]
    body = {**first.body, "order_id": str(_uuid(rng)), "buyer": _person(rng, market, "buyer")}
    return PlannedOrder(body=body, item=first.item, double_of=first.order_id)


def _invalid(order: PlannedOrder, party: Party) -> PlannedOrder:
    person = order.body[party]
    address = {**person["address"], "line1": f"INVALID {person['address']['line1']}"}
    body = {**order.body, party: {**person, "address": address}}
    return replace(order, body=body, invalid_address=party)


def _person(rng: random.Random, market: Market, role: Party) -> dict[str, Any]:
    first, last = rng.choice(market.first_names), rng.choice(market.last_names)
    city, postcode = rng.choice(market.cities)
    person_id = f"{role}_{rng.getrandbits(40):010x}"
    local = _ascii(f"{first}.{last}".lower()).replace(" ", "").replace("'", "")
    return {
        "id": person_id,
        "email": f"{local}.{person_id[-4:]}@example.com",
        "name": f"{first} {last}",
        "address": {
            "line1": market.line1(rng.randint(1, 180), rng.choice(market.streets)),
            "city": city,
            "postcode": postcode,
            "country": market.country,
        },
    }


def _opt_outs(rng: random.Random, orders: list[PlannedOrder]) -> tuple[tuple[str, str], ...]:
    buyers = sorted({o.body["buyer"]["id"] for o in orders})
    sellers = sorted({o.body["seller"]["id"] for o in orders})
    push_off = rng.sample(buyers, round(len(buyers) * 0.04))
    email_off = rng.sample(sellers, round(len(sellers) * 0.02))
    return tuple([(b, "push") for b in push_off] + [(s, "email") for s in email_off])


def _ascii(text: str) -> str:
    # Email local parts stay ASCII: SMTPUTF8 is not something every relay speaks.
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)
