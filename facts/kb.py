"""The facts knowledge base: invented entities, the relations over them, and their attributes.

`knowledge_base(seed, people, cities)` is a pure function of its arguments (cached per process): `people`
invented persons and `cities` invented cities, each named by one made-up capitalised word (pieces of
faker's name lists glued together, so no pretrained model knows them and each is one word). Every person has
one value for each person relation (`country`, `city`, `language`, `sport`, `occupation`, `colour`,
`instrument`, `food`); every city lies in a country (`located`). `residence` is the two-hop relation:
the country of a person's city. Values are single words from fixed pools (`RELATIONS[name].values`).
Names are drawn in sequence from a seeded stream and person number i draws its attributes from its own
hashed stream, so for the same seed and number of cities a larger knowledge base starts with the
smaller one's people, attributes and all; nothing depends on set or dict order.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from cards.corpus import stable_hash
from cards.errors import UsageError

PERSON, CITY = "person", "city"


@dataclass(frozen=True)
class Relation:
    """A relation: who has it, its value pool, its verb phrase (`X comes from the country of`, 5 words) and
    noun phrase (`the home country of X`, 2 words), and its hops (2: looked up through `via`)."""

    name: str
    kind: str
    values: tuple[str, ...]
    verb: str
    noun: str
    hops: int = 1
    via: tuple[str, ...] = ()


def _relation(name, kind, values, verb, noun, via=()) -> Relation:
    return Relation(name, kind, tuple(values.split()), verb, noun, 2 if via else 1, tuple(via))


COUNTRIES = ("France Spain Italy Germany Norway Sweden Poland Greece Egypt Kenya Brazil Chile Peru Mexico Canada "
             "Japan China India Vietnam Turkey Iran Ireland Portugal Austria")
RELATIONS = {r.name: r for r in [
    _relation("country", PERSON, COUNTRIES, "comes from the country of", "home country"),
    _relation("city", PERSON, "", "lives in the city of", "home city"),  # values: the knowledge base's cities
    _relation("language", PERSON, "English French Spanish German Italian Dutch Polish Greek Swedish Russian "
              "Turkish Arabic Hindi Japanese Korean Portuguese", "is a native speaker of", "native language"),
    _relation("sport", PERSON, "football tennis hockey cricket rugby golf baseball basketball volleyball swimming "
              "cycling boxing fencing rowing skiing wrestling", "is a keen player of", "favourite sport"),
    _relation("occupation", PERSON, "baker farmer teacher doctor lawyer pilot painter sailor tailor nurse dentist "
              "plumber banker butcher carpenter chemist journalist writer singer judge",
              "earns a living as a", "main occupation"),
    _relation("colour", PERSON, "red blue green yellow purple orange black white brown pink grey violet",
              "always dresses in the colour", "favourite colour"),
    _relation("instrument", PERSON, "piano violin guitar cello flute trumpet drums harp clarinet saxophone "
              "trombone banjo", "practises every day on the", "main instrument"),
    _relation("food", PERSON, "pasta rice soup bread cheese salad curry pizza sushi noodles dumplings pancakes "
              "tacos porridge", "likes to eat nothing but", "favourite food"),
    _relation("located", CITY, COUNTRIES, "lies in the country of", "host country"),
    _relation("residence", PERSON, COUNTRIES, "lives in the country of", "current country", via=("city", "located")),
]}
PERSON_RELATIONS = tuple(name for name, r in RELATIONS.items() if r.kind == PERSON and r.hops == 1)
NAME_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
MAX_ENTITIES = 200_000


@dataclass(frozen=True)
class KnowledgeBase:
    """The entities and their stored attributes: `attributes[subject][relation]` for one-hop relations."""

    seed: int
    people: tuple[str, ...]
    cities: tuple[str, ...]
    attributes: dict

    def kind(self, subject: str) -> str | None:
        """`person`, `city`, or None for a word that is no entity here."""
        found = self.attributes.get(subject)
        return None if found is None else (CITY if "located" in found else PERSON)

    def relations(self, subject_or_kind: str) -> tuple[str, ...]:
        """The relations (one- and two-hop) a subject, or every subject of a kind, has, in RELATIONS order."""
        kind = self.kind(subject_or_kind) or subject_or_kind
        return tuple(name for name, r in RELATIONS.items() if r.kind == kind)

    def value(self, subject: str, relation: str) -> str:
        """The attribute: a stored one, or for a two-hop relation the chain of look-ups through `via`."""
        r = RELATIONS.get(relation)
        if r is None or r.kind != self.kind(subject):
            raise KeyError(f"{subject!r} has no relation {relation!r}")
        if r.hops == 1:
            return self.attributes[subject][relation]
        for step in r.via:
            subject = self.value(subject, step)
        return subject

    def facts(self, relations=None) -> list[tuple[str, str, str]]:
        """(subject, relation, value) for every subject and each of `relations` it has (default: all), people
        first, then cities, each in entity order then RELATIONS order."""
        wanted = tuple(RELATIONS) if relations is None else tuple(relations)
        return [(s, r, self.value(s, r)) for s in self.people + self.cities for r in self.relations(s)
                if r in wanted]

    def summary(self) -> dict:
        return {"people": len(self.people), "cities": len(self.cities),
                "relations": {name: len(self.pool(name)) for name in RELATIONS},
                "facts": len(self.facts())}

    def pool(self, relation: str) -> tuple[str, ...]:
        """The values a relation may take."""
        return self.cities if relation == "city" else RELATIONS[relation].values


@functools.lru_cache(maxsize=16)
def knowledge_base(seed: int = 0, people: int = 1000, cities: int = 50) -> KnowledgeBase:
    """The knowledge base of `people` persons and `cities` cities for `seed` (same arguments, same base)."""
    if not 1 <= people <= MAX_ENTITIES or not 1 <= cities <= MAX_ENTITIES:
        raise UsageError(f"facts: people and cities must be 1 to {MAX_ENTITIES:,} (got {people}, {cities})")
    reserved = {word.lower() for r in RELATIONS.values() for word in (*r.values, *r.verb.split(), *r.noun.split())}
    city_names = _names(seed, "city", cities, reserved)
    people_names = _names(seed, "person", people, reserved | {n.lower() for n in city_names})
    attributes = {}
    for i, name in enumerate(city_names):
        rng = random.Random(stable_hash(seed, "facts-kb", CITY, i))
        attributes[name] = {"located": rng.choice(RELATIONS["located"].values)}
    for i, name in enumerate(people_names):
        rng = random.Random(stable_hash(seed, "facts-kb", PERSON, i))
        attributes[name] = {r: rng.choice(city_names if r == "city" else RELATIONS[r].values)
                            for r in PERSON_RELATIONS}
    return KnowledgeBase(seed, people_names, city_names, attributes)


def _names(seed: int, kind: str, count: int, reserved: set[str]) -> tuple[str, ...]:
    """`count` distinct invented one-word names, none a reserved word, in a fixed order."""
    heads, tails = _pieces(kind)
    rng = random.Random(stable_hash(seed, "facts-kb-name", kind))
    names: list[str] = []
    taken = set(reserved)
    for _ in range(50 * count + 1000):
        word = (rng.choice(heads)[: rng.randint(2, 4)] + rng.choice(tails)[-rng.randint(3, 4):]).lower()
        if set(word) <= NAME_LETTERS and word not in taken and 4 <= len(word) <= 12:
            taken.add(word)
            names.append(word.capitalize())
            if len(names) == count:
                return tuple(names)
    raise UsageError(f"facts: cannot invent {count:,} distinct {kind} names; ask for fewer")


@functools.lru_cache(maxsize=None)
def _pieces(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """faker's en_US name lists, sorted: a person is the start of a first name and the end of a last name, a
    city the start of a last name and a city suffix (`ton`, `ville`, ...)."""
    from faker.providers.address.en_US import Provider as Address
    from faker.providers.person.en_US import Provider as Person

    if kind == PERSON:
        return tuple(sorted(Person.first_names)), tuple(sorted(Person.last_names))
    return tuple(sorted(Person.last_names)), tuple(sorted(set(Address.city_suffixes)))
