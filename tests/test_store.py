import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medcite.corpus.guidelines import read_guideline_pack
from medcite.errors import NotFound, SchemaMismatch, StoreError
from medcite.index import build_passages, default_guideline_pack
from medcite.models import Document, Section
from medcite.store import Store


def _doc(n: int, text: str = "Protocol step one. Protocol step two.", pmid: str | None = None) -> Document:
    return Document(
        doc_id=f"pmid:{pmid}" if pmid else f"file:{n:04d}",
        kind="pubmed-xml" if pmid else "files",
        external_id=pmid or str(n),
        pmid=pmid,
        title=f"Placeholder document {n}",
        sections=[Section(heading_path=["Part"], text=text)],
    )


def _items(*documents: Document):
    return [(d, build_passages(d)) for d in documents]


def test_write_batch_same_input_twice_changes_nothing(store: Store):
    documents = [d for d in read_guideline_pack(default_guideline_pack()) if isinstance(d, Document)]
    first = store.write_batch(_items(*documents))
    stats_before = store.stats()
    second = store.write_batch(_items(*documents))
    assert (first.added, first.updated, first.unchanged) == (43, 0, 0)
    assert (second.added, second.updated, second.unchanged, second.n_passages) == (0, 0, 43, 0)
    stats_after = store.stats()
    assert (
        (stats_after.documents, stats_after.passages) == (stats_before.documents, stats_before.passages) == (43, 1896)
    )
    assert store.check_integrity()


def test_write_batch_changed_record_replaces_old_version_and_its_index_rows(store: Store):
    store.write_batch(_items(_doc(1, "Alpha wording of the protocol.")))
    counts = store.write_batch(_items(_doc(1, "Beta wording of the protocol. It grew a second sentence.")))
    assert (counts.added, counts.updated) == (0, 1)
    assert [p.text for p in store.get_passages("file:0001")] == [
        "Beta wording of the protocol. It grew a second sentence."
    ]
    assert store.search_fts('"alpha"') == []
    assert [row.passage.passage_id for row in store.search_fts('"beta"')] == ["file:0001#p0"]
    assert store.check_integrity()


def test_write_batch_deletions_remove_document_passages_and_index_rows(store: Store):
    store.write_batch(_items(_doc(1), _doc(2), _doc(3)))
    counts = store.write_batch([], delete_doc_ids=["file:0002", "file:9999"])
    assert counts.deleted == 1
    with pytest.raises(NotFound):
        store.get_document("file:0002")
    assert store.get_passages("file:0002") == []
    assert store.count_documents() == 2
    assert store.check_integrity()


def test_write_batch_failure_leaves_library_as_before(store: Store):
    store.write_batch(_items(_doc(1)))
    good, bad = _doc(2), _doc(3)
    bad_passages = [p.model_copy(update={"passage_id": "file:0002#p0"}) for p in build_passages(bad)]
    with pytest.raises(StoreError, match="this batch was not written"):
        store.write_batch([(good, build_passages(good)), (bad, bad_passages)])
    assert store.count_documents() == 1
    assert store.check_integrity()


def test_retraction_links_mark_stored_and_later_papers_and_hide_them_from_search(store: Store):
    store.write_batch(_items(_doc(1, "Unique zebra finding.", pmid="111")))
    assert len(store.search_fts('"zebra"')) == 1
    store.write_batch([], retracted_pmids=[("111", "999")])
    assert store.get_document("pmid:111").is_retracted
    assert store.search_fts('"zebra"') == []
    store.write_batch([], retracted_pmids=[("222", "998")])
    store.write_batch(_items(_doc(2, "Unique okapi finding.", pmid="222")))
    assert store.get_document("pmid:222").is_retracted
    assert store.stats().retracted == 2


def test_open_refuses_a_file_that_is_not_a_library(tmp_path: Path):
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("just some text, not a database")
    with pytest.raises(StoreError, match="not a usable medcite library"):
        Store.open(not_sqlite)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE things(x)").connection.commit()
    before = other.read_bytes()
    with pytest.raises(StoreError, match="not a medcite library"):
        Store.open(other)
    # Refused before anything is written: a tester found the file switched to WAL (header bytes 18-19 changed).
    assert other.read_bytes() == before
    assert not Path(f"{other}-wal").exists()


def test_open_refuses_a_library_from_a_newer_schema(tmp_path: Path):
    path = tmp_path / "library.db"
    Store.open(path).close()
    connection = sqlite3.connect(path)
    connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.commit()
    connection.close()
    with pytest.raises(SchemaMismatch, match="newer medcite"):
        Store.open(path)


def test_kill_during_a_batch_keeps_committed_batches_only(library_target: Path | str):
    path = library_target
    script = textwrap.dedent(
        f"""
        import os, signal
        import sqlalchemy
        from medcite.store import Store
        from medcite.index import ingest_records
        from medcite.settings import Settings
        from medcite.models import Document, Section

        store = Store.open({str(path)!r})
        calls = {{"batches": 0}}
        original = store.write_batch
        def counting(*args, **kwargs):
            calls["batches"] += 1
            return original(*args, **kwargs)
        store.write_batch = counting
        @sqlalchemy.event.listens_for(store.engine, "before_cursor_execute")
        def kill_in_third_batch(conn, cursor, statement, parameters, context, executemany):
            # documents and passages of batch 3 are written, its index rows not yet, nothing committed
            if calls["batches"] == 3 and statement.startswith("INSERT INTO passages_fts"):
                os.kill(os.getpid(), signal.SIGKILL)
        documents = (
            Document(doc_id=f"file:{{n}}", kind="files", external_id=str(n), title=f"Doc {{n}}",
                     sections=[Section(text="Placeholder sentence number %d." % n)])
            for n in range(100)
        )
        ingest_records(store, documents, settings=Settings(library={str(path)!r}, ingest_batch_documents=10))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    with Store.open(path) as store:
        assert store.count_documents() == 20
        assert store.check_integrity()


def test_two_processes_ingesting_into_one_new_library_queue_instead_of_failing(library_target: Path | str):
    path = library_target
    command = [sys.executable, "-m", "medcite", "ingest", "guidelines", "--library", str(path)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results
    outputs = sorted(out.strip() for out, _ in results)
    assert outputs == ["0 added, 0 updated, 43 unchanged, 0 skipped", "43 added, 0 updated, 0 unchanged, 0 skipped"]
    with Store.open(path) as store:
        assert store.count_documents() == 43
        assert store.check_integrity()


def test_a_rate_limit_window_is_shared_by_every_handle_on_the_library(library_target: Path | str):
    from medcite.store.review import ReviewStore

    with Store.open(library_target) as first, Store.open(library_target) as second:  # two web workers
        workers = [ReviewStore(first), ReviewStore(second)]
        assert [workers[n % 2].rate_limit_hit("ask:203.0.113.7", 3, 60.0, 1000.0 + n) for n in range(3)] == [None] * 3
        assert workers[0].rate_limit_hit("ask:203.0.113.7", 3, 60.0, 1010.0) == pytest.approx(50.0)
        assert workers[1].rate_limit_hit("ask:198.51.100.2", 3, 60.0, 1010.0) is None  # another client
        assert workers[1].rate_limit_hit("ask:203.0.113.7", 3, 60.0, 1060.5) is None  # the first hit left the window
