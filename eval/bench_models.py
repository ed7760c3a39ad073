"""Benchmark the offline models on this machine.

Measures, for the embedder: sentences/s at several batch sizes and load time; for each
generator model and each installed runtime: cold load (first ever: GGUF assembly and
dequantisation, into an empty cache) and warm load, prompt (prefill) tokens/s, decode
tokens/s, latency of one short answer, and batched short answers/s.

    python eval/bench_models.py [--out eval/results/bench_models.json] [--skip-cold]
        [--models gemma-3-270m,smollm2-135m-instruct] [--runtimes transformers,llama.cpp]

Prints markdown tables and writes JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, table, timed, write_json  # noqa: E402

SENTENCES = [
    f"Passage {i}: the town of Marrowgate lies on the river Osk and was founded in {1200 + i}."
    for i in range(512)
]
SHORT_PROMPT = ("Context: The capital of Veldoria is Marrowgate, a town on the river Osk.\n"
                "Question: What is the capital of Veldoria?\nAnswer:")
LONG_PROMPT = "Once upon a time, in a small village by the sea, there lived"


def bench_embedder() -> dict:
    from rag.models import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(show_progress=False)
    _, load_s = timed(emb._load)
    emb.embed_documents(SENTENCES[:32])  # warm-up
    rows = {}
    for bs in (32, 64, 128):
        emb.batch_size = bs
        _, secs = timed(lambda: emb.embed_documents(SENTENCES))
        rows[f"sentences_per_s_bs{bs}"] = len(SENTENCES) / secs
    _, q_secs = timed(lambda: [emb.embed_query(s) for s in SENTENCES[:50]])
    return {"model": emb.name, "load_s": load_s, "query_ms": 1000 * q_secs / 50, **rows}


def make_generator(model: str, runtime: str):
    from rag.models import LlamaCppGenerator, TransformersGenerator

    return TransformersGenerator(model) if runtime == "transformers" else LlamaCppGenerator(model)


def bench_generator(model: str, runtime: str, cold: bool) -> dict:
    row: dict = {"model": model, "runtime": runtime}
    if cold:
        with tempfile.TemporaryDirectory() as tmp:
            old = os.environ.get("RAG_CACHE_DIR")
            os.environ["RAG_CACHE_DIR"] = tmp
            try:
                gen = make_generator(model, runtime)
                _, row["cold_load_s"] = timed(gen._load)
            finally:
                if old is None:
                    os.environ.pop("RAG_CACHE_DIR")
                else:
                    os.environ["RAG_CACHE_DIR"] = old
    gen = make_generator(model, runtime)
    _, row["warm_load_s"] = timed(gen._load)
    gen.generate([SHORT_PROMPT], max_new_tokens=4)  # warm-up

    prompt_tokens = gen.count_tokens(SHORT_PROMPT)
    one = [timed(lambda: gen.generate([SHORT_PROMPT], max_new_tokens=1, stop=()))[1] for _ in range(3)]
    row["prompt_tokens_per_s"] = prompt_tokens / median(one)

    out, long_s = timed(lambda: gen.generate([LONG_PROMPT], max_new_tokens=64, stop=()))
    new_tokens = max(2, gen.count_tokens(out[0]))
    row["decode_tokens_per_s"] = (new_tokens - 1) / max(1e-6, long_s - median(one))

    answers, lat = [], []
    for _ in range(5):
        ans, secs = timed(lambda: gen.generate([SHORT_PROMPT], max_new_tokens=24))
        answers.append(ans[0])
        lat.append(secs)
    row["short_answer_ms"] = 1000 * median(lat)
    row["short_answer"] = answers[0]
    batch = [SHORT_PROMPT.replace("Veldoria", f"Veldoria-{i}") for i in range(16)]
    _, batch_s = timed(lambda: gen.generate(batch, max_new_tokens=16))
    row["batched_answers_per_s"] = len(batch) / batch_s
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("eval/results/bench_models.json"))
    parser.add_argument("--skip-cold", action="store_true", help="skip cold loads (each dequantises anew)")
    parser.add_argument("--models", default="gemma-3-270m,smollm2-135m-instruct")
    parser.add_argument("--runtimes", default="transformers,llama.cpp")
    args = parser.parse_args(argv)

    from rag.models.offline import set_offline

    set_offline()
    emb = bench_embedder()
    gens = []
    for runtime in args.runtimes.split(","):
        if runtime == "llama.cpp" and importlib.util.find_spec("llama_cpp") is None:
            sys.stderr.write("llama-cpp-python not installed: skipping the llama.cpp runtime\n")
            continue
        for model in args.models.split(","):
            gens.append(bench_generator(model, runtime, cold=not args.skip_cold))
    result = {"machine": machine(), "torch_threads": _torch_threads(), "embedder": emb, "generators": gens}
    write_json(args.out, result)
    sys.stdout.write("## Embedder\n\n" + table([emb], list(emb)) + "\n\n## Generators\n\n")
    cols = ["model", "runtime", "cold_load_s", "warm_load_s", "prompt_tokens_per_s", "decode_tokens_per_s",
            "short_answer_ms", "batched_answers_per_s", "short_answer"]
    sys.stdout.write(table(gens, cols) + f"\n\nJSON: {args.out}\n")
    return 0


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    sys.exit(main())
