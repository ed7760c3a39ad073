"""Aligned differences of a claim and a sentence, and the number values they state."""

from __future__ import annotations

import pytest

from rag.stages.claim_diff import Difference, differences, numbers, other_value


def test_differences_align_the_shared_words_and_keep_the_blocks():
    diffs = differences("The Varnholm Bridge lies in the western part of Ostrelia.",
                        "Varnholm Bridge is in the eastern part of Ostrelia.")
    assert [(d.claim_span, d.sentence_span) for d in diffs] == [("lies", "is"), ("western", "eastern")]
    assert diffs[1].prefix == "The Varnholm Bridge lies in the" and diffs[1].suffix == "part of Ostrelia."


def test_function_words_negations_and_suffixes_are_no_difference():
    assert differences("Orla Venn isn't the member of Kestrel.", "Orla Venn is not a members of Kestrel.") == []
    assert [d.claim_span for d in differences("Orla plays cello.", "Orla played the viola.")] == ["cello"]


@pytest.mark.parametrize(("text", "values"), [
    ("three prizes", {3}), ("the 22nd day of 1917", {22, 1917}), ("no number", set()),
    ("born 22.9.1917", None), ("the T2 sequel", None),
])
def test_numbers_reads_plain_numbers_and_refuses_dates_and_codes(text, values):
    assert numbers(text) == values


def test_other_value_needs_a_number_on_both_sides_not_stated_in_the_sentence():
    sentence = "Orla Venn won two prizes in 1990."
    assert other_value(Difference("three", "two", "Orla Venn won", "prizes in 1990."), sentence)
    assert not other_value(Difference("1990", "two", "Orla Venn won", ""), sentence)  # 1990 is stated
    assert not other_value(Difference("many", "two", "Orla Venn won", "prizes in 1990."), sentence)
    assert not other_value(Difference("three", "", "Orla Venn won", "prizes in 1990."), sentence)
