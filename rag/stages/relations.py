"""A small lexicon of common relations between an entity and a value.

Questions and facts name relations with different words ("mother tongue" and "native
language"; "died" and "place of death"). Sentence embeddings of such short phrases overlap
too much to tell a paraphrase from a neighbouring relation, so the filter first asks this
lexicon: if both sides name a known relation, they agree or they do not. The concepts follow
the most common properties of general knowledge bases (Wikidata's most used person, place,
organisation and creative-work properties); words are matched by stem. Ambiguous words
("belongs to", "part of") are left out on purpose: the filter then falls back to embeddings.

Some concepts are *generic* ("where" asks for some place; "who heads" for some head): a
generic concept agrees with every specific concept under it, while two different specific
concepts disagree ("died in" against "born in").
"""

from __future__ import annotations

from rag.stages.structure import FactReading, expected_type
from rag.text import stem, tokens

#: concept -> cue phrases (space-separated words, matched by stem, longest cue first).
RELATIONS: dict[str, tuple[str, ...]] = {
    # places
    "place": ("where", "place", "location", "whereabouts"),
    "from_place": ("from", "where from", "originate", "originated", "originates", "comes from", "come from",
                   "came from"),
    "birth_place": ("born", "birthplace", "birth place", "place of birth", "native of", "native to",
                    "hometown", "home town", "grew up", "originally from"),
    "death_place": ("die", "died", "death", "passed away", "place of death", "buried"),
    "origin_place": ("founded in", "formed in", "started in", "established in", "created in",
                     "formulated in",
                     "developed in", "made in", "produced in", "invented in", "origin", "country of origin"),
    "located_in": ("located", "situated", "province", "governorate", "region", "county", "district",
                   "state of", "lie in", "lies in", "can be found", "be found", "found in",
                   "held", "held in", "take place", "takes place", "based in"),
    "residence": ("live", "lives", "lived", "living in", "reside", "resides", "resided", "residence",
                  "home", "settled in", "moved to"),
    "headquarters": ("headquarters", "headquarter", "headquartered", "head office", "main office"),
    "citizenship": ("citizen", "citizenship", "nationality", "passport", "national of"),
    "country": ("country", "nation", "sovereign state"),
    "continent": ("continent",),
    "capital": ("capital", "capital city", "seat of government"),
    "twin_city": ("twin city", "twin town", "sister city", "twinned", "twin"),
    "home_port": ("home port", "port of registry", "registered", "berth", "homeport"),
    # times and quantities
    "birth_date": ("year born", "born year", "date of birth", "birthday", "birth year"),
    "death_date": ("year died", "died year", "date of death", "death year"),
    "inception": ("year founded", "founding year", "founding date", "date of founding", "inception",
                  "year established"),
    "population": ("population", "inhabitant", "inhabitants", "residents", "how many people"),
    "height": ("height", "tall", "elevation", "how high", "metres high", "meters high", "feet high"),
    "area": ("surface area", "square kilometre", "square kilometer", "square mile", "how big"),
    # languages
    "language": ("language", "languages", "tongue", "speak", "speaks", "spoke", "spoken", "dialect",
                 "native speaker", "speaker of", "speakers of",
                 "native language", "mother tongue", "first language", "write in", "writes in",
                 "written in"),
    "official_language": ("official language", "official languages", "official status"),
    "original_language": ("original language", "originally written in", "language originally"),
    # people
    "occupation": ("occupation", "profession", "job", "career", "work as", "works as", "worked as",
                   "kind of work", "type of work", "line of work",
                   "for a living", "trade", "vocation", "employed as", "what does do"),
    "employer": ("employer", "employ", "employs", "employed by", "employed at", "works for", "work for",
                 "worked for", "works at", "work at", "worked at", "job at", "employee of"),
    "field": ("field", "domain", "specialty", "speciality", "specialism", "area of work", "area of activity", "domain of activity",
              "domain of work", "specialize", "specialise", "specializes", "discipline", "expertise"),
    "education": ("studied", "study at", "educated", "alma mater", "graduated", "attended"),
    "religion": ("religion", "religious", "faith", "worship", "believe in", "follow", "follows",
                 "practice", "practise", "practices"),
    "spouse": ("spouse", "married", "marry", "marries", "wed", "wife", "husband"),
    "parent": ("father", "parent", "parents"),
    "child": ("child", "children", "son", "daughter"),
    "award": ("award", "prize", "medal", "honour", "honor", "won"),
    "position_held": ("position held", "title", "office", "post", "rank", "holds the position"),
    "team": ("team", "club", "plays for", "play for", "played for", "signed for", "transferred",
             "transfer", "compete for", "competes for", "represent", "represents"),
    "sport_position": ("play as", "plays as", "plays the position", "play the position",
                       "position does play", "position", "positions"),
    "sport": ("sport", "sports"),
    "instrument": ("instrument", "instruments"),
    "genre": ("genre", "type of music", "kind of music", "style of music", "music"),
    "record_label": ("record label", "music label", "label", "record company", "recording company"),
    # organisations and works
    "head": ("head", "heads", "lead", "leads", "leader", "run", "runs", "in charge", "chief", "chair"),
    "ceo": ("ceo", "chief executive", "chief executive officer", "managing director"),
    "head_of_government": ("mayor", "governor", "prime minister", "president", "premier"),
    "rector": ("rector", "chancellor", "vice-chancellor", "dean"),
    "coach": ("coach", "head coach", "manager", "trainer", "manage", "managed", "manages"),
    "captain": ("captain", "skipper", "commanded", "command"),
    "founder": ("founder", "founded", "founded by", "established by", "started by", "co-founded", "cofounded"),
    "owner": ("owner", "own", "owns", "owned", "parent company", "subsidiary"),
    "creator": ("develop", "developed", "developer", "create", "created", "creator", "make", "made",
                "maker", "produce", "produces", "produced", "producer", "manufacturer", "manufacture",
                "manufactures", "build", "built", "design", "designed", "invent", "invented"),
    "author": ("author", "write", "wrote", "written", "writer", "penned"),
    "publisher": ("publisher", "publish", "published", "issued by", "brought out", "put out"),
    # "premiere" stems as "premier" (a head of government): only "premiere on" names a channel
    "broadcaster": ("network", "channel", "air", "aired", "airs", "broadcast", "broadcaster", "debut",
                    "debuts", "debuted", "originally aired", "premiere on", "premiered on", "premieres on",
                    "television station", "tv station"),
    "director": ("directed", "director", "filmmaker"),
    "currency": ("currency", "money", "coin", "legal tender"),
    "named_after": ("named after", "named for", "name after"),
    "river": ("river", "flows through", "flow through"),
    "mouth": ("flow into", "flows into", "flowed into", "empties into", "empty into", "drains into",
              "mouth", "river mouth"),
    "river_source": ("has its source", "have its source", "rises on", "rises in", "begins as", "source"),
    "work_place": ("work", "works", "worked", "working", "work in", "works in", "worked in", "working in",
                   "employment in", "found employment", "used to work in"),
    "member_of": ("member", "members", "membership", "affiliated", "affiliation", "belong", "belongs",
                  "part of"),
    "plays": ("play", "plays", "played", "playing"),
    "is_a": ("is a", "is an", "was a", "was an", "is the", "works as a"),
}

#: generic concept -> the narrower concepts it agrees with (a concept may sit under several).
GENERIC: dict[str, frozenset[str]] = {
    "place": frozenset({"birth_place", "death_place", "origin_place", "from_place", "located_in", "residence",
                        "headquarters", "citizenship", "country", "continent", "capital", "twin_city",
                        "home_port", "education", "employer", "work_place"}),
    "from_place": frozenset({"birth_place", "origin_place", "citizenship", "country", "headquarters",
                             "located_in"}),
    "country": frozenset({"citizenship", "located_in"}),
    "located_in": frozenset({"continent", "headquarters"}),
    "language": frozenset({"official_language", "original_language"}),
    "head": frozenset({"ceo", "head_of_government", "rector", "coach", "captain", "founder", "owner"}),
    "creator": frozenset({"author", "founder", "director", "publisher"}),
    "work_place": frozenset({"employer"}),
    "member_of": frozenset({"team", "religion", "employer", "record_label", "position_held"}),
    "plays": frozenset({"instrument", "sport", "sport_position", "genre", "team", "occupation"}),
    "is_a": frozenset({"occupation", "field", "sport_position", "genre", "position_held", "sport",
                       "instrument"}),
}
#: A "where" question about making something asks where it was made, not who made it.
_WHERE_TURNS = {"creator": "origin_place", "founder": "origin_place", "author": "origin_place"}


def _ancestors(concept: str) -> frozenset[str]:
    found: set[str] = set()
    frontier = [concept]
    while frontier:
        c = frontier.pop()
        for parent, children in GENERIC.items():
            if c in children and parent not in found:
                found.add(parent)
                frontier.append(parent)
    return frozenset(found)


_ANCESTORS = {c: _ancestors(c) for c in set(RELATIONS) | set(GENERIC)}


_CUES: list[tuple[tuple[str, ...], str]] = sorted(
    ((tuple(stem(w) for w in cue.split()), concept) for concept, cues in RELATIONS.items() for cue in cues),
    key=lambda item: -len(item[0]),
)


_PLACES = GENERIC["place"] | {"place"}

#: A place relation whose answer is a year is the matching time relation ("born in 1986"),
#: and so is a founding ("When was Trenwythe founded?").
TIME_OF = {"birth_place": "birth_date", "death_place": "death_date", "origin_place": "inception",
           "founder": "inception"}


def timed_concepts(concepts: frozenset[str]) -> frozenset[str]:
    """The concepts of a fact whose answer is a date, or of a question asking for one."""
    return frozenset(TIME_OF.get(c, c) for c in concepts)


def reading_concepts(question: str, reading: FactReading, answer: str | None = None) -> tuple[frozenset[str], frozenset[str]]:
    """Relation concepts of the question and of the fact ``reading`` read, with place
    relations turned into time relations where the question asks for a date or the answer
    (``answer``, by default the reading's own) is one."""
    q, f = relation_concepts(reading.question_relation), relation_concepts(reading.relation)
    kind = expected_type(question)
    if kind == "time":
        q = timed_concepts(q)
    if kind in ("time", "number"):
        # a question after a date or a count asks for no place: its place words name the
        # subject ("when did the Hawks change from the Southern League", "how many seasons
        # of Night over Duskmere")
        q = frozenset(c for c in q if c not in _PLACES)
    if any(c.isdigit() for c in (reading.answer if answer is None else answer)):
        f = timed_concepts(f)
    return q, f


_POSSESSIVES = frozenset({"its", "his", "her", "their", "our", "my", "your", "one's"})


def relation_concepts(text: str) -> frozenset[str]:
    """The relation concepts ``text`` names (longest cues first; each word counts once)."""
    words = [stem(t.text) for t in tokens(text)]
    # "its own council" is a possessive, not ownership: "own" after one names no relation.
    used = [w == "own" and i > 0 and words[i - 1] in _POSSESSIVES for i, w in enumerate(words)]
    found: set[str] = set()
    for cue, concept in _CUES:
        n = len(cue)
        for i in range(len(words) - n + 1):
            if tuple(words[i : i + n]) == cue and not any(used[i : i + n]):
                found.add(concept)
                for j in range(i, i + n):
                    used[j] = True
    if "place" in found or any(w in ("where",) for w in words):
        found = {_WHERE_TURNS.get(c, c) for c in found}
    return frozenset(found)


def _leaves(concepts: frozenset[str]) -> frozenset[str]:
    """The most specific concepts of a side: its non-generic concepts when it has any
    (a weak "is a" next to "citizen of" says nothing more), else the generic concepts no
    other concept of the side sits under."""
    specific = frozenset(c for c in concepts if c not in GENERIC)
    if specific:
        return specific
    return frozenset(c for c in concepts if not any(c in _ANCESTORS.get(o, ()) for o in concepts if o != c))


STRONG, WEAK, CONFLICT = "strong", "weak", "conflict"


def relation_match(a: frozenset[str], b: frozenset[str]) -> str | None:
    """How two sides' relations compare: ``strong`` (the same specific relation),
    ``weak`` (one side only names a generic relation above the other's: "plays" and
    "what position"), ``conflict`` (different relations), or ``None`` (a side names none).
    """
    if not a or not b:
        return None
    la, lb = _leaves(a), _leaves(b)
    if la & lb:
        return STRONG
    if la == {"is_a"} or lb == {"is_a"}:
        return None  # "X is a town in Y" names no relation the lexicon can hold against another
    for x in la:
        for y in lb:
            if x == y or x in _ANCESTORS.get(y, ()) or y in _ANCESTORS.get(x, ()):
                return WEAK
    return CONFLICT


def narrows(a: frozenset[str], b: frozenset[str]) -> bool:
    """Some relation of ``a`` sits under one of ``b`` ("located in" under "which country"):
    ``a`` says more precisely what ``b`` asks."""
    return any(y in _ANCESTORS.get(x, ()) for x in _leaves(a) for y in _leaves(b))


def relations_agree(a: frozenset[str], b: frozenset[str]) -> bool | None:
    """``relation_match`` as a yes/no: ``None`` when either side names no relation."""
    match = relation_match(a, b)
    return None if match is None else match != CONFLICT
