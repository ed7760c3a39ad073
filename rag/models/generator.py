"""Generator runtimes: transformers + torch (always there) and llama.cpp (optional extra).

Both load GGUF files; the transformers runtime also loads any local transformers folder.
Loading a GGUF through transformers dequantises it, which takes tens of seconds, so the
dequantised weights are cached under ``<cache>/transformers/<sha256>-<dtype>`` and later
loads take seconds.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, MissingDependencyError, ModelLoadError
from rag.models.offline import (
    DEFAULT_GENERATOR,
    GENERATORS,
    cache_dir,
    dequantisation_bar,
    generator_gguf,
    route_runtime_logs,
    set_offline,
    sha256_file,
)
from rag.protocols import ContinuationScore

logger = logging.getLogger(__name__)
_llama_logger = logging.getLogger("rag.models.llama_cpp")
_llama_log: list[Any] = []  # the installed callback: llama.cpp keeps only a raw pointer to it

RUNTIMES = ("auto", "transformers", "llama.cpp")


def _route_llama_logs() -> None:
    """Send llama.cpp's log lines to the logger ``rag.models.llama_cpp`` at debug level.

    ``verbose=False`` silences only the model load; llama.cpp still writes lines such as
    ``llama_kv_cache_iswa: using full-size SWA cache`` to stderr when a context is made.
    Call after importing ``llama_cpp``, whose own callback this replaces.
    """
    if _llama_log:
        return
    import ctypes

    import llama_cpp

    pending: list[str] = []  # llama.cpp sends a line in pieces

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes | None, user_data: Any) -> None:
        pending.append((text or b"").decode("utf-8", errors="replace"))
        if pending[-1].endswith("\n"):
            line = "".join(pending).rstrip()
            pending.clear()
            if line:
                _llama_logger.debug("%s", line)

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _llama_log.append(callback)
DTYPES = ("float32", "bfloat16")


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A resolved model: a GGUF file or a transformers folder, and whether it chats."""

    name: str
    path: Path
    is_gguf: bool
    chat: bool | None  # None: decide from the tokenizer's chat template


def resolve_model(model: str | Path) -> ModelFile:
    """Turn a packaged model name, a ``.gguf`` path or a model folder into a :class:`ModelFile`.

    Raises:
        ConfigError: ``model`` is none of those.
        MissingDependencyError: a packaged model's package is not installed.
    """
    ref = str(model)
    if ref in GENERATORS:
        return ModelFile(ref, generator_gguf(ref), True, GENERATORS[ref].chat)
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelFile(path.stem, path, True, None)
    if path.is_dir() and (path / "config.json").exists():
        return ModelFile(path.name, path, False, None)
    if path.is_dir() and len(ggufs := sorted(path.glob("*.gguf"))) == 1:
        return ModelFile(ggufs[0].stem, ggufs[0], True, None)
    msg = (
        f"generator model {ref!r} is not a packaged model ({', '.join(GENERATORS)}), "
        "a .gguf file, or a folder holding config.json or a single .gguf file"
    )
    raise ConfigError(msg)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first stop string and strip it. Leading white space is not a
    stop: models often open an answer with a newline."""
    text = text.lstrip()
    end = len(text)
    for s in stop:
        if s and (i := text.find(s)) != -1:
            end = min(end, i)
    return text[:end].strip()


def check_continuation_items(items: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[str, list[str]]]:
    """Check the argument of ``continuation_logprobs`` and return it as lists.

    Raises:
        ConfigError: ``items`` is not a sequence of ``(prompt, continuations)`` pairs, a
            prompt is empty, or a continuation is empty or only white space.
    """
    if isinstance(items, str | tuple) and items and isinstance(items[0], str):
        msg = "items must be a sequence of (prompt, continuations) pairs: wrap the pair in a list"
        raise ConfigError(msg)
    checked = []
    for n, item in enumerate(items):
        if not (isinstance(item, tuple | list) and len(item) == 2):
            msg = f"item {n} must be a (prompt, continuations) pair, got {type(item).__name__}"
            raise ConfigError(msg)
        prompt, continuations = item
        if not isinstance(prompt, str) or not prompt:
            msg = f"item {n}: the prompt must be a non-empty string (its last token predicts the first continuation token)"
            raise ConfigError(msg)
        if isinstance(continuations, str):
            msg = f"item {n}: continuations must be a sequence of strings, not a single string: wrap it in a list"
            raise ConfigError(msg)
        continuations = list(continuations)
        bad = [c for c in continuations if not isinstance(c, str) or not c.strip()]
        if bad:
            msg = f"item {n}: every continuation must be a string holding text, got {bad[0]!r}"
            raise ConfigError(msg)
        checked.append((prompt, continuations))
    return checked


def continuation_spans(prompt_ids: Sequence[int], full_ids: Sequence[Sequence[int]]) -> tuple[int, list[int]]:
    """Where the scored tokens start, per continuation, and the prefix all of them share.

    A continuation's scored tokens are those of ``tokenize(prompt + continuation)`` after the
    longest start it has in common with ``tokenize(prompt)``: where the two merge across the
    boundary, the merged token counts as the continuation's. Returns ``(shared, starts)``:
    ``shared`` tokens are the same for every continuation and end before every scored token.

    Raises:
        ConfigError: a continuation would change the prompt's first token (nothing before it
            to predict it from).
    """
    starts = []
    for full in full_ids:
        k = 0
        while k < min(len(prompt_ids), len(full)) and prompt_ids[k] == full[k]:
            k += 1
        if k == 0:
            msg = "a continuation changes the prompt's first token: give the prompt some text before it"
            raise ConfigError(msg)
        starts.append(min(k, len(full)))
    return (min(starts) if starts else len(prompt_ids)), starts


def continuation_trie(paths: Sequence[Sequence[int]]) -> list[tuple[int, int, tuple[int, ...]]]:
    """The token tree of continuations that run side by side: ``(token, depth, sequences)``
    per node, each node after its parent, where ``sequences`` are the 1-based indexes of the
    paths through the node (path ``k`` is sequence ``k + 1`` of the batch). Tokens that
    several paths start with alike are evaluated once, for all of them: the years 1891 and
    1892 share all but their last digit.

    Example:
        >>> continuation_trie([[5, 7], [5, 8], [6]])
        [(5, 0, (1, 2)), (7, 1, (1,)), (8, 1, (2,)), (6, 0, (3,))]
    """
    nodes: list[tuple[int, int, list[int]]] = []
    index: dict[tuple[int, int], int] = {}  # (parent node, token) -> node
    for seq, path in enumerate(paths, start=1):
        parent = -1
        for depth, token in enumerate(path):
            node = index.get((parent, token))
            if node is None:
                node = index[(parent, token)] = len(nodes)
                nodes.append((token, depth, []))
            nodes[node][2].append(seq)
            parent = node
    return [(token, depth, tuple(seqs)) for token, depth, seqs in nodes]


def check_keep(keep: int | None) -> None:
    """Raises ConfigError unless ``keep`` is ``None`` or a positive integer."""
    if keep is not None and (not isinstance(keep, int) or keep < 1):
        msg = f"keep must be a positive integer or None, got {keep!r}"
        raise ConfigError(msg)


def kept_continuations(first_logprobs: Sequence[float], keep: int | None) -> list[int]:
    """Indexes of the continuations scored in full: all, or the ``keep`` whose first token
    is likeliest (earlier ones first among equals), in their original order. A sum of
    log-probabilities never exceeds its first term, so this prunes the unlikely cheaply."""
    order = range(len(first_logprobs))
    if keep is None or keep >= len(first_logprobs):
        return list(order)
    return sorted(sorted(order, key=lambda i: -first_logprobs[i])[:keep])


def _log_softmax(logits: Any) -> Any:
    import numpy as np

    logits = np.asarray(logits, dtype=np.float32)
    top = logits.max(axis=-1, keepdims=True)
    return logits - (np.log(np.exp(logits - top).sum(axis=-1, keepdims=True)) + top)


def _check_generate_args(prompts: Sequence[str], max_new_tokens: int) -> None:
    if isinstance(prompts, str):
        msg = "prompts must be a sequence of strings, not a single string: wrap it in a list"
        raise ConfigError(msg)
    if max_new_tokens < 1:
        msg = f"max_new_tokens must be a positive integer, got {max_new_tokens}"
        raise ConfigError(msg)


class TransformersGenerator:
    """A causal language model run by transformers on the CPU, greedy decoding.

    Args:
        model: A packaged model name, a ``.gguf`` file or a local transformers folder.
        dtype: ``float32`` or ``bfloat16`` (faster on CPUs with bf16 support).
        chat: Wrap prompts in the tokenizer's chat template; ``None`` decides from the model.
        batch_size: Prompts per forward pass in :meth:`generate`.
        cache: Cache dequantised GGUF weights (keyed by the file's sha256).

    Example:
        >>> gen = TransformersGenerator("gemma-3-270m")   # doctest: +SKIP
        >>> gen.generate(["Question: What is the capital of France?\\nAnswer:"])  # doctest: +SKIP
        ['Paris']
    """

    runtime = "transformers"

    def __init__(
        self,
        model: str | Path = DEFAULT_GENERATOR,
        *,
        dtype: str = "float32",
        chat: bool | None = None,
        batch_size: int = 8,
        cache: bool = True,
    ) -> None:
        if dtype not in DTYPES:
            msg = f"dtype must be one of {DTYPES}, got {dtype!r}"
            raise ConfigError(msg)
        if batch_size < 1:
            msg = f"batch_size must be a positive integer, got {batch_size}"
            raise ConfigError(msg)
        self.model_file = resolve_model(model)
        self.dtype = dtype
        self.batch_size = batch_size
        self.cache = cache
        self._chat = chat if chat is not None else self.model_file.chat
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.model_file.name

    @property
    def chat(self) -> bool:
        self._load()
        return bool(self._chat)

    def _cached_folder(self) -> Path:
        digest = sha256_file(self.model_file.path)
        return cache_dir() / "transformers" / f"{digest}-{self.dtype}"

    def _load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            set_offline()
            if importlib.util.find_spec("gguf") is None or importlib.util.find_spec("accelerate") is None:
                msg = "loading GGUF files with transformers needs `pip install gguf accelerate`"
                raise MissingDependencyError(msg)
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            route_runtime_logs()
            dtype = getattr(torch, self.dtype)
            mf = self.model_file
            try:
                if not mf.is_gguf:
                    tok = AutoTokenizer.from_pretrained(str(mf.path))
                    model = AutoModelForCausalLM.from_pretrained(str(mf.path), dtype=dtype)
                elif self.cache and (folder := self._cached_folder()).exists():
                    logger.info("loading cached weights of %s from %s", mf.name, folder)
                    tok = AutoTokenizer.from_pretrained(str(folder))
                    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
                else:
                    logger.info("dequantising %s (first load; cached afterwards)", mf.path)
                    with dequantisation_bar(logger.isEnabledFor(logging.INFO)):
                        tok = AutoTokenizer.from_pretrained(str(mf.path.parent), gguf_file=mf.path.name)
                        model = AutoModelForCausalLM.from_pretrained(
                            str(mf.path.parent), gguf_file=mf.path.name, dtype=dtype
                        )
                    if self.cache:
                        self._save_cache(model, tok, self._cached_folder())
            except (OSError, ValueError, RuntimeError) as exc:
                msg = f"could not load generator {mf.name!r} from {mf.path}: {exc}"
                raise ModelLoadError(msg) from exc
            model.eval()
            tok.padding_side = "left"
            if tok.pad_token_id is None:
                tok.pad_token = tok.eos_token
            if self._chat is None:
                self._chat = bool(getattr(tok, "chat_template", None))
            self._tokenizer, self._model = tok, model

    @staticmethod
    def _save_cache(model: Any, tok: Any, folder: Path) -> None:
        # A GGUF-quantised model refuses save_pretrained; the weights are plain tensors by now.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            delattr(model.config, "quantization_config")
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".partial-"))
        try:
            model.save_pretrained(str(tmp))
            tok.save_pretrained(str(tmp))
            os.replace(tmp, folder)
        except OSError:
            logger.warning("could not cache dequantised weights in %s", folder, exc_info=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def format_prompt(self, prompt: str) -> str:
        """The text the model sees: the prompt itself, or wrapped in the chat template."""
        self._load()
        if not self._chat:
            return prompt
        return self._tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 32,
        stop: Sequence[str] = ("\n",),
    ) -> list[str]:
        _check_generate_args(prompts, max_new_tokens)
        if not prompts:
            return []
        self._load()
        import torch
        from transformers import StoppingCriteriaList

        texts = [self.format_prompt(p) for p in prompts]
        # Batches of similar length waste less compute on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[str] = [""] * len(texts)
        tok = self._tokenizer
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True,
                      add_special_tokens=not self._chat)
            stops = [s for s in stop if s]
            criteria = [_StopAfterText(tok, enc["input_ids"].shape[1], stops)] if stops else []
            with torch.inference_mode():
                gen = self._model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    stopping_criteria=StoppingCriteriaList(criteria),
                    pad_token_id=tok.pad_token_id,
                )
            new_tokens = gen[:, enc["input_ids"].shape[1] :]
            for i, row in zip(idx, tok.batch_decode(new_tokens, skip_special_tokens=True)):
                out[i] = cut_at_stop(row, stop)
        return out

    def count_tokens(self, text: str) -> int:
        self._load()
        return len(self._tokenizer(text)["input_ids"])

    def token_logprobs(self, texts: Sequence[str], *, max_tokens: int = 96) -> list[Any]:
        """Per text, the log-probability of each token after the first given those before
        it (plain text, no chat template; cut at ``max_tokens``). Implements
        :class:`~rag.protocols.Scorer`, which the poison detector reads perplexity with."""
        if isinstance(texts, str):
            msg = "texts must be a sequence of strings, not a single string: wrap it in a list"
            raise ConfigError(msg)
        if not texts:
            return []
        self._load()
        import numpy as np
        import torch

        tok = self._tokenizer
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Any] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            # right padding: positions of real tokens then start at 0 whatever the batch
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_tokens, padding_side="right")
            with torch.inference_mode():
                logits = self._model(**enc).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            targets = enc["input_ids"][:, 1:]
            picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            lengths = enc["attention_mask"].sum(dim=1).tolist()
            for row, i in enumerate(idx):
                out[i] = picked[row, : max(0, int(lengths[row]) - 1)].numpy().astype(np.float32)
        return out

    def _cache_arg(self) -> str:
        # transformers 5.25 renamed forward's past_key_values to cache
        import inspect

        return "cache" if "cache" in inspect.signature(self._model.forward).parameters else "past_key_values"

    def continuation_logprobs(
        self, items: Sequence[tuple[str, Sequence[str]]], *, keep: int | None = None
    ) -> list[list[ContinuationScore]]:
        """Per ``(prompt, continuations)`` item, the summed log-probability of each
        continuation's tokens after the prompt, and their count (plain text, no chat
        template); with ``keep``, only the ``keep`` continuations of an item whose first
        token is likeliest are scored in full, the others score ``-inf``. Implements
        :class:`~rag.protocols.Scorer`.

        One forward pass reads the shared prompt prefix (logits of its last position only);
        the continuations then run ``batch_size`` at a time against copies of its key/value
        cache, so each prompt token is computed once however many continuations it has.

        Raises:
            ConfigError: malformed ``items`` (see :func:`check_continuation_items`).
        """
        checked = check_continuation_items(items)
        check_keep(keep)
        if not checked:
            return []
        self._load()
        import copy

        import torch

        tok = self._tokenizer
        out: list[list[ContinuationScore]] = []
        for prompt, continuations in checked:
            if not continuations:
                out.append([])
                continue
            fulls = [tok(prompt + c)["input_ids"] for c in continuations]
            shared, starts = continuation_spans(tok(prompt)["input_ids"], fulls)
            with torch.inference_mode():
                prefix = torch.tensor([fulls[0][:shared]])
                res = self._model(input_ids=prefix, use_cache=True, logits_to_keep=1)
                prefix_cache = res.cache if hasattr(res, "cache") else res.past_key_values
                first = torch.log_softmax(res.logits[0, -1].float(), dim=-1)
                kept_ids = kept_continuations([float(first[f[shared]]) for f in fulls], keep)
                scores = [ContinuationScore(float("-inf"), len(f) - b) for f, b in zip(fulls, starts, strict=True)]
                for lo in range(0, len(kept_ids), self.batch_size):
                    at = kept_ids[lo : lo + self.batch_size]
                    chunk = [fulls[i] for i in at]
                    # a continuation's last token predicts nothing that is scored
                    rests = [f[shared:-1] for f in chunk]
                    width = max(len(r) for r in rests)
                    later = None
                    if width:
                        ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rests])
                        mask = torch.tensor([[1] * (shared + len(r)) + [0] * (width - len(r)) for r in rests])
                        past = copy.deepcopy(prefix_cache)
                        past.batch_repeat_interleave(len(chunk))
                        logits = self._model(input_ids=ids, attention_mask=mask, use_cache=True,
                                             **{self._cache_arg(): past}).logits
                        later = torch.log_softmax(logits.float(), dim=-1)
                    for row, i in enumerate(at):
                        full = fulls[i]
                        picked = [float(first[full[shared]])]
                        picked += [float(later[row, j, full[shared + 1 + j]]) for j in range(len(full) - shared - 1)]
                        kept = picked[starts[i] - shared :]
                        scores[i] = ContinuationScore(float(sum(kept)), len(kept))
                out.append(scores)
        return out


class _StopAfterText:
    """Stops a row once its new text, leading white space aside, holds a stop string.

    transformers' own ``stop_strings`` also fires on a leading newline, which turns an
    answer that opens with a line break into an empty one.
    """

    def __init__(self, tokenizer: Any, prompt_len: int, stops: Sequence[str]) -> None:
        self.tokenizer, self.prompt_len, self.stops = tokenizer, prompt_len, list(stops)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=True)
        done = [any(s in t.lstrip() for s in self.stops) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class LlamaCppGenerator:
    """A GGUF model run by llama.cpp (``pip install 'rag-conflicts[llamacpp]'``).

    Args:
        model: A packaged model name or a ``.gguf`` file.
        n_ctx: Context window in tokens.
        n_threads: CPU threads per context; ``None`` shares the cores among the contexts.
        n_contexts: Contexts that generate side by side, each on its own thread, a batch's
            prompts dealt among them (``None``: one per core, at most 2). On the 2-core dev
            machine two one-thread contexts answered 2.8 short questions/s under load where
            one two-thread context managed 0.3: its threads wait for each other at every
            token, and a busy machine makes every wait long.
        chat: Use the model's chat template; ``None`` decides from the model.
        score_ctx: Token window of :meth:`token_logprobs` (a second context, loaded on
            first use, that keeps the logits of every position).

    Example:
        >>> gen = LlamaCppGenerator("gemma-3-270m")        # doctest: +SKIP
        >>> gen.generate(["Question: What is the capital of France?\\nAnswer:"])  # doctest: +SKIP
        ['Paris']
    """

    runtime = "llama.cpp"

    def __init__(
        self,
        model: str | Path = DEFAULT_GENERATOR,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_contexts: int | None = None,
        chat: bool | None = None,
        score_ctx: int = 96,
    ) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            msg = "the llama.cpp runtime needs `pip install llama-cpp-python`"
            raise MissingDependencyError(msg)
        self.model_file = resolve_model(model)
        if not self.model_file.is_gguf:
            msg = f"llama.cpp loads .gguf files only; {self.model_file.path} is a folder"
            raise ConfigError(msg)
        cores = os.cpu_count() or 1
        if n_contexts is not None and n_contexts < 1:
            msg = f"n_contexts must be a positive integer or None, got {n_contexts}"
            raise ConfigError(msg)
        self.n_ctx = n_ctx
        self.n_contexts = n_contexts or min(2, cores)
        self.n_threads = n_threads or max(1, cores // self.n_contexts)
        # scoring evaluates whole prompts in batches, alone under the lock, where threads do
        # not wait on each other token by token: 2 threads scored 134 prompt tokens/s where
        # one scored 78 (gemma-3-270m, 2-core dev machine)
        self.score_threads = n_threads or cores
        self._chat = chat if chat is not None else self.model_file.chat
        self._llms: list[Any] = []
        self._scorer: Any = None
        self._continuations: _LlamaContinuations | None = None
        self.score_ctx = score_ctx
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.model_file.name

    def _load(self) -> Any:
        return self._contexts()[0]

    def _contexts(self) -> list[Any]:
        while len(self._llms) < self.n_contexts:
            from llama_cpp import Llama

            _route_llama_logs()
            try:
                llm = Llama(
                    model_path=str(self.model_file.path), n_ctx=self.n_ctx,
                    n_threads=self.n_threads, seed=0, verbose=False,
                )
            except (OSError, ValueError, RuntimeError) as exc:
                msg = f"llama.cpp could not load {self.model_file.path}: {exc}"
                raise ModelLoadError(msg) from exc
            if self._chat is None:
                self._chat = bool(llm.metadata.get("tokenizer.chat_template"))
            self._llms.append(llm)
        return self._llms

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 32,
        stop: Sequence[str] = ("\n",),
    ) -> list[str]:
        _check_generate_args(prompts, max_new_tokens)
        stops = [s for s in stop if s]
        out: list[str] = [""] * len(prompts)
        with self._lock:  # a context serves one call at a time
            contexts = self._contexts()
            if len(prompts) <= 1 or len(contexts) == 1:
                for i, prompt in enumerate(prompts):
                    out[i] = self._complete(contexts[0], prompt, max_new_tokens, stops)
                return out
            errors: list[BaseException] = []

            def work(llm: Any, indexes: range) -> None:
                try:
                    for i in indexes:
                        out[i] = self._complete(llm, prompts[i], max_new_tokens, stops)
                except BaseException as exc:  # re-raised in the calling thread
                    errors.append(exc)

            # llama.cpp releases the GIL while it computes, so the contexts run side by side.
            n = len(contexts)
            threads = [threading.Thread(target=work, args=(llm, range(j, len(prompts), n)))
                       for j, llm in enumerate(contexts)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
        return out

    def _complete(self, llm: Any, prompt: str, max_new_tokens: int, stops: Sequence[str]) -> str:
        # llama.cpp would stop on a leading newline too; stop only on stops that cannot lead.
        hard_stops = [s for s in stops if s.strip()]
        if self._chat:
            res = llm.create_chat_completion(
                messages=[{"role": "user", "content": prompt}],
                max_tokens=max_new_tokens, temperature=0.0, stop=hard_stops,
            )
            text = res["choices"][0]["message"]["content"] or ""
        else:
            res = llm(prompt, max_tokens=max_new_tokens, temperature=0.0, stop=hard_stops,
                      stopping_criteria=_llama_stop(llm, prompt, stops) if len(hard_stops) < len(stops) else None)
            text = res["choices"][0]["text"]
        return cut_at_stop(text, stops)

    def count_tokens(self, text: str) -> int:
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False))

    def _load_scorer(self) -> Any:
        # Scoring needs the logits of every position (logits_all), which costs n_ctx x vocab
        # floats: a second, small context rather than making the generating one that large.
        if self._scorer is None:
            from llama_cpp import Llama

            _route_llama_logs()
            try:
                self._scorer = Llama(
                    model_path=str(self.model_file.path), n_ctx=self.score_ctx, n_batch=self.score_ctx,
                    n_threads=self.score_threads, seed=0, logits_all=True, verbose=False,
                )
            except (OSError, ValueError, RuntimeError) as exc:
                msg = f"llama.cpp could not load {self.model_file.path} for scoring: {exc}"
                raise ModelLoadError(msg) from exc
        return self._scorer

    def token_logprobs(self, texts: Sequence[str]) -> list[Any]:
        """Per text, the log-probability of each token after the first given those before
        it (cut at ``score_ctx`` tokens). Implements :class:`~rag.protocols.Scorer`."""
        if isinstance(texts, str):
            msg = "texts must be a sequence of strings, not a single string: wrap it in a list"
            raise ConfigError(msg)
        import numpy as np

        out = []
        with self._lock:
            llm = self._load_scorer()
            for text in texts:
                tokens = llm.tokenize(text.encode("utf-8"), add_bos=True)[: self.score_ctx]
                if len(tokens) < 2:
                    out.append(np.zeros(0, dtype=np.float32))
                    continue
                llm.reset()
                llm.eval(tokens)
                logits = np.asarray(llm.scores[: len(tokens) - 1], dtype=np.float64)
                top = logits.max(axis=1, keepdims=True)
                norm = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
                picked = logits[np.arange(len(tokens) - 1), tokens[1:]] - norm
                out.append(picked.astype(np.float32))
        return out

    def clear_cache(self) -> None:
        """Forget the prompts saved for scoring again: the next scoring call starts cold,
        as a fresh process would (latency measurements)."""
        if self._continuations is not None:
            self._continuations.forget()

    def continuation_logprobs(
        self, items: Sequence[tuple[str, Sequence[str]]], *, keep: int | None = None
    ) -> list[list[ContinuationScore]]:
        """Per ``(prompt, continuations)`` item, the summed log-probability of each
        continuation's tokens after the prompt, and their count (plain text, no chat
        template); with ``keep``, only the ``keep`` continuations of an item whose first
        token is likeliest are scored in full, the others score ``-inf``. Implements
        :class:`~rag.protocols.Scorer`.

        A scoring context on the generator's weights (made on first use, every core's
        threads) evaluates each prompt once (the start all the prompts share, such as
        few-shot examples, once for all; a prompt seen in a recent call not at all), then the
        continuations side by side against its cache, tokens they start alike with once
        (see :class:`_LlamaContinuations`).

        Raises:
            ConfigError: malformed ``items``, or a prompt and continuation longer than ``n_ctx``.
        """
        checked = check_continuation_items(items)
        check_keep(keep)
        with self._lock:
            if self._continuations is None:
                self._continuations = _LlamaContinuations(self._load(), self.n_ctx, self.score_threads)
            return [self._continuations.score(prompt, conts, keep) for prompt, conts in checked]


class _LlamaContinuations:
    """A llama.cpp context, on the generator's weights, that scores continuations side by side.

    The prompt prefix is evaluated once as sequence 0; the continuations then run in one
    batch, each as its own sequence that shares the prefix's cache cells (a unified cache
    copies no memory for that), and are dropped again. A one-token continuation needs no
    evaluation at all: the prefix's last logits score it.

    The last ``n_states`` prefixes are kept as saved sequence states (their cache cells and
    last log-probabilities, a few MB each): a caller that scores the same prompt again (the
    detector's sides: readings first, then every side after every passage) restores it in a
    millisecond instead of evaluating it again; and the start a prompt shares with the one
    before it (the few-shot examples every reading prompt opens with) is saved on its own,
    so it is evaluated once, not once per prompt.
    """

    n_seq = 32  # continuations per batch
    n_batch = 512
    n_states = 16
    min_shared = 16  # shared start worth a saved state of its own

    def __init__(self, llm: Any, n_ctx: int, n_threads: int) -> None:
        from llama_cpp import _internals

        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, self.n_batch, self.n_batch
        params.n_seq_max, params.kv_unified = self.n_seq + 1, True
        params.n_threads = params.n_threads_batch = n_threads
        try:
            self.ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
            self.batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=self.n_seq + 1, verbose=False)
        except (OSError, ValueError, RuntimeError) as exc:
            msg = f"llama.cpp could not make a scoring context: {exc}"
            raise ModelLoadError(msg) from exc
        self.llm, self.n_ctx, self.n_vocab = llm, n_ctx, llm.n_vocab()
        self.states: OrderedDict[tuple[int, ...], tuple[Any, Any]] = OrderedDict()
        self.previous: tuple[int, ...] = ()  # the last prefix evaluated

    def _decode(self, tokens: Sequence[tuple[int, int, int | Sequence[int], bool]]) -> Any:
        """Decode ``(token, position, sequences, wants_logits)`` rows (a token may belong to
        several sequences); the logits of those that want them, in order, as log-probabilities."""
        import numpy as np

        b = self.batch.batch
        b.n_tokens = len(tokens)
        for j, (token, pos, seqs, logits) in enumerate(tokens):
            seqs = (seqs,) if isinstance(seqs, int) else seqs
            b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = token, pos, len(seqs), logits
            for k, seq in enumerate(seqs):
                b.seq_id[j][k] = seq
        self.ctx.decode(self.batch)
        rows = sum(t[3] for t in tokens)
        return _log_softmax(np.ctypeslib.as_array(self.ctx.get_logits(), shape=(rows, self.n_vocab)))

    def forget(self) -> None:
        """Drop every saved prompt state."""
        self.states.clear()
        self.previous = ()

    def _prefix(self, prefix: Sequence[int]) -> Any:
        """Put ``prefix`` in the cache as sequence 0, alone; the log-probabilities after it.

        The start it shares with the prefix before it (few-shot examples, the same question
        after other passages) is saved on its own the first time, so that later prompts
        restore it and evaluate only what follows."""
        key, previous = tuple(prefix), self.previous
        self.previous = key
        shared = 0
        while shared < min(len(key) - 1, len(previous)) and key[shared] == previous[shared]:
            shared += 1
        if shared >= self.min_shared and len(self._saved_start(key)) < shared:
            self._evaluate(key[:shared])
        return self._evaluate(key)

    def _saved_start(self, key: tuple[int, ...]) -> tuple[int, ...]:
        """The longest saved prefix ``key`` starts with (empty if none)."""
        return max((k for k in self.states if len(k) <= len(key) and key[: len(k)] == k), key=len, default=())

    def _evaluate(self, key: tuple[int, ...]) -> Any:
        """Restore the longest saved start of ``key`` as sequence 0, evaluate the rest, save
        the state; the log-probabilities after ``key``."""
        import ctypes

        import llama_cpp

        llama_cpp.llama_memory_clear(self.ctx.memory, True)
        start, last = self._saved_start(key), None
        if start:
            state, last = self.states[start]
            self.states.move_to_end(start)
            llama_cpp.llama_state_seq_set_data(self.ctx.ctx, state, len(state), 0)
        if len(start) == len(key):
            return last
        for lo in range(len(start), len(key), self.n_batch):  # a long prefix goes in chunks; the last scores
            part = key[lo : lo + self.n_batch]
            logprobs = self._decode([(t, lo + j, 0, lo + j == len(key) - 1) for j, t in enumerate(part)])
        last = logprobs[0].copy()
        size = llama_cpp.llama_state_seq_get_size(self.ctx.ctx, 0)
        state = (ctypes.c_uint8 * size)()
        llama_cpp.llama_state_seq_get_data(self.ctx.ctx, state, size, 0)
        self.states[key] = (state, last)
        if len(self.states) > self.n_states:
            self.states.popitem(last=False)
        return last

    def score(self, prompt: str, continuations: list[str], keep: int | None) -> list[ContinuationScore]:
        import llama_cpp

        if not continuations:
            return []

        def tokenize(text: str) -> list[int]:
            return self.llm.tokenize(text.encode("utf-8"), add_bos=True)

        fulls = [tokenize(prompt + c) for c in continuations]
        shared, starts = continuation_spans(tokenize(prompt), fulls)
        if (longest := max(len(f) for f in fulls)) > self.n_ctx:
            msg = f"a prompt and continuation take {longest} tokens, more than n_ctx={self.n_ctx}"
            raise ConfigError(msg)
        memory = self.ctx.memory
        first = self._prefix(fulls[0][:shared])
        scores = [ContinuationScore(float("-inf"), len(f) - b) for f, b in zip(fulls, starts, strict=True)]
        picked = {i: [float(first[fulls[i][shared]])] for i in kept_continuations([float(first[f[shared]]) for f in fulls], keep)}
        # the last token of a continuation predicts nothing that is scored; continuations in
        # token order, so that those starting alike share a batch and their common tokens
        waiting = sorted((i for i in picked if len(fulls[i]) - shared > 1), key=lambda i: fulls[i][shared:])
        while waiting:
            group, size = [], 0
            while waiting and len(group) < self.n_seq and size + len(fulls[waiting[0]]) - shared - 1 <= self.n_batch:
                size += len(fulls[waiting[0]]) - shared - 1
                group.append(waiting.pop(0))
            if not group:
                msg = f"a continuation takes more than {self.n_batch} tokens"
                raise ConfigError(msg)
            for seq in range(1, len(group) + 1):
                llama_cpp.llama_memory_seq_cp(memory, 0, seq, -1, -1)
            nodes = continuation_trie([fulls[i][shared:-1] for i in group])
            logprobs = self._decode([(t, shared + depth, seqs, True) for t, depth, seqs in nodes])
            for row, (_, depth, seqs) in enumerate(nodes):
                for seq in seqs:
                    i = group[seq - 1]
                    picked[i].append(float(logprobs[row, fulls[i][shared + 1 + depth]]))
            for seq in range(1, len(group) + 1):
                llama_cpp.llama_memory_seq_rm(memory, seq, -1, -1)
        for i, values in picked.items():
            kept = values[starts[i] - shared :]
            scores[i] = ContinuationScore(float(sum(kept)), len(kept))
        return scores


def _llama_stop(llm: Any, prompt: str, stops: Sequence[str]) -> Any:
    """A llama.cpp stopping criterion: white-space stops count once text has begun."""
    from llama_cpp import StoppingCriteriaList

    n_prompt = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))

    def criterion(input_ids: Any, logits: Any) -> bool:
        text = llm.detokenize(list(input_ids[n_prompt:])).decode("utf-8", errors="ignore")
        return any(s in text.lstrip() for s in stops)

    return StoppingCriteriaList([criterion])


def load_generator(
    model: str | Path = DEFAULT_GENERATOR, *, runtime: str = "auto", **kwargs: Any
) -> TransformersGenerator | LlamaCppGenerator:
    """Build a generator. ``runtime="auto"`` takes llama.cpp when installed, for a GGUF model.

    Raises:
        ConfigError: unknown runtime or model.
    """
    if runtime not in RUNTIMES:
        msg = f"runtime must be one of {RUNTIMES}, got {runtime!r}"
        raise ConfigError(msg)
    if runtime == "auto":
        has_llama = importlib.util.find_spec("llama_cpp") is not None
        runtime = "llama.cpp" if has_llama and resolve_model(model).is_gguf else "transformers"
    if runtime == "llama.cpp":
        return LlamaCppGenerator(model, **kwargs)
    return TransformersGenerator(model, **kwargs)
