"""The README's LangChain example runs as written (in a copy of the repository's layout)."""

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Use it with LangChain"


def langchain_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n{HEADING}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)\n```", section, flags=re.S)[0]


def test_section_follows_the_python_section_and_its_example_compiles():
    headings = re.findall(r"^## .*$", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.M)
    assert headings[headings.index("## Use it from Python") + 1] == HEADING
    code = langchain_example()
    compile(code, "README.md", "exec")
    for name in ("StoreRetriever(", "PipelineRunnable(", "load_generator()", "LangChainGenerator("):
        assert name in code
    # The slow test runs the example in a temporary folder; every path in it must be relative.
    paths = re.findall(r"Store\(\"([^\"]+)\"|ingest\(\"([^\"]+)\"", code)
    assert paths and all(not Path(p).is_absolute() for pair in paths for p in pair if p)


@pytest.mark.slow
def test_langchain_example_runs(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "corpora" / "demo", tmp_path / "corpora" / "demo")
    monkeypatch.chdir(tmp_path)
    exec(compile(langchain_example(), "README.md", "exec"), {"__name__": "readme"})  # noqa: S102
    out = capsys.readouterr().out.splitlines()
    assert (tmp_path / "indexes" / "langchain" / "store.sqlite").exists()
    (retrieved, alice), context, (answer, source, user, batch) = out[:2], out[2:-4], out[-4:]
    assert "p0538" in retrieved and "Katarina Tomasek" in retrieved and "Vera Holm" not in retrieved
    assert "Vera Holm" in alice
    assert any("River Vessik" in line for line in context)
    assert (answer, source, user) == ("Katarina Tomasek", "memory", "Ana Lind")
    assert "Paris" in batch and "Shakespeare" in batch
