import io

from rag.demo import DEMO_CORPUS, run_demo
from rag.testing import HashEmbedder, ScriptedGenerator, prompt_context


def first_context_word(prompt: str) -> str:
    """A stand-in reader: the first word of the first passage shown (after its title)."""
    context = prompt_context(prompt)
    if context is None:
        return "unknown"
    first = context.split("\n")[0]
    body = first.split(". ", 1)[-1]
    return body.split()[0]


def test_demo_shows_citations_and_an_edit_that_changes_then_reverts(tmp_path):
    out = io.StringIO()
    run_demo(out, generator=ScriptedGenerator(first_context_word), corpus=DEMO_CORPUS,
             store_path=tmp_path / "demo", embedder=HashEmbedder(), show_progress=False)
    text = out.getvalue()
    before, after = text.split("== Edit: a note written to memory")
    after, reverted = after.split("== Edit retracted")
    assert "cites [p" in before and "source: memory" not in before
    assert "source: memory" in after and "cites [note-" in after
    assert "source: memory" not in reverted


def test_demo_is_rerunnable_on_the_same_store(tmp_path):
    for _ in range(2):
        out = io.StringIO()
        run_demo(out, generator=ScriptedGenerator(first_context_word), store_path=tmp_path / "demo",
                 embedder=HashEmbedder(), show_progress=False)
    assert "0 added now" in out.getvalue()
    assert "version 3 (update)" in out.getvalue()  # add, retract, then the re-run's update
