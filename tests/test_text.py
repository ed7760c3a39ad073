import doctest

import pytest

import rag.text
from rag.text import answer_words, name_words, same_answer, stems, words


@pytest.mark.parametrize(("a", "b"), [
    ("Varnholm", "Varnholm, Ostrelia"),     # a qualifier added
    ("The Grey Sea", "grey sea"),           # case and articles
    ("Ostrélia", "Ostrelia"),               # accents
    ("H. Ada Quell", 'H. Ada "Ostra" Quell'),  # a nickname inside, in order
    ("17 days", "seventeen days"),          # a number word
    ("The Who", "Who"),                     # an answer of stopwords only
])
def test_same_answer_holds_up_to_form_and_qualifiers(a, b):
    assert same_answer(a, b) and same_answer(b, a)


@pytest.mark.parametrize(("a", "b"), [
    ("Varnholm", "Duskmere"),
    ("", "Duskmere"),                       # an empty answer agrees with nothing
    ("of", "University of Varnholm"),       # a stopword is no answer inside another
    ("Varnholm beat Duskmere", "Duskmere beat Varnholm"),  # the same words in another order
    ("23", "24"),
])
def test_same_answer_tells_other_answers_apart(a, b):
    assert not same_answer(a, b) and not same_answer(b, a)


def test_answer_words_are_content_words_with_digits_for_number_words():
    assert answer_words("The three Graces") == ("3", "graces")
    assert answer_words("the") == ()


def test_words_stems_and_names():
    assert words("Déjà vu, 1887!") == ["deja", "vu", "1887"]
    assert stems("Varnholm plays") == ["varnholm", "play"]
    assert name_words("Where did Ada Quell of Varnholm go?") == ["Ada", "Quell", "Varnholm"]


def test_docstring_examples_run():
    assert doctest.testmod(rag.text).failed == 0
