import pytest

from rag.errors import ConfigError
from rag.stages.read import Reader, Reading, clean_answer, supports
from rag.testing import ScriptedGenerator
from rag.types import Passage


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("Paris.", "Paris"), ("The answer is Paris", "Paris"), ('"Marrowgate"', "Marrowgate"), ("  1312 ", "1312")],
)
def test_clean_answer(raw, clean):
    assert clean_answer(raw) == clean


def test_supports_needs_every_content_word():
    assert supports("river Osk", "Marrowgate lies on the river Osk.")
    assert not supports("river Thames", "Marrowgate lies on the river Osk.")
    assert not supports("", "anything")


def test_reader_prompts_with_context_and_cites_supporting_passages():
    gen = ScriptedGenerator({r"(?s)Context:.*Veldoria": "Marrowgate."})
    passages = [
        Passage("a", "Marrowgate was founded in 1312."),
        Passage("b", "The capital of Veldoria is Marrowgate."),
        Passage("c", "Bananas are yellow."),
    ]
    reading = Reader(gen, max_passages=2, extractive=False).read("What is the capital of Veldoria?", passages)
    assert reading.text == "Marrowgate"
    assert reading.citations == ("b",)  # "a" holds the word but not the question's topic
    assert "Bananas" not in gen.prompts[0]  # only max_passages are shown


def test_closed_book_prompt_has_no_context():
    gen = ScriptedGenerator(default="Paris")
    assert Reader(gen).closed_book(["Where is the Eiffel Tower?"]) == ["Paris"]
    assert "Context:" not in gen.prompts[0]
    assert gen.prompts[0].endswith("Question: Where is the Eiffel Tower?\nAnswer:")


def test_reader_batches_one_generator_call():
    calls = []

    class Counting(ScriptedGenerator):
        def generate(self, prompts, **kw):
            calls.append(len(prompts))
            return super().generate(prompts, **kw)

    Reader(Counting(default="x")).read_many([("q1", []), ("q2", [Passage("p", "x")])])
    assert calls == [2]


def test_reader_validates():
    with pytest.raises(ConfigError, match="max_passages"):
        Reader(ScriptedGenerator(), max_passages=0)


def test_extraction_picks_the_sentence_about_the_question():
    gen = ScriptedGenerator(default="never asked")
    passages = [
        Passage("a", "Marrowgate was founded in 1312. The mayor of Marrowgate is Ada Finch."),
        Passage("b", "Ilsa Brennick was born in Marrowgate."),
    ]
    reader = Reader(gen)
    assert reader.read("Who is the mayor of Marrowgate?", passages) == Reading("Ada Finch", ("a",), "extract")
    assert reader.read("Where was Ilsa Brennick born?", passages).text == "Marrowgate"
    assert reader.read("In what year was Marrowgate founded?", passages).text == "1312"
    assert gen.prompts == []


def test_extraction_refuses_a_contradicting_relation_and_falls_back():
    gen = ScriptedGenerator(default="Osk")
    reading = Reader(gen).read("Where did Ilsa Brennick die?", [Passage("b", "Ilsa Brennick was born in Marrowgate.")])
    assert reading.method == "generate" and reading.text == "Osk" and reading.citations == ()


def test_long_prose_goes_to_the_generator_short_facts_are_extracted():
    from rag.stages.read import Reader
    from rag.testing import ScriptedGenerator
    from rag.types import Passage

    prose = Passage("w", "The fourth season of Harbor Watch, an Ostrelian drama television series with executive "
                         "producer Mira Sendak, premiered on March 2, 2011, and the season contained 23 episodes.")
    short = Passage("n", "The fourth season of Harbor Watch contained 23 episodes.")
    question = "How many episodes are in Harbor Watch season 4?"
    reader = Reader(ScriptedGenerator(default="23"))
    assert reader.read(question, [prose]).method == "generate"
    assert reader.read(question, [short]).method == "extract"
    assert Reader(ScriptedGenerator(default="23"), max_sentence_words=None).read(question, [prose]).method == "extract"


def test_an_initial_or_a_title_ends_no_sentence():
    from rag.stages.read import sentences

    text = "In 1913 Tomas K. Hallek founded it. Dr. Sendak and Mrs. Quell agreed. It spread."
    assert sentences(text) == ["In 1913 Tomas K. Hallek founded it.", "Dr. Sendak and Mrs. Quell agreed.", "It spread."]


def test_likelihood_reader_reads_the_span_the_model_finds_likeliest():
    from rag.testing import ScriptedModel

    model = ScriptedModel({r"(?s)Context:.*mayor of Marrowgate\?": "Ada Finch"}, default="never generated")
    passages = [Passage("a", "Marrowgate was founded in 1312. The mayor of Marrowgate is Ada Finch.")]
    reader = Reader(model, mode="likelihood")
    reading = reader.read("Who is the mayor of Marrowgate?", passages)
    assert reading == Reading("Ada Finch", ("a",), "likelihood")
    assert model.prompts == []  # scored, not generated
    [(prompt, continuations)] = model.scorer.items
    assert prompt == Reader.context_prompt("Who is the mayor of Marrowgate?", passages)
    assert " 1312\n" in continuations and " Ada Finch\n" in continuations


def test_likelihood_reader_batches_one_scoring_call_and_generates_when_no_span_answers():
    from rag.testing import ScriptedModel

    model = ScriptedModel({r"(?s)Context: Ilsa": "Marrowgate"}, default="Osk")
    readings = Reader(model, mode="likelihood").read_many([
        ("Where was Ilsa Brennick born?", [Passage("b", "Ilsa Brennick was born in Marrowgate.")]),
        ("Who founded it?", [Passage("c", "It was founded.")]),  # no span the question does not hold
        ("Where is Marrowgate?", []),
    ])
    assert readings[0] == Reading("Marrowgate", ("b",), "likelihood")
    assert model.scorer.calls == 1 and len(model.scorer.items) == 1
    assert readings[1] == Reading("Osk", (), "generate")
    assert readings[2].method == "closed_book"
    assert model.calls == 1  # one generator call for both


def test_likelihood_reader_without_a_scorer_reads_extractively():
    reader = Reader(ScriptedGenerator(default="x"), mode="likelihood")
    assert reader.mode == "extractive"
    with pytest.raises(ConfigError, match="mode"):
        Reader(ScriptedGenerator(), mode="guess")


def test_answer_likelihoods_score_every_passage_and_none_in_one_call():
    from rag.stages.read import answer_likelihoods
    from rag.testing import ScriptedScorer

    scorer = ScriptedScorer(likely={r"(?s)Context: The capital of Veldoria is Marrowgate": ["Marrowgate"],
                                    r"(?s)Context: Veldoria's capital is Osk": ["Osk"]})
    passages = [Passage("p1", "The capital of Veldoria is Marrowgate."), Passage("p2", "Veldoria's capital is Osk.")]
    table = answer_likelihoods(scorer, "What is the capital of Veldoria?", passages, ["Marrowgate", "Osk"])
    assert scorer.calls == 1
    assert table.with_passage.shape == (2, 2) and table.without.shape == (2,) and table.n_tokens.shape == (3, 2)
    lift = table.lift()
    assert lift[0, 0] > 0 and lift[1, 1] > 0  # each passage raises the answer it states
    assert lift[0, 1] == 0 and lift[1, 0] == 0
    assert table.passage_ids == ("p1", "p2") and table.answers == ("Marrowgate", "Osk")


def test_answer_score_normalises_length_between_sum_and_mean():
    from rag.protocols import ContinuationScore
    from rag.stages.read import answer_score

    name = ContinuationScore(-2.0, 2)  # a rare name: two surprising tokens
    date = ContinuationScore(-6.0, 11)  # a date: many digits, each easy after the first
    assert answer_score(name) > answer_score(date)  # the mean per token would pick the date
    assert answer_score(ContinuationScore(-2.0, 4)) > answer_score(ContinuationScore(-1.5, 1))  # the sum would pick the shorter
