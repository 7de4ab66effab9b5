"""MEDCITE_* settings, read from the environment and passed explicitly.

There is no module-level singleton: callers build ``Settings()`` once (the CLI,
the web app, a test) and hand it down. Imports only ``models`` and pydantic.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_library_path", "display_library", "is_database_url", "library_location"]

DATABASE_URL_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
"""A library given as one of these URLs is a PostgreSQL database (libpq connection URI syntax), not a file."""


def display_library(library: str | Path) -> str:
    """A library as it may be shown: a URL without its password (``***`` when it has one), a path as it is."""
    if not isinstance(library, str) or "://" not in library:
        return str(library)
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(str(library).strip())
    except ValueError:  # unreadable ('[::1/x'): show the scheme only, never what might be a password
        return str(library).strip().split("://", 1)[0] + "://..."
    query = "&".join(
        f"{name}=***" if name.lower() == "password" else f"{name}{sign}{value}"
        for name, sign, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    if "@" in parts.netloc:
        credentials, _, host = parts.netloc.rpartition("@")
        user, has_password, password = credentials.partition(":")
        parts = parts._replace(netloc=f"{user}:***@{host}" if has_password and password else f"{user}@{host}")
    return urlunsplit(parts._replace(query=query))


def library_location(value: str | Path) -> str | Path:
    """A library as given (``--library``, ``MEDCITE_LIBRARY``): a URL stays text, anything else is a path.

    A PostgreSQL URL keeps its '//' (a path would fold it); another URL ('mysql://...') stays text too, to be
    refused when opened rather than taken for a folder named 'mysql:'.
    """
    if isinstance(value, Path):
        return value
    if is_database_url(value):
        return value.strip()
    return value if "://" in value else Path(value)


def is_database_url(library: str | Path) -> bool:
    """Whether a library names a PostgreSQL database (``postgresql://user@host:port/dbname``) rather than a file."""
    return isinstance(library, str) and library.strip().lower().startswith(DATABASE_URL_SCHEMES)


def default_library_path() -> Path:
    """Return the default library file: ``<user data dir>/medcite/library.db`` (platformdirs)."""
    return Path(platformdirs.user_data_dir("medcite", appauthor=False)) / "library.db"


class Settings(BaseSettings):
    """All tunable settings; the environment variable of a field is ``MEDCITE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="MEDCITE_", extra="ignore")

    library: Path | str = Field(
        default_factory=default_library_path,
        description="The library (MEDCITE_LIBRARY): a SQLite file, created when missing, or a PostgreSQL database "
        "URL, postgresql://user@host:port/dbname (the database must exist; medcite creates its tables).",
    )

    @field_validator("library", mode="before")
    @classmethod
    def _library_location(cls, value: object) -> object:
        return library_location(value) if isinstance(value, str | Path) else value

    postgres_pool_size: int = Field(
        default=5, ge=1, le=200, description="Connections each process keeps open to a PostgreSQL library."
    )
    postgres_statement_timeout_s: float = Field(
        default=120.0,
        ge=0.001,
        le=86400,
        description="A statement on a PostgreSQL library that runs longer than this, seconds, is cancelled.",
    )
    postgres_vector_index: Literal["halfvec", "vector"] = Field(
        default="halfvec",
        description="pgvector type of a PostgreSQL library's HNSW index: 'halfvec' (16-bit, half the memory) or "
        "'vector' (32-bit). Changing it builds the other index when the library is next opened.",
    )
    ingest_batch_documents: int = Field(
        default=500, ge=1, description="Documents per ingest transaction (one batch = one commit)."
    )
    passage_max_chars: int = Field(
        default=1200, ge=200, description="Upper bound of a passage, characters (tables may be split by rows)."
    )
    ncbi_email: str | None = Field(default=None, description="E-mail sent to NCBI E-utilities (their policy).")
    ncbi_api_key: str | None = Field(
        default=None, description="NCBI API key: raises the E-utilities limit from 3 to 10 requests/s."
    )
    eutils_base_url: str = Field(
        default="https://eutils.ncbi.nlm.nih.gov/entrez/eutils/",
        description="E-utilities base URL (tests point it at a local replay server).",
    )
    eutils_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of one E-utilities request, s.")
    eutils_max_retries: int = Field(default=4, ge=0, description="Retries of a failed E-utilities request.")
    eutils_batch_records: int = Field(default=200, ge=1, le=10000, description="PMIDs per efetch request.")

    embedder: str = Field(
        default="auto",
        description="Sentence-embedding model for dense retrieval: 'auto' (best installed; `medcite ask`, "
        "one process per question, takes the quickest to load, WordLlama, when it is installed), 'auto-fast', "
        "'none' (lexical only), a model name, or 'hash-<dim>' (tests).",
    )
    retrieval_candidates: int = Field(
        default=100, ge=1, le=2000, description="Passages each retriever (lexical, dense) hands to fusion."
    )
    dense_weight: float = Field(
        default=1.0, ge=0, le=4, description="Weight of the dense ranking in weighted RRF (lexical rankings: 1)."
    )
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant k (Cormack et al. 2009).")
    evidence_weight: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="Largest relative boost evidence type gives a passage's fused score (0 = off): "
        "guidelines gain the full weight, weaker evidence less, so it reorders near-ties only.",
    )
    max_passages_per_document: int = Field(
        default=0,
        ge=0,
        description="At most this many passages of one document in a `medcite search` result list (0: no limit). "
        "Measured (benchmarks/retrieval.py, lexical): a limit of 3 kept the gold passage of a clinical question "
        "out of the first 10 for 8 of 89 questions whose guideline held it 4th to 10th (recall@10 0.798 against "
        "0.888 with no limit), and changed LiveQA nDCG@10 and PubMedQA recall by less than 0.005.",
    )
    common_term_fraction: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Query terms found in more than this fraction of passages (and in more than "
        "common_term_min_passages) are left out of BM25 when other terms remain (they carry almost no "
        "weight and slow FTS5 down).",
    )
    common_term_min_passages: int = Field(
        default=2000,
        ge=0,
        description="A term is pruned as common only when it occurs in more than this many passages: FTS5's "
        "cost grows with the passages a term matches, so in a small library every term is kept.",
    )
    query_expansions: int = Field(
        default=4, ge=0, le=20, description="Vocabulary equivalents added to a query at most (0 = no expansion)."
    )
    bm25_weights: tuple[float, float, float] = Field(
        default=(2.0, 1.0, 1.0), description="BM25 column weights for title, section heading and passage text."
    )
    pubmed: Literal["off", "ask-first", "auto"] = Field(
        default="off",
        description="Search PubMed at question time when the library alone would abstain: 'off', 'ask-first' "
        "(ask on the terminal) or 'auto'. `medcite ask --pubmed` searches first whatever this says.",
    )
    pubmed_max_records: int = Field(default=20, ge=1, le=200, description="PubMed records a question-time search adds.")
    review_approvals: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Distinct reviewers who must approve an audience's answer (none of them an editor of its text).",
    )
    web_ask_rate_limit: str = Field(
        default="20/minute",
        description="Questions one client may ask the web app ('N/second|minute|hour', the `limits` notation).",
    )
    web_login_rate_limit: str = Field(
        default="10/minute", description="Sign-in attempts one client may make to the web app (`limits` notation)."
    )
    web_session_max_age_s: int = Field(
        default=8 * 3600, ge=60, description="Lifetime of a web sign-in (session cookie), seconds."
    )

    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible API root of the model server for `--composer llm`, e.g. "
        "'http://localhost:8000/v1' (vLLM), 'http://localhost:8080/v1' (llama-server), "
        "'http://localhost:11434/v1' (Ollama).",
    )
    llm_model: str | None = Field(default=None, description="Model name the server knows, for `--composer llm`.")
    llm_api_key: str | None = Field(default=None, description="Bearer token for the model server, if it needs one.")
    llm_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds to wait for the model server to connect, and between bytes received.",
    )
    llm_max_tokens: int = Field(default=2048, ge=64, description="Most tokens the model may write per answer.")
    llm_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of a model request after HTTP 429/5xx, a timeout or a dropped connection.",
    )
    llm_structured_output: Literal["auto", "json_schema", "json_object", "tools", "prompt"] = Field(
        default="auto",
        description="How JSON output is requested: 'auto' negotiates with the server (OpenAI's JSON Schema form, "
        "then llama.cpp's json_object with a schema, then tool calling, then the schema in the prompt only) and "
        "remembers what worked; or one of them fixed (`medcite llm check` shows which works).",
    )

    def fingerprint(self) -> str:
        """Return a 12-hex-digit hash of the non-secret settings (stored with answers)."""
        public = self.model_dump(mode="json", exclude={"ncbi_api_key", "ncbi_email", "library", "llm_api_key"})
        return hashlib.sha256(json.dumps(public, sort_keys=True).encode()).hexdigest()[:12]
