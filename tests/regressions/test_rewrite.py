"""Query rewriting: comparison questions as once misparsed on development data."""

from rag.stages.rewrite import comparison


def test_a_comparison_without_a_comma_and_with_a_spaced_question_mark_is_parsed():
    """Options are found when no comma sets them off and the question mark stands apart
    ("Who is younger A or B ?"), as user-typed questions often are."""
    assert comparison("Who is younger Liesl Varga or Pell Harwin ?").options == ("Liesl Varga", "Pell Harwin")
