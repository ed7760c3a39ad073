from rag.stages.candidates import candidates, is_yes_no


def test_names_numbers_and_dates_are_candidates_with_their_shorter_runs():
    found = candidates("Who recorded the song?", ["It was recorded by Mira Sendak on March 2, 2011."])
    assert {"Mira Sendak", "Mira", "Sendak", "March 2, 2011", "2011"} <= set(found)


def test_a_joiner_inside_a_name_and_an_initial_keep_the_run_whole():
    found = candidates("Who founded it?", ["The Bank of Ostrelia was founded by Tomas K. Hallek."])
    assert "Bank of Ostrelia" in found and "Tomas K. Hallek" in found
    assert "of Ostrelia" not in found  # a joiner opens no span


def test_lower_case_phrases_stop_at_stop_words_and_punctuation():
    found = candidates("Where are the mitochondria?", ["They sit in the midpiece, near the tail."])
    assert "midpiece" in found and "tail" in found
    assert "midpiece near" not in found and "the midpiece" not in found


def test_a_number_with_its_counted_noun():
    assert "41 lanterns" in candidates("How many?", ["The hall held 41 lanterns."])


def test_spans_of_question_words_only_and_reference_markers_are_left_out():
    found = candidates("Where is the Eiffel Tower?", ["The Eiffel Tower is in Paris.[12]"])
    assert "Eiffel Tower" not in found and "12" not in found
    assert "Paris" in found


def test_yes_no_questions_get_yes_and_no_first():
    assert is_yes_no("Is Marrowgate the capital?") and not is_yes_no("Which city is the capital?")
    assert candidates("Is Marrowgate the capital?", ["Marrowgate is the capital."])[:2] == ["yes", "no"]
    assert "yes" not in candidates("Which city is the capital?", ["Marrowgate is the capital."])


def test_each_candidate_once_in_order_of_appearance():
    found = candidates("Who?", ["Ada Finch met Osk.", "ada finch left."])
    assert found.index("Ada Finch") < found.index("Osk")
    assert [c.lower() for c in found].count("ada finch") == 1
