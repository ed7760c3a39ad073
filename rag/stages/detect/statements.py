"""What a passage's text states: the rule-based standing of a statement.

These are the hand-written English rules (a relation lexicon, the asked shape of an answer,
the question's subject named in the sentence) that decide who takes a side in the vote. They
are the part of the detector that transfers worst to other domains and are to be replaced by
measured support (the generator's likelihood of an answer with and without the passage).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from rag.stages.read import sentences
from rag.stages.relations import CONFLICT, STRONG, WEAK, narrows, reading_concepts, relation_match
from rag.stages.structure import expected_type, fits_type, read_fact
from rag.text import NUMBER_WORDS, WORD, name_spans, stem, stems, tokenize, words


def number_words(words: Sequence[str]) -> set[str]:
    """The words, with number words as digits ("three" as "3")."""
    return {str(NUMBER_WORDS[w]) if w in NUMBER_WORDS else w for w in words}


def states(question: str, answer: str, text: str) -> bool:
    """``text`` states what ``answer`` adds to the question: every content word of the
    answer that the question does not already hold ("2 seasons" asked "how many seasons":
    the "2"; number words and digits alike). A generated answer often repeats the
    question's words around its core; one made of nothing else states nothing."""
    asked = number_words(tokenize(question))
    words = [w for w in number_words(tokenize(answer)) if w not in asked]
    if not words:
        return False  # the question's own words ("in the bible"): no answer at all
    haystack = number_words(tokenize(text, stopwords=frozenset()))
    return all(w in haystack for w in words)


_NEGATION = re.compile(r"\b(?:not|never|rather than|instead of|as opposed to|but not)\s+(?:the\s+|a\s+)?[\"'“‘]?$",
                       re.IGNORECASE)


def affirms(question: str, answer: str, text: str) -> bool:
    """``text`` states ``answer`` (see :func:`states`) other than only as what is *not* so:
    "Corvin Ashe, not Tomas K. Hallek, is the father of tidewright engineering" does not back Hallek."""
    if not states(question, answer, text):
        return False
    spots = [m.start() for m in re.finditer(re.escape(answer.strip()), text, re.IGNORECASE)] if answer.strip() else []
    return not spots or any(not _NEGATION.search(text[max(0, at - 30) : at]) for at in spots)


# a year (not a comma-grouped count), a decade, a month or a century
_TIME = re.compile(r"(?<![\d,.])\d{1,4}(?!\d|[,.]\d)|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
                   r"|\bcentur(?:y|ies)\b|\b(?:bc|ad|bce|ce)\b", re.IGNORECASE)

#: How a passage's text bears on an answer (see :func:`standing`).
NOT_STATED, STATED, STATED_FOR_RELATION = 0, 1, 2


@functools.lru_cache(maxsize=4096)  # asked for every (answer, passage) pair of a contest
def standing(question: str, answer: str, text: str) -> int:
    """How ``text`` bears on ``answer`` as the answer to ``question``.

    * ``STATED_FOR_RELATION``: some sentence affirms the answer and names the question's
      relation ("The capital of Veldoria is Marrowgate").
    * ``STATED``: some sentence affirms it, and the lexicon cannot tell its relation from the
      question's (it knows neither, or not the sentence's).
    * ``NOT_STATED``: no sentence affirms it, every sentence that does names another relation
      ("Veldoria uses the crown" does not answer its capital; "born" is no profession), or
      the answer has the wrong shape (a "when" asked, no date given). An answer the text
      does not state is the reader's guess, not the passage's claim.
    """
    kind = expected_type(question)
    if kind == "number" and not has_number(answer):
        return NOT_STATED
    if kind == "time" and not _TIME.search(answer):
        return NOT_STATED  # "13,110" and "4,861 metres" are counts and sizes, not dates
    if kind == "name" and fits_type(answer, kind) is False:
        return NOT_STATED  # "first published" names nobody
    if stray_word(answer):
        return NOT_STATED  # "Measured from source to mouth, ...": a reader's slip, no claim
    best = NOT_STATED
    for sentence in sentences(text):
        # about the question's subject: "Founded in 1218, Zelmoryn is a city" says nothing of
        # Trenwythe, nor "The mother tongue of Tobiah Renwick is Dunmerish" of his wife's
        if not affirms(question, answer, sentence) or not names_subject(question, sentence):
            continue
        names, match = sentence_relation(question, sentence, answer)
        if names:
            return STATED_FOR_RELATION
        if match != CONFLICT:
            best = STATED
    return best


@functools.lru_cache(maxsize=4096)
def names_relation(question: str, text: str) -> bool:
    """Some sentence of ``text`` about the question's subject names the question's relation
    (see :func:`sentence_relation`), whatever its answer."""
    return any(names_subject(question, s) and sentence_relation(question, s)[0] for s in sentences(text))


def sentence_relation(question: str, sentence: str, answer: str | None = None) -> tuple[bool, str | None]:
    """Whether ``sentence`` names the question's relation, and how the relations compare
    (:func:`~rag.stages.relations.relation_match`).

    The copula ("is the") agrees with every kind of "what is"; the relation beside it is
    what a sentence is about ("Dunmerish is the native language of Quist"). A sentence
    naming the question's relation beside others speaks to it ("an actor and comedy writer
    known for playing Big Enos": "writer" is the narrower concept), and so does one naming a
    relation under it ("located in" for "which country"); one naming only a relation above
    it ("belongs to" for an employer) is no stronger than one naming none."""
    q_concepts, f_concepts = reading_concepts(question, read_fact(sentence, question), answer)
    q_concepts, f_concepts = q_concepts - {"is_a"} or q_concepts, f_concepts - {"is_a"} or f_concepts
    match = relation_match(q_concepts, f_concepts)
    names = bool(q_concepts & f_concepts) or match == STRONG or match == WEAK and narrows(f_concepts, q_concepts)
    return names, match


def has_number(text: str) -> bool:
    """Digits or a number word ("three seasons")."""
    return any(w.isdigit() for w in number_words(tokenize(text, stopwords=frozenset())))


def could_answer(question: str, text: str) -> bool:
    """Whether ``text`` could state an answer of the kind the question asks: a "when" or a
    "how many" needs a number in it."""
    return expected_type(question) not in ("time", "number") or has_number(text)


def stray_word(answer: str) -> bool:
    """A one-word reading, capitalised, that is a common English word or shaped like one (a
    participle, an adverb): what a weak reader takes from a sentence start ("Several",
    "Measured", "Historically"), not an answer anyone claims. Lowercase common words
    ("composer") are answers."""
    found = WORD.findall(answer)  # unfolded: the capital matters
    if len(found) != 1 or not found[0][0].isupper():
        return False
    word = found[0].lower()
    return word in KNOWN_WORDS or word.endswith(("ed", "ly", "ing"))


def names_subject(question: str, text: str) -> bool:
    """``text`` mentions every name the question holds, by one of its words at least
    ("Aberhart" for "Lucan Aberhart"); a question without names (lowercased, as NQ's)
    puts no condition."""
    names = question_names(question)
    if not names:
        return True
    said = set(stems(text))
    return all(any(p in said for p in parts) for parts in names)


@functools.lru_cache(maxsize=1024)  # asked for every sentence of every passage of a question
def question_names(question: str) -> tuple[frozenset[str], ...]:
    """The stemmed words of each name in the question (fillers and short words left out)."""
    names = ([stem(w) for w in words(name) if len(w) > 2 and w not in _NAME_FILLER]
             for name in name_spans(question))
    return tuple(frozenset(parts) for parts in names if parts)


_NAME_FILLER = frozenset({"the", "and", "of", "for"})


#: Common English words: a capitalised one-word reading of one of them is a sentence start, not
#: an answer (see :func:`stray_word`).
_COMMON_WORDS = """
the of and to in is was for that with as on by he it at from his an were are which this be or
has had not but first one their its new after who they have her she two been other when there
all during into school time may years more most only over city some world would where later up
such used many can state about national out known university united then made year under
between american both through part well film being three team while war high series called
including second member since life number family people north south east west home group four
several government early area season album song music became work place history public within
river general among large before each five same another must around against based because
following however include house found days day water country church english county law local
major name power small still these those top town very what word young man woman children
father mother brother sister king queen prince court army party president minister council
company business market money price trade bank industry product language book story novel poem
author writer paper press news report letter message page line light night morning evening
summer winter spring autumn weather rain snow wind fire earth stone iron gold silver glass wood
road street bridge tower castle palace temple museum library station harbour port island
mountain valley forest field garden farm village capital kingdom empire republic province
region border coast ocean sea lake bay desert plain hill engineer architect designer builder
painter singer actor player doctor teacher student soldier built designed opened founded born
died named elected married wrote played sang directed produced published released recorded
joined moved served won lost took gave began started ended remained returned created developed
established replaced reached although though whether without across along behind below beyond
toward towards upon throughout good great long short old big little low right left full free
strong important different possible available popular common certain special natural human
political social economic military official original modern ancient central royal information
question answer correct latest recent source context instruction always never ability
according actually address almost already also amount analysis anything appear approach argue
arrive article attention average avoid balance beautiful believe benefit better billion blood
board body break bring brown budget building campaign cancer candidate career carry catch cause
cell center century chance change character charge check choice choose citizen claim class
clear close coach cold collection college color come commercial community compare computer
concern condition conference consider contain continue control cost could couple course cover
create crime cultural culture current customer dark data daughter dead deal death debate decade
decide decision deep defense degree describe design despite detail determine develop difference
difficult dinner direction director discover discuss disease door down draw dream drive drop
drug economy edge education effect effort eight either election else employee energy enjoy
enough enter entire environment especially establish even event ever every everybody evidence
exactly example executive exist expect experience expert explain face fact factor fail fall
fast fear federal feel figure fill final finally financial find fine finger finish firm fish
floor focus follow food foot force foreign forget form former forward friend front future game
generation girl give goal green ground grow growth guess happen happy hard head health hear
heart heavy help here herself himself hospital hotel hour huge hundred husband idea identify
image imagine impact improve indeed indicate individual inside instead interest interview
investment involve issue itself join just keep kill kind kitchen know knowledge land last late
laugh lawyer lead leader learn least leave legal less level lie likely list listen live loss
love machine magazine main maintain make manage manager material matter mean measure media
medical meet meeting memory mention method middle might million mind minute miss mission model
moment month mouth move movie much myself nature near nearly necessary need network next nice
none nothing notice occur offer office often once open operation option order organization
others owner pain parent particular partner pass past patient pattern peace perform perhaps
period person personal phone physical pick picture piece plan plant play point police policy
pool poor position positive practice prepare present pressure pretty prevent private probably
problem process professional professor program project property protect prove provide pull
purpose push quality quickly quite race radio raise range rate rather read ready real reality
realize reason receive recognize record reduce reflect relate relationship religious remember
remove represent require research resource respond response rest result reveal rich rise risk
rock role room rule safe save scene science scientist score search seat security seek seem sell
send senior sense serious serve service seven shake share shoot shoulder show side sign
significant similar simple simply single sit site situation size skill smile society somebody
someone something sometimes sort sound space speak specific speech spend sport staff stage stand
standard star start statement stay step stock stop strategy structure study stuff style subject
success successful suddenly suffer suggest support sure surface system table talk task teach
technology television tell tend term test thank theory thing think third thought thousand threat
throw today together tonight total tough training travel treat treatment tree trial trip trouble
true truth turn type understand unit until usually value various victim view violence visit
voice vote wait walk wall want watch wear week weight whatever white whole whom whose wide wife
will win window wish wonder worker worry write wrong yard yellow yourself
""".split()
KNOWN_WORDS = frozenset(_COMMON_WORDS)
