"""Plain data for realistic demo orders: people, streets, items and prices per market.

Realistic on purpose: accented names reach email headers, long street names reach carrier
labels, prices span a cheap T-shirt to a designer bag, and each market pays in its own currency.
Nothing here is random; `scenario` draws from it with a seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Market:
    country: str
    currency: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    streets: tuple[str, ...]
    #: (city, postcode) pairs that belong together.
    cities: tuple[tuple[str, str], ...]
    #: Domestic shipping the buyer pays, in minor units.
    shipping_minor: int
    #: "{n} {street}" (GB, US, FR) or "{street} {n}" (DE, IT).
    number_first: bool = True

    def line1(self, number: int, street: str) -> str:
        return f"{number} {street}" if self.number_first else f"{street} {number}"


MARKETS: tuple[Market, ...] = (
    Market(
        "GB", "GBP",
        ("Olivia", "Amelia", "Isla", "Jack", "Harry", "Oliver", "Sophie", "George", "Niamh", "Rhys"),
        ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "O'Connor", "Patel"),
        ("High Street", "Church Road", "Station Road", "Victoria Road", "Park Lane", "Mill Lane"),
        (("London", "N1 9GU"), ("Manchester", "M4 1HN"), ("Bristol", "BS1 5TR"), ("Leeds", "LS1 6DT"),
         ("Glasgow", "G1 1XQ")),
        shipping_minor=349,
    ),
    Market(
        "US", "USD",
        ("Emma", "Ava", "Mia", "Liam", "Noah", "Ethan", "Chloe", "Mateo"),
        ("Johnson", "Garcia", "Miller", "Davis", "Martinez", "Nguyen", "Kim"),
        ("Bedford Avenue", "South Congress Avenue", "Hawthorne Boulevard", "Milwaukee Avenue", "Pike Street"),
        (("Brooklyn", "11211"), ("Austin", "78704"), ("Portland", "97214"), ("Chicago", "60622"),
         ("Seattle", "98122")),
        shipping_minor=599,
    ),
    Market(
        "FR", "EUR",
        ("Camille", "Léa", "Chloé", "Louis", "Gabriel", "Hugo", "Zoé", "Inès"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Lefèvre"),
        ("rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "boulevard Voltaire",
         "rue Nationale"),
        (("Paris", "75011"), ("Lyon", "69002"), ("Marseille", "13001"), ("Bordeaux", "33000"),
         ("Lille", "59000")),
        shipping_minor=449,
    ),
    Market(
        "DE", "EUR",
        ("Mia", "Emilia", "Hannah", "Paul", "Leon", "Finn", "Jürgen", "Lena"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker"),
        ("Hauptstraße", "Schulstraße", "Bahnhofstraße", "Gartenstraße", "Lindenstraße"),
        (("Berlin", "10115"), ("Hamburg", "20095"), ("München", "80331"), ("Köln", "50667"),
         ("Leipzig", "04109")),
        shipping_minor=449,
        number_first=False,
    ),
    Market(
        "IT", "EUR",
        ("Giulia", "Sofia", "Aurora", "Leonardo", "Francesco", "Lorenzo", "Niccolò"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "De Luca"),
        ("Via Roma", "Via Garibaldi", "Corso Italia", "Via Dante", "Via Mazzini"),
        (("Milano", "20121"), ("Roma", "00184"), ("Torino", "10121"), ("Bologna", "40121"),
         ("Napoli", "80134")),
        shipping_minor=449,
        number_first=False,
    ),
)  # fmt: skip

#: Shipping the buyer pays when the seller is in another euro market (the carrier charges more too).
CROSS_BORDER_SHIPPING_MINOR = 999
EURO_COUNTRIES = ("FR", "DE", "IT")

#: (item, lowest, highest price in major units): what secondhand fashion sells for.
ITEMS: tuple[tuple[str, int, int], ...] = (
    ("vintage Levi's 501 jeans", 25, 60),
    ("wool overcoat", 40, 180),
    ("silk scarf", 15, 70),
    ("leather ankle boots", 35, 140),
    ("designer handbag", 120, 900),
    ("linen shirt", 10, 40),
    ("cashmere jumper", 30, 120),
    ("denim jacket", 20, 80),
    ("running trainers", 25, 150),
    ("summer dress", 12, 60),
    ("band T-shirt", 8, 30),
)
