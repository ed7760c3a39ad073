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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, MissingDependencyError, ModelLoadError
from rag.models.offline import (
    DEFAULT_GENERATOR,
    GENERATORS,
    cache_dir,
    generator_gguf,
    set_offline,
    sha256_file,
)

logger = logging.getLogger(__name__)

RUNTIMES = ("auto", "transformers", "llama.cpp")
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
        self._chat = chat if chat is not None else self.model_file.chat
        self._llms: list[Any] = []
        self._scorer: Any = None
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

            try:
                self._scorer = Llama(
                    model_path=str(self.model_file.path), n_ctx=self.score_ctx, n_batch=self.score_ctx,
                    n_threads=self.n_threads, seed=0, logits_all=True, verbose=False,
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
