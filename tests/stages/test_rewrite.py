import doctest
import importlib
import pkgutil

import pytest

import rag.stages.rewrite as rewrite_module
from rag.errors import ConfigError
from rag.stages.rewrite import (
    GeneratorRewriter,
    Hop,
    Rewrite,
    RuleRewriter,
    base_form,
    keyword_query,
    paraphrase,
    parse_hops,
    resolve_hop,
)
from rag.stages.rewrite.records import dedupe
from rag.testing import ScriptedGenerator


def hops_of(question, **kwargs):
    return [h.question for h in RuleRewriter(**kwargs).rewrite(question).hops]


# --- queries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "keywords"),
    [
        ("Who founded Tallow Mills?", "founded Tallow Mills"),
        ("Where did Maren van Holt teach?", "Maren van Holt teach"),  # a name with a joiner stays whole
        ("Who is the mayor of Perrin Hallow's birthplace?", "mayor Perrin Hallow birthplace"),
        ("What is the capital of the Republic of Ostrava?", "capital Republic of Ostrava"),
        ("How many people live in Dunmere?", "many people live Dunmere"),
    ],
)
def test_keyword_query_keeps_names_whole_and_drops_stopwords_and_wh_words(question, keywords):
    assert keyword_query(question) == keywords


@pytest.mark.parametrize(
    ("question", "declarative"),
    [
        ("Who founded Tallow Mills?", "Tallow Mills founded by"),
        ("Who wrote The Pale Orchard?", "The Pale Orchard written by"),
        ("Where was Ada Quell born?", "Ada Quell born in"),
        ("When was Tallow Mills founded?", "Tallow Mills founded in"),
        ("Where does Ada Quell work?", "Ada Quell works at"),
        ("Where does the River Brisk rise?", "the River Brisk rises in"),
        ("When did Ada Quell die?", "Ada Quell died in"),
        ("Which club does Ada Quell play for?", "Ada Quell plays for"),
        ("Which shipyard built the Grey Wren?", "the Grey Wren built by"),
        ("What is the capital of Veldoria?", "the capital of Veldoria is"),
        ("What is Ada Quell's mother tongue?", "Ada Quell's mother tongue is"),
        ("Who is Ada Quell married to?", "Ada Quell is married to"),
        ("In which country is Dunmere?", "Dunmere is in"),
        ("In what year was Ada Quell born?", "Ada Quell born in"),
        ("How many people live in Dunmere?", ""),  # no simple declarative form
    ],
)
def test_paraphrase_turns_simple_questions_into_statement_openings(question, declarative):
    assert paraphrase(question) == declarative


def test_rewrite_queries_are_original_keywords_and_paraphrase():
    rewrite = RuleRewriter().rewrite("  Who founded   Tallow Mills? ")
    assert rewrite == Rewrite(
        "Who founded Tallow Mills?",
        ("Who founded Tallow Mills?", "founded Tallow Mills", "Tallow Mills founded by"),
        (),
        "rules",
    )


def test_queries_are_deduplicated_case_insensitively_and_capped():
    # the keyword query of a bare name is the name itself: kept once
    assert RuleRewriter().rewrite("Tallow Mills?").queries == ("Tallow Mills?",)
    assert RuleRewriter().rewrite("tallow mills").queries == ("tallow mills",)
    assert dedupe(["Who founded X?", "WHO founded x", "", "x founded by", "X FOUNDED BY."], 5) == (
        "Who founded X?",
        "x founded by",
    )
    assert RuleRewriter(max_queries=2).rewrite("Who founded Tallow Mills?").queries == (
        "Who founded Tallow Mills?",
        "founded Tallow Mills",
    )
    assert RuleRewriter(max_queries=1).rewrite("Who founded Tallow Mills?").queries == ("Who founded Tallow Mills?",)


def test_a_clause_that_makes_no_hop_becomes_a_query():
    rewrite = RuleRewriter().rewrite("Who is the person that founded Tallow Mills?")
    assert rewrite.hops == ()
    assert "Who founded Tallow Mills?" in rewrite.queries
    rewrite = RuleRewriter().rewrite("What is the name of the river that flows through Penmorrow?")
    assert rewrite.hops == () and "What river flows through Penmorrow?" in rewrite.queries


# --- decomposition --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "hops"),
    [
        # where + passive: the clause keeps its own auxiliary
        ("In which country is the village where Tamsin Orrell was born?",
         ["Where was Tamsin Orrell born?", "In which country is {answer}?"]),
        # where + do-support
        ("Who is the rector of the university where Corwin Baske works?",
         ["Where does Corwin Baske work?", "Who is the rector of {answer}?"]),
        ("How many people live in the city where Corwin Baske lived?",
         ["Where did Corwin Baske live?", "How many people live in {answer}?"]),
        # "that" as subject
        ("Who founded the company that makes Glimmer Soap?",
         ["What company makes Glimmer Soap?", "Who founded {answer}?"]),
        # "that" as object, present and past
        ("Who coaches the club that Oskar Lindvall plays for?",
         ["What club does Oskar Lindvall play for?", "Who coaches {answer}?"]),
        ("Who owns the ship that Harlan Voss built?", ["What ship did Harlan Voss build?", "Who owns {answer}?"]),
        # "whose"
        ("What language is spoken in the country whose capital is Dunmere?",
         ["What country's capital is Dunmere?", "What language is spoken in {answer}?"]),
        # preposition + "which"
        ("What is the capital of the country in which Brenna Colt was born?",
         ["In which country was Brenna Colt born?", "What is the capital of {answer}?"]),
        # "when"
        ("Who was king of Veldoria in the year when Ada Quell was born?",
         ["When was Ada Quell born?", "Who was king of Veldoria in {answer}?"]),
        # "who" with a clause in the middle of the question
        ("Where was the man who founded Tallow Mills born?", ["Who founded Tallow Mills?", "Where was {answer} born?"]),
        ("In which city is the club that Oskar Lindvall plays for based?",
         ["What club does Oskar Lindvall play for?", "In which city is {answer} based?"]),
        # possessive chains
        ("Who is the mayor of Perrin Hallow's birthplace?",
         ["What is Perrin Hallow's birthplace?", "Who is the mayor of {answer}?"]),
        ("What is Perrin Hallow's father's birthplace?",
         ["Who is Perrin Hallow's father?", "What is {answer}'s birthplace?"]),
        ("Which club does Perrin Hallow's older brother play for?",
         ["Who is Perrin Hallow's older brother?", "Which club does {answer} play for?"]),
        # "of" chains and person roles
        ("Who is the mayor of the capital of Carvonia?",
         ["What is the capital of Carvonia?", "Who is the mayor of {answer}?"]),
        ("Where did the author of Salt Ledger die?", ["Who is the author of Salt Ledger?", "Where did {answer} die?"]),
        # nested twice: three hops
        ("What is the capital of the country where the company that makes Glimmer Soap is based?",
         ["What company makes Glimmer Soap?", "Where is {answer} based?", "What is the capital of {answer}?"]),
    ],
)
def test_nested_questions_are_decomposed_into_hops(question, hops):
    rewrite = RuleRewriter().rewrite(question)
    assert [h.question for h in rewrite.hops] == hops
    assert all(h.question != question for h in rewrite.hops)
    assert not rewrite.hops[0].needs_answer and all(h.needs_answer for h in rewrite.hops[1:])
    assert rewrite.queries[0] == question


@pytest.mark.parametrize(
    "question",
    [
        "Who founded Tallow Mills?",
        "Where was Ada Quell born?",
        "What is Perrin Hallow's birthplace?",
        "Who is the rector of Ashvale University?",
        "Where is the head office of Tallow Mills?",
        "Who wrote The Cartographer's Silence?",
        "What is the capital of Veldoria?",
        "Who is the wife of Ada Quell?",
        "Who is the person that founded Tallow Mills?",
        "Which club does Oskar Lindvall compete for?",
        "How many people live in Dunmere?",
    ],
)
def test_single_hop_questions_get_no_hops(question):
    assert RuleRewriter().rewrite(question).hops == ()


def test_decompose_can_be_switched_off():
    assert hops_of("Who founded the company that makes Glimmer Soap?", decompose=False) == []


@pytest.mark.parametrize(
    ("verb", "base"),
    [("works", "work"), ("founded", "found"), ("built", "build"), ("created", "create"), ("studied", "study"),
     ("teaches", "teach"), ("lived", "live"), ("stopped", "stop"), ("died", "die")],
)
def test_base_form_for_do_support(verb, base):
    assert base_form(verb) == base


def test_resolve_hop_fills_the_placeholder():
    assert resolve_hop(Hop("Who is the mayor of {answer}?"), " Corvenna. ") == "Who is the mayor of Corvenna?"
    assert resolve_hop(Hop("Where was Ada Quell born?"), "") == "Where was Ada Quell born?"
    with pytest.raises(ConfigError, match="previous_answer is empty"):
        resolve_hop(Hop("Who is the mayor of {answer}?"), "  ")


# --- generator ------------------------------------------------------------------------------------

QUESTION = "Who is mayor of Ada Quell's home town?"


def scripted(hops: str, para: str) -> ScriptedGenerator:
    return ScriptedGenerator(lambda p: hops if p.endswith("Steps:\n") else para)


def test_generator_output_is_used_when_usable():
    gen = scripted("1. Where was Ada Quell born?\n2. Who is the mayor of that town?", "Who governs Ada Quell's home town?")
    rewrite = GeneratorRewriter(gen).rewrite(QUESTION)
    assert rewrite.method == "generator"
    assert [h.question for h in rewrite.hops] == ["Where was Ada Quell born?", "Who is the mayor of {answer}?"]
    assert rewrite.queries[:2] == (QUESTION, "Who governs Ada Quell's home town?")
    assert len(rewrite.queries) == 3
    assert gen.calls == 1 and len(gen.prompts) == 2
    assert QUESTION in gen.prompts[0] and QUESTION in gen.prompts[1]


@pytest.mark.parametrize(
    ("hops", "para"),
    [
        ("Ada Quell was born in Dunmere.", ""),  # not questions
        ("Where was Ada Quell born?\nWho is the mayor?", QUESTION),  # no reference; paraphrase is a copy
        ("Where was Ada Quell born?\nWho is the mayor of Dunmere?", "Who is mayor of Dunmere?"),  # invented names
        ("Where was Ada Quell born?", "Who is the mayor?"),  # one line; paraphrase drops the name
        (QUESTION + "\nWho is {answer}?", "Ada"),  # repeats the question; too short
        ("Who is the mayor?\nWhat is {answer}'s name?", ""),  # first hop is about nothing named
    ],
)
def test_unusable_generator_output_falls_back_to_rules(hops, para):
    rewrite = GeneratorRewriter(scripted(hops, para)).rewrite(QUESTION)
    assert rewrite == RuleRewriter().rewrite(QUESTION)
    assert rewrite.method == "rules"


def test_rejected_hops_keep_the_rule_hops_while_a_good_paraphrase_is_used():
    question = "Who founded the company that makes Glimmer Soap?"
    gen = scripted("no idea", "Who started the firm that makes Glimmer Soap?")
    rewrite = GeneratorRewriter(gen).rewrite(question)
    assert rewrite.method == "generator"
    assert rewrite.hops == RuleRewriter().rewrite(question).hops
    assert rewrite.queries[1] == "Who started the firm that makes Glimmer Soap?"


def test_parse_hops_accepts_markers_and_pronouns():
    question = "Where was the founder of Tallow Mills born?"
    assert parse_hops("Who founded Tallow Mills?\nWhere was [answer] born?", question) == (
        Hop("Who founded Tallow Mills?"),
        Hop("Where was {answer} born?"),
    )
    assert parse_hops("- Who founded Tallow Mills?\n- Where was he born?", question)[1] == Hop("Where was {answer} born?")


def test_rewrite_many_batches_one_generator_call():
    gen = scripted("nothing useful", "")
    questions = ["Who founded Tallow Mills?", "Who founded the company that makes Glimmer Soap?", "Where is Dunmere?"]
    rewrites = GeneratorRewriter(gen).rewrite_many(questions)
    assert gen.calls == 1 and len(gen.prompts) == 2 * len(questions)
    assert [r.question for r in rewrites] == questions
    assert rewrites == RuleRewriter().rewrite_many(questions)
    assert GeneratorRewriter(gen).rewrite_many([]) == []


def test_generator_is_not_asked_for_hops_when_decomposition_is_off():
    gen = scripted("Where was Ada Quell born?\nWho is the mayor of {answer}?", "")
    rewrite = GeneratorRewriter(gen, fallback=RuleRewriter(decompose=False)).rewrite(QUESTION)
    assert rewrite.hops == () and len(gen.prompts) == 1


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   ", "?", None, 42])
def test_bad_questions_raise_config_error(question):
    with pytest.raises(ConfigError, match="question"):
        RuleRewriter().rewrite(question)
    gen = scripted("", "")
    with pytest.raises(ConfigError, match="question"):
        GeneratorRewriter(gen).rewrite_many(["Who founded Tallow Mills?", question])
    assert gen.calls == 0  # checked before the generator runs


def test_bad_settings_raise_config_error():
    with pytest.raises(ConfigError, match="max_queries"):
        RuleRewriter(max_queries=0)
    with pytest.raises(ConfigError, match="generator"):
        GeneratorRewriter(object())
    with pytest.raises(ConfigError, match="max_new_tokens"):
        GeneratorRewriter(ScriptedGenerator(), max_new_tokens=0)
    with pytest.raises(ConfigError, match="method"):
        Rewrite("Q?", ("Q?",), method="magic")


def test_rewrite_off_passes_the_question_through():
    assert Rewrite.off(" Who founded Tallow Mills? ") == Rewrite(
        "Who founded Tallow Mills?", ("Who founded Tallow Mills?",), (), "off"
    )


# --- real model -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_generator_rewriter_with_a_real_tiny_model_returns_valid_rewrites():
    from rag.models import TransformersGenerator

    questions = ["Who is the mayor of the town where Ada Quell was born?", "Who founded Tallow Mills?"]
    rewrites = GeneratorRewriter(TransformersGenerator("gemma-3-270m")).rewrite_many(questions)
    for question, rewrite in zip(questions, rewrites):
        assert rewrite.question == question and rewrite.queries[0] == question
        assert rewrite.method in ("rules", "generator")
        assert all(h.question.endswith("?") for h in rewrite.hops)
        assert all(h.needs_answer for h in rewrite.hops[1:])


def test_comparison_questions_are_parsed_and_compared_by_code():
    from rag.stages.rewrite import compare, comparison

    comp = comparison("Who won more Harbour Cup titles, Tomas Hallek or Corvin Ashe?")
    assert comp.options == ("Tomas Hallek", "Corvin Ashe") and comp.pick == "max" and comp.kind == "number"
    assert comparison("Where was Anselm Quist born?") is None
    assert comparison("Is tea or coffee better?") is None  # no comparative this reads, no names
    paragraphs = [("p1", "Tomas Hallek is an Ostrelian rower. He won one Harbour Cup doubles title."),
                  ("p2", "Corvin Ashe is a Dunmerish rower. He won two Harbour Cup doubles titles.")]
    answer, ids, reason = compare(comp, "Who won more Harbour Cup titles, Tomas Hallek or Corvin Ashe?", paragraphs)
    assert answer == "Corvin Ashe" and ids == ("p1", "p2") and "1 vs Corvin Ashe 2" in reason
    assert compare(comp, "Who won more Harbour Cup titles?", paragraphs[:1]) is None


@pytest.mark.parametrize("module", sorted(pkgutil.iter_modules(rewrite_module.__path__)), ids=lambda m: m.name)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(f"rag.stages.rewrite.{module.name}"))
    assert result.attempted > 0 or module.name == "grammar"  # grammar's helpers have no examples
    assert result.failed == 0
