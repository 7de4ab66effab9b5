"""A PostgreSQL library (``--library postgresql://...``) behaves as a SQLite one: commands, answers, errors.

The store contract tests (``test_store.py`` and every test using the ``store`` fixture) run on both backends; these
are the PostgreSQL-only parts: the command line on a database URL, the same answer as SQLite, dense search through
pgvector, the full-text query translation and the errors a hospital's engineer meets first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcite.answer import ask, save_answer
from medcite.cli import run
from medcite.embed import load_embedder
from medcite.errors import StoreError
from medcite.index import default_guideline_pack, ingest
from medcite.retrieve import Retriever
from medcite.retrieve.dense import embed_passages
from medcite.settings import Settings
from medcite.store import Store
from medcite.store.library import pg_tsquery

GOUT = "What is the first-line treatment for an acute gout flare?"


def test_fts5_expressions_become_tsqueries():
    assert pg_tsquery('"COVID-19" OR "vaccine"') == (
        "SELECT phraseto_tsquery('english', ?) || phraseto_tsquery('english', ?)",
        ["COVID-19", "vaccine"],
    )
    assert pg_tsquery('"hypertens"* AND "acute"') == (
        "SELECT to_tsquery('english', ?) && phraseto_tsquery('english', ?)",
        ["hypertens:*", "acute"],
    )
    assert pg_tsquery('"--" OR ""') == (None, [])


def test_command_line_on_a_postgresql_url_ingests_searches_and_answers(postgres_url: str, tmp_path: Path, capsys):
    assert run(["ingest", "guidelines", "--library", postgres_url]) == 0
    assert capsys.readouterr().out.strip() == "43 added, 0 updated, 0 unchanged, 0 skipped"
    assert run(["ingest", "guidelines", "--library", postgres_url]) == 0
    assert capsys.readouterr().out.strip() == "0 added, 0 updated, 43 unchanged, 0 skipped"
    assert run(["library", "stats", "--format", "json", "--library", postgres_url]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["documents"], stats["passages"], stats["by_kind"]) == (43, 1896, {"guidelines": 43})
    assert stats["path"].startswith("postgresql://") and stats["size_bytes"] > 0
    assert run(["search", "acute gout flare colchicine", "--library", postgres_url, "--format", "json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and "gout" in hits[0]["title"].lower()
    sqlite_library = tmp_path / "library.db"
    assert run(["ask", GOUT, "--library", str(sqlite_library), "--format", "json"]) == 0
    on_sqlite = json.loads(capsys.readouterr().out)
    assert run(["ask", GOUT, "--library", postgres_url, "--format", "json"]) == 0
    on_postgresql = json.loads(capsys.readouterr().out)
    # acr_gout_2020: "Colchicine, NSAIDs, or glucocorticoids ... are strongly recommended as first-line therapy"
    assert "colchicine, nsaids, or glucocorticoids" in on_postgresql["bottom_line"]["text"].lower()
    assert on_postgresql["bottom_line"]["text"] == on_sqlite["bottom_line"]["text"]
    follow_up = ["ask", "And in CKD?", "--follow-up", on_postgresql["id"], "--library", postgres_url]
    assert run([*follow_up, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["follow_up_of"] == on_postgresql["id"]


def test_dense_search_on_postgresql_finds_what_the_sqlite_index_finds_and_hides_retractions(
    postgres_url: str, tmp_path: Path
):
    embedder = load_embedder("hash-64")
    nearest: dict[str, list[str]] = {}
    for name, target in (("sqlite", tmp_path / "library.db"), ("postgresql", postgres_url)):
        settings = Settings(library=target, embedder="hash-64")
        with Store.open(target) as store:
            ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
            assert embed_passages(store, embedder) == 1896
            retriever = Retriever(store, settings, embedder=embedder)
            details = store.passage_details([rowid for rowid, _ in retriever.dense("gout flare colchicine", limit=5)])
            nearest[name] = [detail.passage.passage_id for detail in details.values()]
    assert len(nearest["postgresql"]) == 5
    assert sorted(nearest["postgresql"]) == sorted(nearest["sqlite"])
    with Store.open(postgres_url) as store:
        retracted = nearest["postgresql"][0].split("#")[0]
        with store.writing() as conn:  # as a retraction notice arriving by ingest marks it
            conn.exec_driver_sql("UPDATE documents SET is_retracted = 1 WHERE doc_id = ?", (retracted,))
            conn.exec_driver_sql("UPDATE meta SET value = '999' WHERE key = 'library_version'")
        retriever = Retriever(store, Settings(library=postgres_url, embedder="hash-64"), embedder=embedder)
        after = [rowid for rowid, _ in retriever.dense("gout flare colchicine", limit=50)]
        assert len(after) == 50
        assert {retracted} & {row[1].split("#")[0] for row in _passage_ids(store, after)} == set()


def test_dense_search_reads_the_hnsw_index_of_the_chosen_type_built_on_opening(postgres_url: str):
    embedder = load_embedder("hash-64")
    settings = Settings(library=postgres_url, embedder="hash-64")
    with Store.open(postgres_url) as store:  # halfvec, the default
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
        assert embed_passages(store, embedder) == 1896
        half = Retriever(store, settings, embedder=embedder).dense("gout flare colchicine", limit=5)
        with store.reading() as conn:
            indexes = [
                r[0] for r in conn.exec_driver_sql("SELECT indexdef FROM pg_indexes WHERE indexname LIKE '%hnsw%'")
            ]
    assert len(indexes) == 1
    assert "embedding)::halfvec(64)) halfvec_cosine_ops" in indexes[0]
    with Store.open(postgres_url, vector_index="vector") as store:  # another type: its index is built on opening
        full = Retriever(store, settings, embedder=embedder).dense("gout flare colchicine", limit=5)
        with store.reading() as conn:
            indexes = sorted(
                r[0] for r in conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%hnsw%'")
            )
            conn.exec_driver_sql("ANALYZE passage_vectors")  # as autovacuum would; and at 1,896 rows the planner
            conn.exec_driver_sql("SET enable_seqscan = off")  # would rather sort them all than read the index
            plan = "\n".join(
                r[0]
                for r in conn.exec_driver_sql(
                    "EXPLAIN SELECT passage_rowid FROM passage_vectors WHERE model = 'hash-64' "
                    "ORDER BY embedding::vector(64) <=> ?::vector(64) LIMIT 10",
                    ("[" + ",".join(["0.125"] * 64) + "]",),
                )
            )
    assert [name.split("_hnsw_")[0] for name in indexes] == ["passage_vectors_halfvec", "passage_vectors_vector"]
    assert "passage_vectors_vector_hnsw_" in plan
    assert [rowid for rowid, _ in full] == [rowid for rowid, _ in half]  # 16-bit order: the same five here
    with pytest.raises(StoreError, match="not one of halfvec, vector"):
        Store.open(postgres_url, vector_index="float8")


def _passage_ids(store: Store, rowids: list[int]) -> list[tuple[int, str]]:
    with store.reading() as conn:
        marks = ",".join("?" * len(rowids))
        return list(
            conn.exec_driver_sql(f"SELECT rowid, passage_id FROM passages WHERE rowid IN ({marks})", tuple(rowids))
        )


def test_an_unreachable_server_is_one_line_exit_3(tmp_path: Path, capsys):
    url = f"postgresql://medcite@/nowhere?host={tmp_path}"
    with pytest.raises(StoreError, match="Cannot reach the PostgreSQL library"):
        Store.open(url)
    assert run(["library", "stats", "--library", url]) == 3
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert "check that the server runs" in captured.err


def test_a_database_holding_other_tables_is_refused(postgres_url: str):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE things (x integer)")
    with pytest.raises(StoreError, match="not a medcite library"):
        Store.open(postgres_url)


def _filled_sqlite_library(path: Path) -> tuple[str, int]:
    """A SQLite library with every kind of row; returns the first answer's id and the article's id.

    Guidelines, vectors, an answer and its follow-up, an account, an article with its revision and audit entries,
    a session, a token and a secret.
    """
    from medcite.store.review import ReviewStore

    settings = Settings(library=path, embedder="hash-64")
    embedder = load_embedder("hash-64")
    with Store.open(path) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
        embed_passages(store, embedder)
        retriever = Retriever(store, settings, embedder=embedder)
        first = ask(GOUT, retriever=retriever)
        save_answer(store, first)
        save_answer(store, ask("And in CKD?", retriever=retriever, follow_up_of=first))
        review = ReviewStore(store)
        review.add_user("rivera", "reviewer", "hash-of-a-password")
        review.add_token("rivera", "a" * 64)
        review.add_session("rivera", "b" * 64, max_age_s=3600)
        review.secret("cookie", "secret-value")
        article = review.create_article(
            slug="gout-flare",
            question=GOUT,
            audience="clinician",
            follow_up_of=None,
            redactions=[],
            answers={"clinician": first.model_dump_json()},
            author="rivera",
        )
        return first.id, article.article_id


def test_library_copy_to_postgresql_and_back_is_verified_resumable_and_idempotent(
    postgres_url: str, tmp_path: Path, capsys
):
    from medcite.store.review import ReviewStore
    from medcite.store.transfer import copy_library, verify_copy

    source = tmp_path / "source.db"
    answer_id, article_id = _filled_sqlite_library(source)
    # An interrupted copy (stopped after its first batch of passages) carries on when run again.
    with Store.open(source) as origin, Store.open(postgres_url) as target:

        def stop_in_passages(table: str, done: int, total: int) -> None:
            if table == "passages" and done >= 500:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            copy_library(origin, target, batch=500, on_progress=stop_in_passages)
        assert target.count_passages() == 500
    assert run(["library", "copy", str(source), postgres_url]) == 0
    out = capsys.readouterr().out
    assert "passages: 1396 rows copied, 1896 in all" in out and "Verified" in out
    assert run(["library", "copy", str(source), postgres_url]) == 0  # a finished copy: nothing more to do
    assert "passages: 0 rows copied, 1896 in all" in capsys.readouterr().out
    with Store.open(source) as origin, Store.open(postgres_url) as target:
        assert all(check.ok for check in verify_copy(origin, target))
        assert target.check_integrity()
        assert target.get_answer(answer_id)[0] == GOUT
        review = ReviewStore(target)
        assert review.get_article(article_id).slug == "gout-flare"
        assert review.user_for_token("a" * 64).username == "rivera"
        assert [entry.action for entry in review.audit_entries()] == ["submit", "account rivera (reviewer)"]
        with pytest.raises(Exception, match="append-only"), target.writing() as conn:
            conn.exec_driver_sql("UPDATE audit_log SET comment = 'rewritten'")
        review.add_user("okafor", "editor", "another-hash")  # identity counters moved past the copied ids
        assert review.get_user("okafor").user_id == review.get_user("rivera").user_id + 1
    # ... and answers from the copy as from the original.
    assert run(["ask", GOUT, "--library", postgres_url, "--format", "json"]) == 0
    on_copy = json.loads(capsys.readouterr().out)
    assert run(["ask", GOUT, "--library", str(source), "--format", "json"]) == 0
    on_source = json.loads(capsys.readouterr().out)
    assert on_copy["bottom_line"] == on_source["bottom_line"]
    assert on_copy["id"] == on_source["id"]  # the copy keeps the library version the id is made from
    back = tmp_path / "back.db"
    assert run(["library", "copy", postgres_url, str(back)]) == 0
    assert "Verified" in capsys.readouterr().out
    with Store.open(back) as copied:
        assert copied.check_integrity()
        assert copied.search_fts('"colchicine"')


def test_library_copy_of_a_missing_file_is_one_line_exit_3(tmp_path: Path, capsys):
    assert run(["library", "copy", str(tmp_path / "nope.db"), str(tmp_path / "to.db")]) == 3
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "to.db").exists()


def test_serve_with_several_workers_needs_postgresql(tmp_path: Path, capsys):
    assert run(["serve", "--workers", "2", "--library", str(tmp_path / "library.db")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--workers 2 needs a PostgreSQL library" in err


def test_two_web_workers_on_postgresql_share_sessions_and_rate_limits(postgres_url: str):
    import os
    import subprocess
    import sys
    import time

    import httpx
    import psutil

    from conftest import free_port

    assert run(["ingest", "guidelines", "--library", postgres_url]) == 0
    environment = {**os.environ, "MEDCITE_EMBEDDER": "none", "MEDCITE_WEB_ASK_RATE_LIMIT": "2/minute"}
    command = [sys.executable, "-m", "medcite", "users", "add", "rita", "--role", "reviewer", "--password-stdin"]
    subprocess.run([*command, "--library", postgres_url], input="a long passphrase 42\n", text=True, check=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "medcite", "serve", "--workers", "2", "--port", str(port), "--library", postgres_url],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert len(psutil.Process(server.pid).children()) >= 2  # uvicorn's worker processes
        with httpx.Client(base_url=base, timeout=30) as client:
            login = client.post("/api/login", json={"username": "rita", "password": "a long passphrase 42"})
            assert login.status_code == 200, login.text
            headers = {"X-CSRF-Token": login.json()["csrf_token"]}
            # Whichever worker answers, the session (kept in the library) holds.
            assert [client.get("/api/review/queue").status_code for _ in range(8)] == [200] * 8
            asks = [client.post("/api/articles", json={"question": GOUT}, headers=headers) for _ in range(3)]
            assert [response.status_code for response in asks] == [201, 201, 429]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_statement_over_the_timeout_is_cancelled(postgres_url: str):
    import sqlalchemy as sa

    with Store.open(postgres_url, statement_timeout_s=0.2) as store, store.reading() as conn:
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "200ms"
        with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
            conn.exec_driver_sql("SELECT pg_sleep(2)")


def test_library_copy_keeps_a_follow_up_whose_id_sorts_before_the_answer_it_follows(postgres_url: str, tmp_path: Path):
    # A tester's library: the follow-up's id (28c9...) sorted before its earlier answer's (751b...), and the copy
    # wrote the follow-up first, against the foreign key.
    from medcite.store.transfer import copy_library, verify_copy

    source = tmp_path / "source.db"
    with Store.open(source) as store:
        store.save_answer("751b8cdc8d57ebf9", GOUT, "clinician", None, "{}")
        store.save_answer("28c9f2b308644f3a", "What about in pregnancy?", "clinician", "751b8cdc8d57ebf9", "{}")
    for target in (postgres_url, tmp_path / "copy.db"):
        with Store.open(source) as origin, Store.open(target) as destination:
            assert copy_library(origin, destination)["answers"] == 2
            assert all(check.ok for check in verify_copy(origin, destination))
            assert destination.get_answer("28c9f2b308644f3a")[2] == "751b8cdc8d57ebf9"


def test_library_copy_into_another_library_is_refused_and_writes_nothing(postgres_url: str, tmp_path: Path, capsys):
    source = tmp_path / "source.db"
    with Store.open(source) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=Settings(library=source))
    other = tmp_path / "protocols"
    other.mkdir()
    (other / "protocol.md").write_text("# Local protocol\n\nPlaceholder protocol step one.\n")
    assert run(["ingest", "files", str(other), "--library", postgres_url]) == 0
    capsys.readouterr()
    with Store.open(postgres_url) as destination, destination.reading() as conn:
        before_vocabulary = conn.exec_driver_sql("SELECT count(*) FROM vocabulary").scalar()
    assert run(["library", "copy", str(source), postgres_url]) == 3
    err = capsys.readouterr().err
    # `ingest` filled the empty library with the guideline pack first: 43 documents match, the protocol does not.
    assert "already holds another library: its documents row file:" in err and "nothing was written" in err
    with Store.open(postgres_url) as destination:
        assert destination.count_documents() == 44
        with destination.reading() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM vocabulary").scalar() == before_vocabulary


def test_a_library_url_is_shown_without_its_password():
    from medcite.settings import display_library

    assert display_library("postgresql://medcite:hunter2@db.example.org:5432/medcite") == (
        "postgresql://medcite:***@db.example.org:5432/medcite"
    )
    assert (
        display_library("postgresql://postgres:@/medcite?host=/run/pg") == "postgresql://postgres@/medcite?host=/run/pg"
    )
    assert display_library(Path("/srv/library.db")) == "/srv/library.db"
    assert display_library("postgresql://u@/db?host=/run/pg&password=QSECRET") == (
        "postgresql://u@/db?host=/run/pg&password=***"
    )


def test_copy_into_a_database_holding_other_accounts_is_refused_before_anything_is_written(
    postgres_url: str, tmp_path: Path, capsys
):
    # A tester's finding: rows were matched by id, so the destination's own account 1 (an admin) kept its id and
    # received the API token the source had issued to its account 1 (a reviewer).
    from medcite.store.review import ReviewStore

    source = tmp_path / "source.db"
    with Store.open(source) as store:
        ReviewStore(store).add_user("alice", "reviewer", "hash-a")
        ReviewStore(store).add_token("alice", "c" * 64)
    with Store.open(postgres_url) as store:
        ReviewStore(store).add_user("bob", "admin", "hash-b")
    assert run(["library", "copy", str(source), postgres_url]) == 3
    err = capsys.readouterr().err
    assert "already holds another library: its users row 1" in err and "nothing was written" in err
    with Store.open(postgres_url) as store:
        assert ReviewStore(store).user_for_token("c" * 64) is None
        assert [entry.action for entry in ReviewStore(store).audit_entries()] == ["account bob (admin)"]


@pytest.mark.parametrize(
    ("library", "expected"),
    [
        ("mysql://root:pw@localhost/db", "mysql://root:***@localhost/db is not a library medcite can open"),
        ("postgresql://u:pw@host:notaport/x", "postgresql://u:***@host:notaport/x is not a valid PostgreSQL URL"),
        ("postgresql://u:pw@[::1/x", "postgresql://... is not a valid PostgreSQL URL"),
    ],
)
def test_a_library_url_medcite_cannot_open_is_one_line_and_creates_nothing(
    library: str, expected: str, tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert run(["library", "stats", "--library", library]) == 3
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "pw" not in err.replace("pw@[", "")
    assert list(tmp_path.iterdir()) == []  # no folder 'mysql:' holding a new SQLite library


def test_serve_with_workers_opens_the_library_first(postgres_server, capsys):
    missing = postgres_server.get_uri("no_such_database")
    assert run(["serve", "--workers", "2", "--library", missing]) == 3
    assert "Cannot reach the PostgreSQL library" in capsys.readouterr().err


def test_a_library_that_stops_answering_mid_command_is_one_line_exit_3(tmp_path: Path, monkeypatch, capsys):
    import sqlalchemy as sa

    library = tmp_path / "library.db"
    assert run(["ingest", "guidelines", "--library", str(library)]) == 0
    capsys.readouterr()

    def gone(*_args, **_kwargs):
        raise sa.exc.OperationalError("SELECT ...", None, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(Store, "search_fts_rowids", gone)
    assert run(["search", "gout flare colchicine", "--library", str(library)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") <= 2 and "Traceback" not in err
    assert "the library stopped answering (server closed the connection unexpectedly)" in err
