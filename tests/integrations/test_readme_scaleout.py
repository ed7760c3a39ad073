"""The README's 'Beyond one machine' section matches the code: its Python compiles, its
command lines parse, and the QdrantIndex signature it quotes is the real one."""

from __future__ import annotations

import inspect
import re
import shlex
from pathlib import Path

import pytest

from rag import cli

ROOT = Path(__file__).resolve().parent.parent.parent
HEADING = "## Beyond one machine"


def section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split(f"\n{HEADING}\n", 1)[1].split("\n## ", 1)[0]


def test_python_examples_compile():
    blocks = re.findall(r"```python\n(.*?)\n```", section(), flags=re.S)
    assert len(blocks) == 2
    for code in blocks:
        compile(code, "README.md", "exec")
    assert "ray_ingest(" in blocks[1] and "ray_answer_many(" in blocks[1] and "QdrantIndex(" in blocks[0]


def test_rag_command_lines_parse():
    lines = [line.split("#")[0].strip() for block in re.findall(r"```bash\n(.*?)\n```", section(), flags=re.S)
             for line in block.splitlines()]
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("rag ")]
    assert len(commands) == 3
    parser = cli.build_parser()
    parsed = [parser.parse_args(argv) for argv in commands]
    assert parsed[0].qdrant_url == "http://localhost:6333" and parsed[2].workers == 4


def test_quoted_qdrant_signature_is_the_real_one():
    pytest.importorskip("qdrant_client")
    from rag.integrations.qdrant import QdrantIndex

    quoted = re.search(r"`QdrantIndex\((.*?)\)`", section(), flags=re.S).group(1)
    quoted = " ".join(quoted.split())
    parts = []
    for p in inspect.signature(QdrantIndex).parameters.values():
        if p.kind is p.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        parts.append(f"{p.name}={p.default!r}" if p.default is not p.empty else p.name)
    assert quoted == ", ".join(parts)
