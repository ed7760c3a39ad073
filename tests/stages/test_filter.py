import numpy as np
import pytest

from rag.errors import ConfigError
from rag.stages.filter import KnowledgeFilter
from rag.testing import HashEmbedder
from rag.types import Passage


class ConstantEmbedder:
    """Every text gets the same vector (cosine 1), or orthogonal ones (cosine 0)."""

    name, dim = "constant", 4

    def __init__(self, similar: bool) -> None:
        self.similar = similar

    def embed_documents(self, texts):
        if self.similar:
            return np.tile(np.array([1, 0, 0, 0], np.float32), (len(texts), 1))
        return np.eye(4, dtype=np.float32)[np.arange(len(texts)) % 4]

    def embed_query(self, text):
        return self.embed_documents([text])[0]


def note(text, pid="n1"):
    return Passage(pid, text, kind="note")


def test_same_subject_same_relation_is_kept_with_its_answer():
    f = KnowledgeFilter(HashEmbedder())
    kept = f.filter("What is Maren Olvecka's native language?", [note("Maren Olvecka's mother tongue is Dunmerish.")]).kept
    assert [e.answer for e in kept] == ["Dunmerish"]


def test_same_subject_other_relation_is_dropped_with_a_reason():
    f = KnowledgeFilter(HashEmbedder())
    decision = f.filter("Where did Maren Olvecka die?", [note("Maren Olvecka's mother tongue is Dunmerish.")])
    assert not decision.kept and "relation differs" in decision.dropped[0].reason


def test_other_subject_same_relation_is_dropped():
    f = KnowledgeFilter(HashEmbedder())
    decision = f.filter("What is Ilse Tarnow's native language?",
                        [note("Maren Olvecka's mother tongue is Dunmerish.")])
    assert not decision.kept


def test_lexicon_conflict_is_overruled_only_by_a_near_identical_relation():
    question, fact = "Where did Maren Olvecka die?", note("Maren Olvecka's mother tongue is Dunmerish.")
    assert KnowledgeFilter(ConstantEmbedder(similar=True)).filter(question, [fact]).kept[0].reason.startswith(
        "same subject; lexicon overruled")
    assert not KnowledgeFilter(ConstantEmbedder(similar=True), conflict_threshold=1.5).filter(question, [fact]).kept
    assert not KnowledgeFilter(ConstantEmbedder(similar=False)).filter(question, [fact]).kept


def test_unsettled_relation_needs_the_embedding_threshold():
    question, fact = "What is Robert Muench's title?", note("Robert Muench is the pope.")
    assert KnowledgeFilter(ConstantEmbedder(similar=True)).filter(question, [fact]).kept
    dropped = KnowledgeFilter(ConstantEmbedder(similar=False)).filter(question, [fact]).dropped
    assert "relation too far" in dropped[0].reason


def test_qa_pairs_bear_only_on_their_own_question():
    f = KnowledgeFilter(HashEmbedder())
    qa = Passage("q1", "Q: What is the capital of Veldoria? A: Ostrava", kind="qa",
                 metadata={"question": "What is the capital of Veldoria?", "answer": "Ostrava"})
    assert [e.answer for e in f.filter("What is the capital of Veldoria?", [qa]).kept] == ["Ostrava"]
    assert not f.filter("What is the capital of Brinmoor?", [qa]).kept


def test_thresholds_are_checked():
    with pytest.raises(ConfigError, match="relation_threshold"):
        KnowledgeFilter(HashEmbedder(), relation_threshold=2.0)
    with pytest.raises(ConfigError, match="conflict_threshold"):
        KnowledgeFilter(HashEmbedder(), conflict_threshold=-3)


def test_corpus_passages_must_mention_a_name_of_the_question():
    f = KnowledgeFilter(HashEmbedder())
    same = Passage("a", "Zelmoryn elected Katarina Tomasek as mayor in 2021.")
    other = Passage("b", "Brinmoor elected Pavel Drozd as mayor in 2020.")
    kept = f.filter("Who is the mayor of Zelmoryn?", [same, other]).kept
    assert [e.passage.id for e in kept] == ["a"]


def test_questions_without_capitals_are_matched_on_content_words():
    f = KnowledgeFilter(HashEmbedder())
    gold = Passage("g", "The comb is the seat of memory in a hive, holding its stores.")
    off = Passage("o", "Bananas are yellow when ripe.")
    decision = f.filter("what is the seat of memory in a hive", [gold, off])
    assert [e.passage.id for e in decision.kept] == ["g"]
    assert "shares no content word" in decision.dropped[0].reason


def test_an_appositive_brings_no_names_into_the_fact():
    f = KnowledgeFilter(HashEmbedder())
    fact = note("Katarina Tomasek wrote Moby-Dick, the story of Captain Ahab's hunt for a white whale.")
    assert [e.answer for e in f.filter("Who is the author of Moby-Dick?", [fact]).kept] == ["Katarina Tomasek"]


def test_its_own_is_no_ownership():
    from rag.stages.relations import relation_concepts

    assert "owner" not in relation_concepts("is a town with its own elected council")
    assert "owner" in relation_concepts("Apple owns Beats")


def test_a_fronted_participle_phrase_is_read_as_the_fact_it_states():
    f = KnowledgeFilter(ConstantEmbedder(similar=False))
    fact = note("Located in Ithelian, Belovka is a town with its own elected council.")
    assert [e.answer for e in f.filter("Belovka is located in which country?", [fact]).kept] == ["Ithelian"]
    assert not f.filter("Who is the mayor of Belovka?", [fact]).kept
    born = note("Born in Lyon, Jean Roux was a painter.")
    assert [e.answer for e in f.filter("Where was Jean Roux born?", [born]).kept] == ["Lyon"]


@pytest.mark.parametrize(("question", "fact", "answer"), [
    ("Whom did Casimir Dellow marry?", "Casimir Dellow is married to Harriet Radley.", "Harriet Radley"),
    ("What kind of work does Anselm Quist do?", "Anselm Quist works as an entrepreneur.", "entrepreneur"),
    ("Which publisher brought out A Grammar of Winter?", "A Grammar of Winter was issued by Northmark Sea.",
     "Northmark Sea"),
    ("Which year is given as the founding date of Pennock?", "Founded in 1079, Pennock is a city.", "1079"),
    ("Where was Imogen Kestley born?", "Born in Velanthe, Imogen Kestley returns there every summer.", "Velanthe"),
])
def test_relations_said_in_other_words_are_read_without_the_embedder(question, fact, answer):
    f = KnowledgeFilter(ConstantEmbedder(similar=False))
    assert [e.answer for e in f.filter(question, [note(fact)]).kept] == [answer]


def test_the_lexicon_reads_speakers_foundings_and_river_mouths():
    from rag.stages.relations import reading_concepts, relation_concepts
    from rag.stages.structure import read_fact

    assert relation_concepts("is a native speaker of") == {"is_a", "language"}
    assert relation_concepts("empties into the") == {"mouth"} == relation_concepts("What does the flow into")
    assert relation_concepts("Who founded") == {"founder"}
    question = "When was Trenwythe founded?"
    q_concepts, f_concepts = reading_concepts(question, read_fact("Trenwythe was founded in 1474.", question))
    assert q_concepts == f_concepts == {"inception"}


PROSE = ("Tomas Hallek was a Dunmerish folk singer and songwriter.\n"
         "Liesl Varga is an Ostrelian folk singer. She was married to Tomas Hallek. "
         "The Lake Fund was founded in 1971.")


def test_a_note_of_several_sentences_is_kept_when_one_sentence_bears():
    """No sentence passes the fact judgement (the second shares no name with the question),
    but the first names the question's subject and is near it: the note is kept, which
    only the window reading does."""
    prose = note("Liesl Varga toured the Duskmere Isles in 1957.\nThe Lake Fund was founded in 1971.")
    decision = KnowledgeFilter(ConstantEmbedder(similar=True)).filter("What did Liesl Varga sing?", [prose])
    assert [e.passage.id for e in decision.kept] == ["n1"] and "bears on the question" in decision.kept[0].reason
    far = KnowledgeFilter(ConstantEmbedder(similar=False)).filter("What did Liesl Varga sing?", [prose])
    assert not far.kept and "no sentence bears" in far.dropped[0].reason


def test_a_prose_note_about_other_names_is_dropped():
    # the window reading only (the top-note fallback, which goes by cosine alone, is off)
    decision = KnowledgeFilter(ConstantEmbedder(similar=True), note_threshold=2.0).filter(
        "Where was Anselm Quist born?", [note(PROSE)])
    assert not decision.kept


def test_a_one_sentence_note_is_still_judged_as_a_fact():
    # the window reading would keep it (cosine 1), the fact reading drops it: a one-sentence
    # note keeps the fact judgement, so CounterFact locality is unchanged
    decision = KnowledgeFilter(ConstantEmbedder(similar=True), conflict_threshold=2.0).filter(
        "Where did Maren Olvecka die?", [note("Maren Olvecka's mother tongue is Dunmerish.")])
    assert not decision.kept


def test_comparison_is_answered_from_both_stated_values_by_code():
    notes = [note("Korvel's Quarterly (1844-1846) was an Ostrelian literary periodical. It was merged in 1846.", "a"),
             note("Tallow Review is a farming magazine. Its first issue came out in 1989.", "b")]
    f = KnowledgeFilter(HashEmbedder())
    kept = f.filter("Which magazine was started first, Korvel's Quarterly or Tallow Review?", notes).kept
    assert {e.answer for e in kept} == {"Korvel's Quarterly"} and {e.passage.id for e in kept} == {"a", "b"}
    assert "1844 vs Tallow Review 1989" in kept[0].reason
    later = f.filter("Which magazine was started more recently, Korvel's Quarterly or Tallow Review?", notes).kept
    assert {e.answer for e in later} == {"Tallow Review"}
    one_value = f.filter("Which magazine was started first, Korvel's Quarterly or Tallow Review?", notes[:1]).kept
    assert all("comparison" not in e.reason for e in one_value)


class MarkerEmbedder:
    """Cosine 1 between a question and a text holding every marker word, 0 otherwise: a
    stand-in for an embedder that finds the two hops together near the question."""

    name, dim = "marker", 2

    def __init__(self, *markers):
        self.markers = markers

    def embed_documents(self, texts):
        near = [t.rstrip().endswith("?") or all(m in t.lower() for m in self.markers) for t in texts]
        return np.array([[1, 0] if n else [0, 1] for n in near], np.float32)


BRIDGE_Q = "The Varnholm family is part of a shipping firm with its head office in what town?"
HOP_1 = "The Varnholm family is an Ostrelian family known for the Tarsk Line."
HOP_2 = "The Tarsk Line is a shipping firm with its head office in Melgrave."


def test_a_bridge_question_keeps_the_note_whose_two_hops_together_bear_on_it():
    """Neither sentence alone holds both 'family' and 'head office'; hop 1 names the
    question's Varnholm and adds Tarsk Line, which hop 2 names: the pair is near."""
    f = KnowledgeFilter(MarkerEmbedder("family", "head office"))
    decision = f.filter(BRIDGE_Q, [note(f"{HOP_1}\n{HOP_2}")])
    assert [e.passage.id for e in decision.kept] == ["n1"]
    assert decision.kept[0].reason.startswith("bridge") and decision.kept[0].answer == ""
    # the second hop must name what the first adds: an unrelated sentence makes no chain
    # (the bridge reading only: the top-note fallback goes by cosine alone)
    other = "The Quennel Works is a shipping firm with its head office in Melgrave."
    f.note_threshold = 2.0
    assert not f.filter(BRIDGE_Q, [note(f"{HOP_1}\n{other}")]).kept


def test_a_bridge_may_run_across_two_notes_and_keeps_both():
    f = KnowledgeFilter(MarkerEmbedder("family", "head office"))
    decision = f.filter(BRIDGE_Q, [note(f"{HOP_1} It was founded in 1901.", "a"),
                                   note(f"{HOP_2} It has 40 ships.", "b")])
    assert {e.passage.id for e in decision.kept} == {"a", "b"}
    assert all(e.reason.startswith("bridge") for e in decision.kept)


def test_a_prose_note_kept_by_one_sentence_leaves_the_answer_to_the_reader():
    prose = note("Peggy Seeger toured the Soviet Union in 1957.\nThe Lake Fund was founded in 1971.")
    kept = KnowledgeFilter(ConstantEmbedder(similar=True)).filter("When did Peggy Seeger tour?", [prose]).kept
    assert [e.answer for e in kept] == [""]


class CosineEmbedder:
    """Questions (texts ending in '?') get one vector, every other text one at ``cosine``
    from it: a stand-in for an embedder that finds a note's sentences that near."""

    name, dim = "cosine", 2

    def __init__(self, cosine):
        self.cosine = cosine

    def embed_documents(self, texts):
        other = [self.cosine, float(np.sqrt(1 - self.cosine**2))]
        return np.array([[1.0, 0.0] if t.rstrip().endswith("?") else other for t in texts], np.float32)


TOP = note("The Varnholm Cup is a rowing race on the Tarsk.\nIt was first rowed in 1874 by two Ostrelian clubs.", "top")


def test_the_top_prose_note_is_kept_when_nothing_else_is_and_its_best_sentence_is_near():
    question = "Which clubs first raced in the oldest regatta of Dunmere?"  # names no name of the note
    kept = KnowledgeFilter(CosineEmbedder(0.7), note_threshold=0.6).filter(question, [TOP]).kept
    assert [(e.passage.id, e.answer) for e in kept] == [("top", "")] and kept[0].reason.startswith("top note")
    assert abs(kept[0].score - 0.7) < 1e-5
    far = KnowledgeFilter(CosineEmbedder(0.5), note_threshold=0.6).filter(question, [TOP])
    assert not far.kept and [d.passage_id for d in far.dropped] == ["top"]


def test_the_top_note_fallback_takes_only_the_best_ranked_prose_note_and_never_a_one_sentence_fact():
    question = "Which clubs first raced in the oldest regatta of Dunmere?"
    f = KnowledgeFilter(CosineEmbedder(0.9), note_threshold=0.6)
    second = note("The Quennel Works built boats.\nIt closed in 1901.", "second")
    assert [e.passage.id for e in f.filter(question, [TOP, second]).kept] == ["top"]
    fact = note("The Varnholm Cup is rowed on the Tarsk.", "fact")
    assert [e.passage.id for e in f.filter(question, [fact, TOP]).kept] == ["top"]
    assert not f.filter(question, [fact]).kept
    corpus = Passage("c1", TOP.text, kind="passage")  # a corpus passage is no note
    assert all(e.source == "corpus" for e in f.filter(question, [corpus]).kept)


def test_the_top_note_fallback_stays_out_when_a_note_or_user_fact_is_kept():
    question = "What is Maren Olvecka's native language?"
    fact = note("Maren Olvecka's mother tongue is Dunmerish.", "fact")
    kept = KnowledgeFilter(CosineEmbedder(0.9), note_threshold=0.6).filter(question, [fact, TOP]).kept
    assert [e.passage.id for e in kept] == ["fact"]
    with pytest.raises(ConfigError, match="note_threshold"):
        KnowledgeFilter(HashEmbedder(), note_threshold=-2.0)


def test_a_paragraph_whose_fact_sentence_is_of_another_relation_is_read_window_by_window():
    """The fact reading takes the first sentence (mother tongue) and drops it for the
    question's relation; the second sentence bears on the question, which only the window
    reading sees: before, the whole note was dropped."""
    question = "What instrument did Anselm Quist play?"
    prose = note("Anselm Quist's mother tongue is Dunmerish.\nAnselm Quist played the fiddle.")
    f = KnowledgeFilter(MarkerEmbedder("fiddle"), note_threshold=2.0)  # the top-note fallback off
    kept = f.filter(question, [prose]).kept
    assert [e.passage.id for e in kept] == ["n1"] and "bears on the question" in kept[0].reason
    assert not f.filter(question, [note("Anselm Quist's mother tongue is Dunmerish.")]).kept
