"""Command line: ``rag demo``, ``index``, ``ask``, ``edit``, ``eval``, ``attack`` (also ``python -m rag``).

Exit status: 0 on success; 1 when the command finished but skipped input (malformed corpus
records, each reported with file and line); 2 on an error, after one line
``rag: error: ...`` on stderr. Every check of a command's input (paths, options, the store's
records) runs before any model is loaded, so a wrong path fails at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, InputFormatError, RagError

logger = logging.getLogger("rag.cli")

DEFAULT_STORE = Path("indexes") / "default"
EXIT_PARTIAL = 1  # the command finished, but skipped some input
EXIT_ERROR = 2


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--generator", default=None,
                        help="packaged generator (gemma-3-270m, smollm2-135m-instruct), a .gguf file "
                             "or a transformers folder (default: gemma-3-270m)")
    parser.add_argument("--runtime", default="auto", choices=["auto", "transformers", "llama.cpp"],
                        help="generator runtime; auto takes llama.cpp when installed")


def _add_backend_args(parser: argparse.ArgumentParser, *, recorded: bool) -> None:
    then = "; recorded in the store, so later commands use it" if recorded else "; overrides the store's record"
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--qdrant-url", default=None, metavar="URL",
                       help=f"keep the retrieval index in a Qdrant server or cluster (API key: QDRANT_API_KEY){then}")
    group.add_argument("--qdrant-path", type=Path, default=None, metavar="DIR",
                       help=f"keep the retrieval index in Qdrant local mode in DIR{then}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="Retrieval-augmented answers when knowledge conflicts: index a corpus, ask, "
                                "check a claim, edit the memory, evaluate, attack (also `python -m rag`).",
        epilog="Exit status: 0 done; 1 done, but malformed input records were skipped; 2 error.")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars, no info logs, nothing from the model runtimes but errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs (llama.cpp's own lines included)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="ingest a corpus into a store")
    p.add_argument("--corpus", required=True, type=Path,
                   help="BEIR folder (corpus.jsonl), .jsonl file, text file or folder of them")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"store folder (default {DEFAULT_STORE})")
    p.add_argument("--embedder", default=None, help="embedder for a new store (default all-minilm-l6-v2)")
    p.add_argument("--strict", action="store_true", help="reject the whole corpus on a malformed record")
    p.add_argument("--chunk-size", type=int, default=200, help="words per chunk of long documents")
    p.add_argument("--chunk-overlap", type=int, default=40, help="words shared by adjacent chunks")
    p.add_argument("--json", action="store_true", help="print the ingest report as JSON")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="embed over N Ray workers when N > 1 (pip install 'rag-conflicts[ray]'; RAY_ADDRESS "
                        "joins a cluster)")
    _add_backend_args(p, recorded=True)

    p = sub.add_parser("ask", help="answer a question from a store")
    p.add_argument("question")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"store folder (default {DEFAULT_STORE})")
    p.add_argument("--namespace", default="shared", help="the asker's namespace")
    p.add_argument("--user-fact", action="append", default=[], metavar="FACT",
                   help="a fact stated with the question; outranks memory and corpus (repeatable)")
    p.add_argument("--abstain", action="store_true", help="abstain rather than answer from parametric memory alone")
    p.add_argument("-k", type=int, default=5, help="passages retrieved")
    p.add_argument("--json", action="store_true", help="print the answer as a JSON object")
    _add_model_args(p)
    _add_backend_args(p, recorded=False)

    p = sub.add_parser("check", help="is a claim supported, refuted, or without evidence in memory and corpus?")
    p.add_argument("claim")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"store folder (default {DEFAULT_STORE})")
    p.add_argument("--namespace", default="shared", help="the asker's namespace")
    p.add_argument("--user-fact", action="append", default=[], metavar="FACT",
                   help="a fact stated with the claim; outranks memory and corpus (repeatable)")
    p.add_argument("-k", type=int, default=5, help="passages retrieved")
    p.add_argument("--json", action="store_true", help="print the verdict as a JSON object")
    _add_model_args(p)
    _add_backend_args(p, recorded=False)

    _add_edit_parser(sub)

    ev = sub.add_parser("eval", help="evaluations that write a run folder")
    evs = ev.add_subparsers(dest="evaluation", required=True, metavar="EVALUATION")
    p = evs.add_parser("editing", help="edit success, generalisation, locality on an EREN-format file")
    p.add_argument("--data", required=True, type=Path, help="EREN-format JSON (edit_statement, edit_scope, unrelated)")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--limit", type=int, default=None, help="first N edits only")
    p.add_argument("--configs", default="full,filter_off,rewriter_off,arbiter_off,plain_rag",
                   help="comma-separated configurations")
    p.add_argument("--seed", type=int, default=0, help="seed of all randomness (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--json", action="store_true", help="print the run's metrics.json instead of a table")
    p.add_argument("--embedder", default=None, help="embedder (default all-minilm-l6-v2)")
    _add_model_args(p)

    p = evs.add_parser("preference", help="how often the configured source preference is obeyed, per level")
    p.add_argument("--corpus", type=Path, default=None,
                   help="BEIR folder with answers.jsonl to build conflict cases from (default corpora/demo)")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--limit", type=int, default=None, help="at most N questions")
    p.add_argument("--seed", type=int, default=0, help="seed of all randomness (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--json", action="store_true", help="print the run's metrics.json instead of a table")
    p.add_argument("--embedder", default=None, help="embedder (default all-minilm-l6-v2)")
    _add_model_args(p)

    p = evs.add_parser("qa", help="retrieval and answer quality per configuration on a BEIR folder with answers")
    p.add_argument("--corpus", required=True, type=Path,
                   help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv, answers.jsonl")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--store", type=Path, default=None,
                   help="store folder to build or reuse (default OUT/store; reused while corpus and embedder "
                        "match; searched in Qdrant when `rag index --qdrant-*` recorded it)")
    p.add_argument("--limit", type=int, default=None, help="at most N questions, drawn with --seed")
    p.add_argument("--configs", default="all",
                   help="comma-separated, from: plain_rag, full, rewriter_off, filter_off, trigger_off, "
                        "detector_off, arbiter_off (default all)")
    p.add_argument("-k", "--k", type=int, default=10, help="passages retrieved per question (default 10)")
    p.add_argument("--split", default="test", help="qrels/SPLIT.tsv (default test)")
    p.add_argument("--batch-size", type=int, default=8, help="questions answered together")
    p.add_argument("--seed", type=int, default=0, help="seed of all randomness (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--json", action="store_true", help="print metrics.json instead of a table")
    p.add_argument("--embedder", default=None, help="embedder (default all-minilm-l6-v2; hash-384 is a fast fake)")
    _add_model_args(p)

    _add_poisoning_parsers(sub, evs)

    p = sub.add_parser("demo", help="build the demo store and answer questions, before and after an edit")
    p.add_argument("--corpus", type=Path, default=None, help="demo corpus folder (default corpora/demo)")
    p.add_argument("--store", type=Path, default=Path("indexes") / "demo", help="store folder")
    _add_model_args(p)
    return parser


def _add_poisoning_parsers(sub: Any, evs: Any) -> None:
    p = evs.add_parser("poisoning", help="attack success, accuracy and detector quality under corpus poisoning")
    p.add_argument("--targets", required=True, type=Path,
                   help="targets: PoisonedRAG JSON (with --gold), RobustRAG JSON (question, context, "
                        "incorrect_context) or GMTP JSON (query, gt_text, poisoned_docs)")
    p.add_argument("--gold", type=Path, default=None,
                   help="gold passages, one per line, in target order (needed for PoisonedRAG targets)")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--ratios", default="1,2,4,6",
                   help="poisons per target (per gold passage with one gold per target), comma-separated "
                        "(default 1,2,4,6)")
    p.add_argument("--attacks", default="all",
                   help="comma-separated: blackbox,paraphrase,token,published,injection (default all)")
    p.add_argument("--configs", default="all",
                   help="comma-separated configurations and defences: undefended,<signal>,detector,pipeline,"
                        "pipeline_nodetect,pipeline_likelihood,robustrag,trustrag,ragdefender,perplexity (default all)")
    p.add_argument("--innocence", default="all",
                   help="comma-separated innocence sets: typos,world_changed,memory_edit,faq,biomedical,"
                        "non_english,syndicated (default all; '' for none)")
    p.add_argument("--latency-questions", type=int, default=10, metavar="N",
                   help="clean questions timed one at a time with cold caches, per configuration (default 10; 0: no timing)")
    p.add_argument("--corpus", type=Path, default=None, help="optional distractor corpus to add to the store")
    p.add_argument("--limit", type=int, default=None, help="first N targets only")
    p.add_argument("--no-perplexity", dest="perplexity", action="store_false",
                   help="leave the generator's perplexity out of the detector's anomaly signal "
                        "(it then reads subword markers only)")
    p.add_argument("--seed", type=int, default=0, help="seed of all randomness (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--json", action="store_true", help="print the run's metrics.json instead of a table")
    p.add_argument("--embedder", default=None, help="embedder (default all-minilm-l6-v2; hash-384 is a fast fake)")
    _add_model_args(p)

    p = sub.add_parser("attack", help="inject poison passages into a store (or remove them again)")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"store folder (default {DEFAULT_STORE})")
    p.add_argument("--targets", type=Path, help="targets: PoisonedRAG, RobustRAG or GMTP JSON")
    p.add_argument("--gold", type=Path, default=None, help="also add these gold passages (one per line)")
    p.add_argument("--ratio", type=int, default=5, help="poisons per target (default 5)")
    p.add_argument("--attack", default="blackbox", choices=["blackbox", "paraphrase", "token", "published", "injection"],
                   help="how the poisons are made (see rag eval poisoning)")
    p.add_argument("--limit", type=int, default=None, help="first N targets only")
    p.add_argument("--embedder", default=None, help="embedder of a new store (default all-minilm-l6-v2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the token attack")
    p.add_argument("--remove", action="store_true", help="remove every passage injected so far")
    p.add_argument("--json", action="store_true", help="print the injected ids as JSON")


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _eval_poisoning(args: argparse.Namespace, out: Any) -> int:
    from rag.evaluation.attacks import ATTACKS, load_targets
    from rag.evaluation.poisoning import ALL_CONFIGS, INNOCENCE_SETS, check_run, run_poisoning_eval
    from rag.memory.ingest import corpus_files
    from rag.models import DEFAULT_EMBEDDER, load_embedder

    try:
        ratios = [int(r) for r in _split(args.ratios)]
    except ValueError:
        msg = f"--ratios must be comma-separated integers such as 1,2,4,6, got {args.ratios!r}"
        raise ConfigError(msg) from None
    configs = list(ALL_CONFIGS) if args.configs == "all" else _split(args.configs)
    attacks = list(ATTACKS) if args.attacks == "all" else _split(args.attacks)
    innocence = list(INNOCENCE_SETS) if args.innocence == "all" else _split(args.innocence)
    # every check of the input before a model is loaded
    check_run(attacks, configs, innocence, ratios)
    load_targets(args.targets, args.gold, args.limit)
    if args.corpus is not None:
        corpus_files(args.corpus)
    rows = run_poisoning_eval(
        args.targets, args.gold, args.out, embedder=load_embedder(args.embedder or DEFAULT_EMBEDDER),
        generator=_generator(args), ratios=ratios, attacks=attacks, configs=configs,
        innocence=innocence, limit=args.limit, corpus=args.corpus, seed=args.seed,
        perplexity=args.perplexity, latency_questions=args.latency_questions, overwrite=args.overwrite,
        show_progress=not args.quiet)
    if args.json:
        return _print_run_metrics(args.out, out)
    out.write("| config | attack | ratio | asr | accuracy | abstained | detector_f1 | false_positive_rate |\n"
              "|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        cells = [r.get(c) for c in ("asr", "accuracy", "abstained", "detector_f1", "false_positive_rate")]
        out.write(f"| {r['config']} | {r['attack']} | {r['ratio']} | "
                  + " | ".join("-" if v is None else f"{v:.3f}" for v in cells) + " |\n")
    out.write(f"run folder: {args.out}\n")
    return 0


def cmd_attack(args: argparse.Namespace, out: Any) -> int:
    from rag.evaluation.attacks import TokenAttack, inject, load_targets, poison_passages, remove_injected
    from rag.memory.store import DB_NAME, Store
    from rag.models import DEFAULT_EMBEDDER, load_embedder
    from rag.types import Passage

    if args.remove:
        with _open_store(args.store) as store:
            removed = remove_injected(store)
        out.write(json.dumps({"removed": removed}) + "\n" if args.json else f"removed {removed} injected passages\n")
        return 0
    if args.targets is None:
        msg = "rag attack needs --targets FILE (or --remove)"
        raise ConfigError(msg)
    if args.ratio < 1:
        msg = f"--ratio must be a positive integer, got {args.ratio}"
        raise ConfigError(msg)
    targets = load_targets(args.targets, args.gold, args.limit)
    name = Store.embedder_of(args.store) if (args.store / DB_NAME).exists() else args.embedder or DEFAULT_EMBEDDER
    with Store(args.store, load_embedder(name)) as store:
        if args.gold is not None:
            store.add_passages([Passage(f"gold:{t.id}", t.gold, metadata={"target": t.id}) for t in targets],
                               show_progress=False)
        token = TokenAttack(store.embedder, seed=args.seed) if args.attack == "token" else None
        ids = inject(store, poison_passages(targets, args.attack, args.ratio, token_attack=token))
        store.save_indexes()
    if args.json:
        out.write(json.dumps({"attack": args.attack, "ratio": args.ratio, "ids": ids}) + "\n")
    else:
        out.write(f"injected {len(ids)} {args.attack} poison passages ({args.ratio} per target, "
                  f"{len(targets)} targets) into {args.store}; undo with `rag attack --store {args.store} --remove`\n")
    return 0


def _add_edit_parser(sub: Any) -> None:
    edit = sub.add_parser("edit", help="write, update, retract, roll back notes and QA pairs")
    actions = edit.add_subparsers(dest="action", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser, *, who: bool = True) -> None:
        p.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"store folder (default {DEFAULT_STORE})")
        p.add_argument("--json", action="store_true", help="print edits as JSON")
        if who:
            p.add_argument("--author", default="cli", help="recorded author")
            p.add_argument("--reason", default="", help="recorded reason")

    p = actions.add_parser("add", help="write a note (a fact in free text)")
    p.add_argument("text")
    p.add_argument("--namespace", default="shared", help="private namespace, or shared")
    p.add_argument("--key", help="fact key: a later note with the same key supersedes this one")
    common(p)
    p = actions.add_parser("qa", help="write a question -> answer pair")
    p.add_argument("question")
    p.add_argument("answer")
    p.add_argument("--namespace", default="shared")
    common(p)
    p = actions.add_parser("update", help="a new version of a fact")
    p.add_argument("fact_id")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--text", help="new text of a note")
    group.add_argument("--answer", help="new answer of a QA pair")
    common(p)
    p = actions.add_parser("retract", help="take a fact out of answering (history kept)")
    p.add_argument("fact_id")
    common(p)
    p = actions.add_parser("rollback", help="make an earlier version current, or revert the whole store")
    p.add_argument("fact_id", nargs="?", help="the fact to roll back (omit with --to-edit)")
    p.add_argument("--to-version", type=int, help="version of FACT_ID to restore")
    p.add_argument("--to-edit", type=int, help="revert every fact to how it stood after log entry SEQ")
    common(p)
    p = actions.add_parser("history", help="the edit log of a fact, a namespace or the store")
    p.add_argument("fact_id", nargs="?")
    p.add_argument("--namespace", default=None)
    common(p, who=False)


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # The runtimes' own records: their warnings without -q, only their errors with it. Their
    # progress bars are off (rag.models.offline.route_runtime_logs), llama.cpp's lines come at
    # debug level (-v) through rag.models.llama_cpp, and Ray's follow the "ray" level set here.
    for noisy in ("transformers", "sentence_transformers", "huggingface_hub", "httpx", "urllib3", "faiss", "ray"):
        logging.getLogger(noisy).setLevel(logging.ERROR if args.quiet else max(level, logging.WARNING))


def _open_store(path: Path, args: argparse.Namespace | None = None) -> Any:
    """An existing store with its own embedder and its recorded index backend (``--qdrant-*``
    overrides the record)."""
    from rag.integrations.qdrant import open_store
    from rag.memory.store import Store
    from rag.models import load_embedder

    name = Store.embedder_of(path)  # no store: fails here, before the embedder loads
    return open_store(path, lambda: load_embedder(name), url=getattr(args, "qdrant_url", None),
                      path=getattr(args, "qdrant_path", None))


def _generator(args: argparse.Namespace) -> Any:
    from rag.models import DEFAULT_GENERATOR, load_generator

    return load_generator(args.generator or DEFAULT_GENERATOR, runtime=args.runtime)


def cmd_index(args: argparse.Namespace, out: Any) -> int:
    from rag.memory.ingest import Chunker, corpus_files
    from rag.memory.store import DB_NAME, Store
    from rag.models import DEFAULT_EMBEDDER, load_embedder

    chunker = Chunker(args.chunk_size, args.chunk_overlap)
    if args.workers < 1:
        msg = f"--workers must be a positive integer, got {args.workers}"
        raise ConfigError(msg)
    corpus_files(args.corpus)  # a missing or empty corpus path fails before a model loads
    if (args.store / DB_NAME).exists():
        built_with = Store.embedder_of(args.store)
        if args.embedder and args.embedder != built_with:
            msg = f"store {args.store} was built with embedder {built_with!r}, not {args.embedder!r}"
            raise RagError(msg)
    else:
        built_with = args.embedder or DEFAULT_EMBEDDER
    from rag.integrations.qdrant import open_store, record_backend

    with open_store(args.store, lambda: load_embedder(built_with), create=True,
                    url=args.qdrant_url, path=args.qdrant_path) as store:
        progress = None if not args.quiet else False
        if args.workers > 1:
            from rag.integrations.ray import ray_ingest

            report = ray_ingest(store, args.corpus, num_workers=args.workers, strict=args.strict,
                                chunker=chunker, show_progress=progress)
        else:
            report = store.ingest(args.corpus, strict=args.strict, chunker=chunker, show_progress=progress)
        total = len(store)
    if args.qdrant_url or args.qdrant_path:
        record_backend(args.store, url=args.qdrant_url, path=args.qdrant_path)
    if args.json:
        out.write(json.dumps(dict(report.to_dict(), store=str(args.store), total=total)) + "\n")
    else:
        out.write(f"indexed {args.corpus} into {args.store}: {report.added} added, "
                  f"{report.duplicates} duplicates, {report.malformed} malformed skipped; "
                  f"{total} passages in the store\n")
    if report.malformed:
        sys.stderr.write(f"rag: warning: {report.malformed} malformed records skipped, first at "
                         f"{report.problems[0]}\n")
        return EXIT_PARTIAL
    return 0


def cmd_ask(args: argparse.Namespace, out: Any) -> int:
    from rag.memory.store import Store
    from rag.pipeline import Pipeline, PipelineConfig
    from rag.types import Query

    config = PipelineConfig(k=args.k, abstain=args.abstain)
    Store.embedder_of(args.store)  # no store: fails before either model
    generator = _generator(args)  # an unknown model fails here, before the embedder; weights load on first use
    with _open_store(args.store, args) as store:
        pipeline = Pipeline(store, generator, config)
        answer = pipeline.ask(Query(args.question, user_facts=tuple(args.user_fact), namespace=args.namespace))
        if args.json:
            out.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
            return 0
        out.write(f"{answer.text or '(no answer)'}\n  source: {answer.source}\n")
        for i, fact in enumerate(args.user_fact):
            if f"user:{i}" in answer.citations:
                out.write(f"  [user:{i}] {fact}\n")
        for passage in store.get(list(answer.citations)):
            out.write(f"  [{passage.id}] {passage.full_text[:160]}\n")
        for c in answer.conflicts:
            out.write(f"  overrides {c['source']}: {c['answer']}\n")
    return 0


def cmd_check(args: argparse.Namespace, out: Any) -> int:
    from rag.memory.store import Store
    from rag.pipeline import Pipeline, PipelineConfig
    from rag.types import Query

    Store.embedder_of(args.store)  # no store: fails before either model
    generator = _generator(args)
    with _open_store(args.store, args) as store:
        verdict = Pipeline(store, generator, PipelineConfig(k=args.k)).check(
            Query(args.claim, user_facts=tuple(args.user_fact), namespace=args.namespace))
        if args.json:
            out.write(json.dumps(verdict.to_dict(), ensure_ascii=False) + "\n")
            return 0
        out.write(f"{verdict.verdict}\n  source: {verdict.source}\n  reason: {verdict.reason}\n")
        cited = {p.id: p for p in store.get([c for c in verdict.citations if not c.startswith("user:")])}
        for cid, sentence in zip(verdict.citations, verdict.evidence):
            shown = cited[cid].id if cid in cited else cid
            out.write(f"  [{shown}] {sentence[:160]}\n")
        for c in verdict.conflicts:
            out.write(f"  overrides {c['source']} ({c['verdict']}): {c['sentence'][:120]}\n")
    return 0


def cmd_edit(args: argparse.Namespace, out: Any) -> int:
    from rag.memory.editor import KnowledgeEditor

    if args.action == "rollback" and (args.to_edit is None) == (args.fact_id is None or args.to_version is None):
        msg = "rollback needs either FACT_ID --to-version N, or --to-edit SEQ alone"
        raise ConfigError(msg)
    with _open_store(args.store) as store:
        editor = KnowledgeEditor(store)
        who = {"author": args.author, "reason": args.reason} if args.action != "history" else {}
        if args.action == "add":
            edits = [editor.edit(args.text, namespace=args.namespace, key=args.key, **who)]
        elif args.action == "qa":
            edits = [editor.add_qa(args.question, args.answer, namespace=args.namespace, **who)]
        elif args.action == "update":
            edits = [editor.update(args.fact_id, text=args.text, answer=args.answer, **who)]
        elif args.action == "retract":
            edits = [editor.retract(args.fact_id, **who)]
        elif args.action == "rollback":
            edits = (editor.revert_to(args.to_edit, **who) if args.to_edit is not None
                     else [editor.rollback(args.fact_id, args.to_version, **who)])
        else:
            edits = editor.history(args.fact_id, namespace=args.namespace)
    for e in edits:
        if args.json:
            out.write(json.dumps(e.to_dict(), ensure_ascii=False) + "\n")
        else:
            what = e.content.get("text") or (f"{e.content['question']} -> {e.content['answer']}" if e.content else "(retracted)")
            out.write(f"#{e.seq} {e.time} {e.fact_id} v{e.version} {e.op} [{e.namespace}] {e.author}: {what}"
                      + (f"  ({e.reason})" if e.reason else "") + "\n")
    return 0


def _eval_qa(args: argparse.Namespace, out: Any) -> int:
    from rag.evaluation.qa import check_qa_folder, parse_configs, run_qa_eval
    from rag.models import DEFAULT_EMBEDDER, load_embedder

    configs = parse_configs(args.configs)
    check_qa_folder(args.corpus, args.split)  # before loading models: a wrong folder fails at once
    results = run_qa_eval(args.corpus, args.out, embedder=load_embedder(args.embedder or DEFAULT_EMBEDDER),
                          generator=_generator(args), store=args.store, limit=args.limit, configs=configs,
                          k=args.k, split=args.split, seed=args.seed, batch_size=args.batch_size,
                          overwrite=args.overwrite, show_progress=not args.quiet)
    if args.json:
        out.write((args.out / "metrics.json").read_text(encoding="utf-8"))
        return 0
    at = 5 if args.k >= 5 else args.k
    cols = ["em", "f1", "contains", f"recall@{at}", f"mrr@{at}", "latency_ms_p50", "questions_per_s"]
    out.write("| config | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n")
    for name, m in results.items():
        out.write(f"| {name} | " + " | ".join(f"{m[c]:.3f}" for c in cols) + " |\n")
    out.write(f"run folder: {args.out}\n")
    return 0


def _check_eval_inputs(args: argparse.Namespace) -> None:
    """The checks of an evaluation's input that need no model, run before one loads."""
    for option in ("data", "targets", "gold", "corpus"):
        path = getattr(args, option, None)
        if path is not None and not path.exists():
            msg = f"--{option} {path} does not exist"
            raise InputFormatError(msg)
    if args.out.exists() and not args.out.is_dir():
        msg = f"run folder {args.out} exists and is not a folder"
        raise ConfigError(msg)
    if not args.overwrite and args.out.is_dir() and any(args.out.iterdir()):
        msg = f"run folder {args.out} is not empty; give a new --out folder or --overwrite"
        raise ConfigError(msg)
    if args.evaluation == "editing":
        from rag.evaluation.editing import CONFIGS

        unknown = [c for c in _split(args.configs) if c not in CONFIGS]
        if unknown:
            msg = f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}"
            raise ConfigError(msg)


def cmd_eval(args: argparse.Namespace, out: Any) -> int:
    from rag.models import DEFAULT_EMBEDDER, load_embedder

    _check_eval_inputs(args)
    if args.evaluation == "qa":
        return _eval_qa(args, out)
    if args.evaluation == "poisoning":
        return _eval_poisoning(args, out)
    embedder = load_embedder(args.embedder or DEFAULT_EMBEDDER)
    if args.evaluation == "preference":
        from rag.demo import DEMO_CORPUS
        from rag.evaluation.preference import run_preference_eval

        metrics = run_preference_eval(args.corpus or DEMO_CORPUS, args.out, embedder=embedder,
                                      generator=_generator(args), limit=args.limit, seed=args.seed,
                                      overwrite=args.overwrite, show_progress=not args.quiet)
        if args.json:
            return _print_run_metrics(args.out, out)
        out.write("| metric | value |\n|---|---|\n")
        for key, value in metrics.items():
            if key.startswith("obeyed") or key in ("abstained", "cases"):
                out.write(f"| {key} | {value:.3f} |\n" if isinstance(value, float) else f"| {key} | {value} |\n")
        out.write(f"run folder: {args.out}\n")
        return 0
    from rag.evaluation.editing import run_editing_eval

    results = run_editing_eval(args.data, args.out, embedder=embedder, generator=_generator(args), limit=args.limit,
                               configs=_split(args.configs), seed=args.seed, overwrite=args.overwrite, show_progress=not args.quiet)
    if args.json:
        return _print_run_metrics(args.out, out)
    cols = [c for c in ("edit_success", "generalization", "locality", "stability", "edit_leak", "consistency",
                        "not_enough_evidence", "questions_per_s", "latency_ms_p50")
            if any(c in m and m[c] == m[c] for m in results.values())]  # nan: the file cannot measure it
    out.write("| config | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n")
    for name, m in results.items():
        out.write(f"| {name} | " + " | ".join(f"{m[c]:.3f}" for c in cols) + " |\n")
    out.write(f"run folder: {args.out}\n")
    return 0


def _print_run_metrics(run_folder: Path, out: Any) -> int:
    """``--json`` of an evaluation: the run folder's ``metrics.json``, as written."""
    out.write((Path(run_folder) / "metrics.json").read_text(encoding="utf-8").rstrip("\n") + "\n")
    return 0


def cmd_demo(args: argparse.Namespace, out: Any) -> int:
    from rag.demo import DEMO_CORPUS, run_demo

    if not ((args.corpus or DEMO_CORPUS) / "corpus.jsonl").is_file():
        msg = f"demo corpus not found at {args.corpus or DEMO_CORPUS}; pass --corpus with the corpora/demo folder"
        raise InputFormatError(msg)
    run_demo(out, corpus=args.corpus, store_path=args.store, generator=_generator(args),
             show_progress=not args.quiet)
    return 0


COMMANDS = {"index": cmd_index, "ask": cmd_ask, "check": cmd_check, "edit": cmd_edit, "eval": cmd_eval, "demo": cmd_demo,
            "attack": cmd_attack}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():
            return COMMANDS[args.command](args, sys.stdout)
    except (RagError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"rag: error: {message}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("rag: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
