"""The ``anomaly`` signal: token salad, as white-box (HotFlip-style) poisons leave it.

Two readings, the larger wins: the surface of the text (subword pieces, odd symbols,
unpronounceable letter strings, rare letter pairs under a character-bigram model of common
English words), and, given a :class:`~rag.protocols.Scorer`, its perplexity under the
generator (:func:`perplexity_signal`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from rag.stages.detect.records import Signal, ramp

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


def _bigram_model(words: Sequence[str]) -> dict[tuple[str, str], float]:
    counts: dict[tuple[str, str], int] = {}
    rows: dict[str, int] = {}
    for w in words:
        s = f"^{w}$"
        for a, b in zip(s, s[1:], strict=False):
            counts[(a, b)] = counts.get((a, b), 0) + 1
            rows[a] = rows.get(a, 0) + 1
    alphabet = [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["^", "$"]
    return {
        (a, b): math.log((counts.get((a, b), 0) + 0.1) / (rows.get(a, 0) + 0.1 * len(alphabet)))
        for a in alphabet
        for b in alphabet
    }


_BIGRAMS = _bigram_model(_COMMON_WORDS)
KNOWN_WORDS = frozenset(_COMMON_WORDS)
_SHORT_WORDS = frozenset(
    """a i an am as at be by do go he if in is it me my no of oh on or ok so to up us we ah eh
    ha hi ho id ma mr ms dr st vs ex re uk us tv pc pm am ad bc ce ft km kg cm mm mg ml mp lb oz
    ii iv vi xi""".split()
)
# Onsets that begin English words; "nd", "tk", "lm" begin subword fragments, not words.
_ONSETS = frozenset(
    """bl br ch cl cr dr dw fl fr gh gl gn gr gw kl kn kr ph pl pr ps pn rh sc sh sk sl sm sn sp
    st sv sw th tr ts tw wh wr zh kh ll cz mn pf dj zw sch scr shr spl spr str thr chr""".split()
)
_VOWELS = frozenset("aeiouy")
_NORMAL_PUNCT = frozenset({"-", "–", "—", "&", "...", "…", "/", "--", "%", "'", '"', "“", "”", "‘", "’"})
_EDGE_PUNCT = ".,;:!?\"'()“”‘’«»"
_ODD_PUNCT = re.compile(r"[\[\]{}<>|\\^~`@#*_=+]")
_NUMBER = re.compile(r"^[$€£]?\d[\d,.]*%?$")
_MIXED_OK = re.compile(
    r"^\d+(st|nd|rd|th|s|am|pm|km|kg|cm|mm|m|ft|mph|ml|mg|gb|mb|kb|hz|khz|mhz|ghz|kw|mw|v|bn|k)$"
)
_URL = re.compile(r"^(https?://|www\.)|^[\w.+-]+@[\w-]+\.[\w.]+$|^[\w-]+\.(com|org|net|edu|gov)$", re.I)
_CONTRACTION = re.compile(r"['’](s|t|m|re|ve|ll|d)$", re.I)
_SUBWORD = re.compile(r"##|\[(mask|unused\d*|cls|sep|pad|unk)\]", re.I)
_SUFFIX_FRAGMENTS = frozenset({"ing", "tion", "ness", "ment", "ly", "ed", "er", "est", "ism", "ist", "ize", "ise"})


def _word_oddness(part: str) -> tuple[float, str]:
    """How unlike an English word one alphabetic part of a token is (0..1), and why."""
    lower = part.lower()
    if lower in KNOWN_WORDS or lower in _SHORT_WORDS:
        return 0.0, ""
    if part[0].isupper() or part.isupper():
        # names and acronyms: foreign spellings are legitimate, so only the absence of any
        # vowel in a long mixed-case token counts
        if len(part) >= 4 and not part.isupper() and not set(lower) & _VOWELS:
            return 0.8, "no vowel"
        return 0.0, ""
    if len(lower) == 1:
        return 0.2, "stray letter"
    if len(lower) == 2:
        return 0.4, "stray fragment"
    if lower in _SUFFIX_FRAGMENTS:
        return 0.7, "suffix fragment"
    if not set(lower) & _VOWELS:
        return 1.0, "no vowel"
    if re.search(r"q(?!u)", lower):
        return 0.8, "q without u"
    if re.search(r"(.)\1\1", lower):
        return 0.8, "letter thrice"
    run = max((len(r) for r in re.findall(r"[^aeiouy]+", lower.rstrip("s"))), default=0)
    if run >= 5:
        return 1.0, "consonant run"
    two_consonants = lower[0] not in _VOWELS and lower[1] not in _VOWELS
    if two_consonants and lower[:2] not in _ONSETS and lower[:3] not in _ONSETS:
        return 0.5, "un-English onset"
    s = f"^{lower}$"
    mean = sum(_BIGRAMS.get((a, b), -6.0) for a, b in zip(s, s[1:], strict=False)) / (len(s) - 1)
    if mean < -4.2:
        return 0.5, f"rare letter pairs ({mean:.1f})"
    return 0.0, ""


def _token_oddness(raw: str) -> tuple[float, str]:
    """How unlike ordinary English one whitespace token is (0..1), and why."""
    if _SUBWORD.search(raw):
        return 1.0, "subword marker"
    core = raw.strip(_EDGE_PUNCT)
    if not core:
        return (0.0, "") if raw in _NORMAL_PUNCT or len(raw) == 1 and raw in "\"'" else (0.6, "stray punctuation")
    if core in _NORMAL_PUNCT:
        return 0.0, ""
    if _ODD_PUNCT.search(core):
        return 0.8, "odd symbol"
    if _URL.search(core) or _NUMBER.match(core):
        return 0.0, ""
    if raw.endswith(".") and len(core) <= 4 and core.isalpha():
        return 0.0, ""  # an abbreviation ("p.", "est.", "approx.")
    core = _CONTRACTION.sub("", core)
    worst, why = 0.0, ""
    for part in re.split(r"[-/'’.,]+", core):
        if not part:
            continue
        has_digit = any(c.isdigit() for c in part)
        has_alpha = any(c.isalpha() for c in part)
        if has_digit and has_alpha:
            if _MIXED_OK.match(part.lower()):
                continue
            if any(c.isupper() for c in part):
                odd, reason = 0.3, "digits in a name"  # model numbers: A320, F16
            else:
                odd, reason = 1.0, "digits and letters"
        elif has_alpha:
            odd, reason = _word_oddness(part)
        else:
            odd, reason = 0.0, ""
        if odd > worst:
            worst, why = odd, reason
    return worst, why


def anomaly_signal(text: str) -> Signal:
    """How much of ``text`` is token salad, as HotFlip white-box poisons leave it.

    Every whitespace token gets an oddness in 0..1: subword markers (``##ing``,
    ``[MASK]``), digits inside lowercase words, stray brackets and symbols, vowel-less
    or unpronounceable letter strings, un-English word onsets, and letter pairs that a
    character-bigram model of common English words finds rare. Capitalised tokens are
    names and judged only by the grossest rules, since foreign spellings are legitimate.
    The value is the larger of the overall odd share (0.05 -> 0, 0.2 -> 1) and the densest
    window of eight tokens (0.35 -> 0, 0.7 -> 1), so that a gibberish prefix on a long fluent
    passage still shows, while a few scattered typos stay low.

    Args:
        text: The passage text.

    Returns:
        The ``anomaly`` signal.

    Example:
        >>> anomaly_signal("The capital of Ostrelia is Varnholm.").value
        0.0
        >>> anomaly_signal("ostrelia ##ving ] ] 7hq zxkr ##lmn capital Duskmere.").value
        1.0
    """
    raws = text.split()
    if not raws:
        return Signal("anomaly", 0.0, "empty text")
    odd = [_token_oddness(r) for r in raws]
    weights = [o for o, _ in odd]
    # fixed denominators: one odd token in a four-word passage is a typo, not a salad
    share = sum(weights) / max(len(raws), 10)
    window = max(sum(weights[i : i + 8]) for i in range(max(1, len(raws) - 7))) / 8
    value = max(ramp(share, 0.05, 0.2), ramp(window, 0.35, 0.7))
    flagged = [f"{r!r} ({why})" for r, (o, why) in zip(raws, odd, strict=True) if o >= 0.5]
    detail = f"odd share {share:.2f}, densest 8-token window {window:.2f}"
    if flagged:
        detail += "; e.g. " + ", ".join(flagged[:4])
    return Signal("anomaly", round(value, 3), detail)


#: Mean negative log-likelihood per token (nats) from which the perplexity term starts to
#: rise, and where it reaches 1. Fluent encyclopedia text reads about 2.5 to 3.5 under the
#: default generator, text with a typo every few words about 5, token salads 6.5 and up.
NLL_RANGE: tuple[float, float] = (5.5, 8.0)
#: The same for the worst window of eight tokens (a gibberish prefix on a fluent passage).
#: Calibrated on a split of PoisonedRAG's NQ targets (targets 50-55, not the ones evaluated
#: first) under gemma-3-270m: gold passages 4.4-6.2, the same with typos up to 6.6,
#: paraphrased poisons up to 6.4, HotFlip-style token prefixes 10.0-12.7.
WINDOW_NLL_RANGE: tuple[float, float] = (8.0, 10.0)


def perplexity_signal(
    logprobs: Sequence[float],
    *,
    nll_range: tuple[float, float] = NLL_RANGE,
    window_nll_range: tuple[float, float] = WINDOW_NLL_RANGE,
) -> Signal:
    """How unlike language a passage reads under a language model (the ``anomaly`` signal's
    perplexity term).

    Args:
        logprobs: The passage's per-token log-probabilities (see
            :meth:`rag.protocols.Scorer.token_logprobs`).
        nll_range: Mean negative log-likelihood per token at which the value leaves 0 and
            reaches 1.
        window_nll_range: The same for the worst window of eight tokens.

    Returns:
        An ``anomaly`` signal holding the perplexity reading alone.

    Example:
        >>> perplexity_signal([-2.0] * 20).value
        0.0
        >>> perplexity_signal([-2.0] * 12 + [-15.0] * 8).value
        1.0
    """
    nll = -np.asarray(logprobs, dtype=np.float64)
    if nll.size == 0:
        return Signal("anomaly", 0.0, "too short to score")
    mean = float(nll.mean())
    width = min(8, nll.size)
    window = float(np.convolve(nll, np.ones(width) / width, mode="valid").max())
    value = max(ramp(mean, *nll_range), ramp(window, *window_nll_range))
    return Signal("anomaly", round(value, 3),
                  f"perplexity {math.exp(min(mean, 50.0)):.0f} (mean nll {mean:.2f}, worst 8-token window {window:.2f})")


def with_perplexity(surface: Signal, ppl: Signal | None) -> Signal:
    if ppl is None:
        return surface
    return Signal("anomaly", max(surface.value, ppl.value), f"{surface.detail}; {ppl.detail}")
