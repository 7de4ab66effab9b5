"""Retrieval quality and speed on LiveQA-Med 2017 and PubMedQA, beside a plain BM25 baseline (issue 3).

Usage:
    python benchmarks/retrieval.py [--data ../shared/data] [--cache benchmarks/.cache]
                                   [--format table|json] [--growth] [--only liveqa,pubmedqa]

Rows, all in the same run and on the same libraries:

- baseline: ``bm25s`` (default parameters: k1 1.5, b 0.75, Lucene IDF, its
  default tokenizer: lower-case, ``\\b\\w\\w+\\b``, English stop words, no
  stemming) over exactly the passages the library indexes, each as
  ``title + section + text`` (the three FTS5 columns);
- medcite lexical, medcite dense, medcite hybrid (the default): ``Retriever.search``
  in each mode. Dense and hybrid use ``--embedder`` (default ``auto``, i.e. the
  best installed model); passages without a stored vector for it are embedded
  once into the cached library (wordllama: seconds; MiniLM on 2 CPU cores: about
  15 passages/s, so tens of minutes for MedQuAD the first time).

Every system returns ``--depth`` passages (default 30) per query; passages are
collapsed to their answer (LiveQA) or document (PubMedQA), first occurrence
wins, and the first 10 units are scored with ranx. Latency is per-query wall
time of that one call, warm (every query is run once untimed first), one
thread; QPS = queries / summed latency.

1. LiveQA-Med 2017 (TREC): the 104 test questions, as the consumer wrote them
   (SUBJECT + MESSAGE) and as NLM summarised them (second run), against
   MedQuAD + the judged answers; qrels = the 2,479 judgments
   ``QuestionID judgment AnswerID`` (2,311 distinct pairs: an answer judged twice
   for one question keeps its higher grade). MAP@10 and P@5 count 3-Incomplete
   and 4-Excellent as relevant (ranx ``-l3``); nDCG@10 uses the graded gain
   judgment - 1 (0..3, the TREC LiveQA score scale, linear gains). A MedQuAD
   XML passage and its judged copy are one answer (see
   ``_datasets.liveqa_answer_map``). Each metric averages over the questions
   with at least one relevant (MAP, P@5) or gain > 0 (nDCG) answer.
2. PubMedQA (PQA-L): the 1,000 questions against every PubMed abstract in the
   shared data; the gold document is the question's own abstract ``pmid:<PMID>``.
   recall@1, recall@5, MRR@10.

``--growth`` measures lexical and hybrid p50/p95 on the development library
(guideline pack + MedQuAD + PubMed samples) at 1x, 4x and 16x its size, the
extra copies being DUPLICATED documents inserted under new doc ids
(``dupN:<doc_id>``, vectors copied too); 30 LiveQA + 30 PubMedQA questions, limit 10.
The 16x library takes about 2.5 GB (plus its ANN index) in the cache folder.

Published figures: Ben Abacha & Demner-Fushman, "A question-entailment approach
to question answering", BMC Bioinformatics 20:511 (2019), report figures on these
104 questions; their results table could not be read offline when this benchmark
was written, so the "paper" row is left empty rather than guessed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _datasets as ds  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
UNITS_SCORED = 10

# (passage_id, doc_id) in rank order
SearchFn = Callable[[str, int], list[tuple[str, str]]]


@dataclass
class System:
    """One row: a name and a search function, or the reason it cannot run."""

    name: str
    search: SearchFn | None
    note: str = ""


@dataclass
class Result:
    benchmark: str
    run: str
    system: str
    queries: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    qps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    note: str = ""


# -- systems ---------------------------------------------------------------------------------------


def bm25s_system(library: Path) -> System:
    """Index the library's passages with bm25s at its defaults; return the baseline system."""
    import bm25s

    rows = list(ds.iter_passages(library))
    corpus = [f"{row.title}\n{row.section}\n{row.text}" for row in rows]
    with contextlib.redirect_stderr(io.StringIO()):
        tokens = bm25s.tokenize(corpus, show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
    ids = [(row.passage_id, row.doc_id) for row in rows]

    def search(query: str, limit: int) -> list[tuple[str, str]]:
        query_tokens = bm25s.tokenize([query], show_progress=False, return_ids=False)  # bm25s skips unknown words
        found, scores = retriever.retrieve(query_tokens, k=min(limit, len(ids)), show_progress=False)
        return [ids[i] for i, score in zip(found[0], scores[0], strict=True) if score > 0]

    return System("baseline: bm25s (defaults)", search, f"{len(rows):,} passages")


def medcite_systems(
    library: Path | str,
    *,
    embedder_name: str,
    modes: Sequence[str] = ("lexical", "dense", "hybrid"),
    log: Callable[[str], None] = print,
    store_options: dict | None = None,
) -> list[System]:
    """Return medcite's rows: ``medcite search`` (``answer.search_passages``) in each mode (dense and hybrid need an
    embedder).

    Passages without a vector for the embedder are embedded first
    (``retrieve.dense.embed_passages``, stored in the library, so once per
    cached library); a query with nothing to search (``QueryError``) counts as no result.
    """
    from medcite.answer import search_passages
    from medcite.errors import QueryError
    from medcite.retrieve import Retriever
    from medcite.settings import Settings
    from medcite.store import Store

    store = Store.open(library, **(store_options or {}))
    settings = Settings(library=library, embedder=embedder_name)
    embedder, embedder_note = None, ""
    if any(mode != "lexical" for mode in modes):
        if embedder_name == "none":
            embedder_note = "unavailable: --embedder none"
        else:
            try:
                from medcite.embed import load_embedder

                embedder = load_embedder(embedder_name)
            except Exception as exc:  # missing module, extra or weights
                embedder_note = f"unavailable: no embedder ({type(exc).__name__}: {exc})"
    if embedder is not None:
        from medcite.retrieve.dense import embed_passages

        missing = store.count_missing_vectors(embedder.name)
        if missing:
            shown = getattr(library, "name", library)
            log(f"[embed] {shown}: {missing:,} passages with {embedder.name} (stored; done once) ...")
            started = time.perf_counter()
            embed_passages(store, embedder, batch=256)
            log(f"[embed]   {time.perf_counter() - started:.0f} s")
    retriever = Retriever(store, settings, embedder=embedder)
    systems = []
    for mode in modes:
        label = f"medcite {mode}" + (" (default)" if mode == "hybrid" else "")
        if embedder is not None and mode != "lexical":
            label += f" [{embedder.name}]"
        if mode != "lexical" and embedder is None:
            systems.append(System(label, None, embedder_note))
            continue

        def search(query: str, limit: int, mode: str = mode) -> list[tuple[str, str]]:
            try:
                hits = search_passages(query, retriever=retriever, limit=limit, mode=mode)  # type: ignore[arg-type]
            except QueryError:
                return []
            return [(hit.passage_id, hit.doc_id) for hit in hits]

        search("heart attack aspirin", 5)  # builds the vocabulary and the ANN index outside the timed runs
        systems.append(System(label, search))
    return systems


# -- running and scoring ---------------------------------------------------------------------------


def run_queries(
    system: System, queries: Sequence[tuple[str, str]], depth: int
) -> tuple[dict[str, list[tuple[str, str]]], list[float]]:
    """Run every query once untimed (warm-up), then once timed; return results and latencies (ms)."""
    assert system.search is not None
    for _qid, text in queries:
        system.search(text, depth)
    results, latencies_ms = {}, []
    for qid, text in queries:
        started = time.perf_counter()
        results[qid] = system.search(text, depth)
        latencies_ms.append((time.perf_counter() - started) * 1000)
    return results, latencies_ms


def collapse(ranked: list[tuple[str, str]], unit_of: Callable[[str, str], str | None]) -> dict[str, float]:
    """Collapse passages to units (first occurrence wins); return the first 10 as a ranx run entry."""
    units: list[str] = []
    for passage_id, doc_id in ranked:
        unit = unit_of(passage_id, doc_id)
        if unit is not None and unit not in units:
            units.append(unit)
            if len(units) == UNITS_SCORED:
                break
    return {unit: float(UNITS_SCORED - rank) for rank, unit in enumerate(units)}


def evaluate(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], metrics: list[str]) -> dict:
    """Score a run with ranx over the queries of ``qrels`` (a query with no results scores 0)."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    qrels_obj = Qrels({qid: dict(judged) for qid, judged in qrels.items()})
    # ranx needs a non-empty entry per query; a placeholder id never matches a judged unit.
    run_obj = Run({qid: (run.get(qid) or {"<no result>": 0.0}) for qid in qrels})
    scores = ranx_evaluate(qrels_obj, run_obj, metrics, make_comparable=True)
    pairs = scores.items() if len(metrics) > 1 else [(metrics[0], scores)]
    return {metric: round(float(value), 4) for metric, value in pairs}


def timing(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "qps": round(len(ordered) / (sum(ordered) / 1000), 1),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
    }


def clinical_benchmark(
    data: Path, cache: Path, depth: int, embedder_name: str, log: Callable[[str], None]
) -> tuple[list[Result], dict]:
    """The clinical development questions (answers/): is the passage holding the gold quote first, or in the top 10?

    On the default library (the guideline pack). medcite's rows are ``medcite search``'s results (no cap on passages
    per document unless ``MEDCITE_MAX_PASSAGES_PER_DOCUMENT`` sets one); bm25s ranks passages.
    """
    sys.path.insert(0, str(REPO / "benchmarks"))
    from answers import normalise

    library = cache / "retrieval-default.db"
    if not library.exists():
        from medcite.index import default_guideline_pack, ingest
        from medcite.settings import Settings
        from medcite.store import Store

        with Store.open(library) as store:
            ingest(store, "guidelines", [default_guideline_pack()], settings=Settings(library=library))
    rows = [json.loads(line) for line in (data / "answers" / "clinical_questions_dev.jsonl").read_text().splitlines()]
    rows = [row for row in rows if row["covered"]]
    texts = {p.passage_id: normalise(p.text) for p in ds.iter_passages(library)}
    golds = {row["id"]: normalise(row["gold_quote"]) for row in rows}
    queries = [(row["id"], row["question"]) for row in rows]
    systems = [bm25s_system(library), *medcite_systems(library, embedder_name=embedder_name, log=log)]
    results = []
    for system in systems:
        result = Result("Clinical questions (dev)", "question", system.name, len(queries), note=system.note)
        if system.search is not None:
            log(f"[clinical] {system.name} ...")
            ranked, latencies = run_queries(system, queries, depth)
            ranks = []
            for qid, hits in ranked.items():
                ranks.append(next((i for i, (pid, _d) in enumerate(hits, 1) if golds[qid] in texts.get(pid, "")), None))
            result.metrics = {
                "recall@1": round(sum(r == 1 for r in ranks) / len(ranks), 3),
                "recall@10": round(sum(r is not None and r <= 10 for r in ranks) / len(ranks), 3),
            }
            result.__dict__.update(timing(latencies))
        results.append(result)
    return results, {"library": str(library), "questions": len(queries)}


def liveqa_benchmark(
    data: Path, cache: Path, depth: int, embedder_name: str, log: Callable[[str], None], library_name: str = "medquad"
) -> tuple[list[Result], dict]:
    library = ds.build_library(library_name, data, cache, log=log)
    answer_map = ds.liveqa_answer_map(library)
    questions = ds.liveqa_questions(data)
    qrels = ds.liveqa_qrels(data)
    relevant = {q: {a: g for a, g in judged.items() if g >= 3} for q, judged in qrels.items()}
    relevant = {q: judged for q, judged in relevant.items() if judged}
    graded = {q: {a: g - 1 for a, g in judged.items() if g > 1} for q, judged in qrels.items()}
    graded = {q: judged for q, judged in graded.items() if judged}

    def unit_of(passage_id: str, doc_id: str) -> str:
        return answer_map.by_passage.get(passage_id, doc_id)

    systems = [bm25s_system(library), *medcite_systems(library, embedder_name=embedder_name, log=log)]
    results = []
    for run_name, attribute in (("original question", "original"), ("NLM summary", "summary")):
        queries = [(q.qid, getattr(q, attribute)) for q in questions]
        for system in systems:
            result = Result("LiveQA-Med 2017", run_name, system.name, len(queries), note=system.note)
            if system.search is not None:
                log(f"[liveqa] {run_name}: {system.name} ...")
                ranked, latencies = run_queries(system, queries, depth)
                run = {qid: collapse(hits, unit_of) for qid, hits in ranked.items()}
                result.metrics = {
                    **evaluate(relevant, run, ["map@10-l3", "precision@5-l3"]),
                    **evaluate(graded, run, ["ndcg@10"]),
                }
                result.__dict__.update(timing(latencies))
            results.append(result)
    info = {
        "library": str(library),
        "questions": len(questions),
        "questions judged": len(qrels),
        "questions with an answer graded >= 3 (MAP, P@5)": len(relevant),
        "questions with an answer graded >= 2 (nDCG)": len(graded),
        "answer-id mapping": dict(answer_map.counts),
        "paper (Ben Abacha & Demner-Fushman 2019)": "figures not retrieved; left empty",
    }
    return results, info


def pubmedqa_benchmark(
    data: Path, cache: Path, depth: int, embedder_name: str, log: Callable[[str], None], library_name: str = "pubmed"
) -> tuple[list[Result], dict]:
    library = ds.build_library(library_name, data, cache, log=log)
    questions = ds.pubmedqa_questions(data)
    qrels = {pmid: {f"pmid:{pmid}": 1} for pmid, _question in questions}
    systems = [bm25s_system(library), *medcite_systems(library, embedder_name=embedder_name, log=log)]
    results = []
    for system in systems:
        result = Result("PubMedQA", "question", system.name, len(questions), note=system.note)
        if system.search is not None:
            log(f"[pubmedqa] {system.name} ...")
            ranked, latencies = run_queries(system, questions, depth)
            run = {qid: collapse(hits, lambda _p, doc_id: doc_id) for qid, hits in ranked.items()}
            result.metrics = evaluate(qrels, run, ["recall@1", "recall@5", "mrr@10"])
            result.__dict__.update(timing(latencies))
        results.append(result)
    conn = sqlite3.connect(f"file:{library}?mode=ro", uri=True)
    n_docs = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    conn.close()
    return results, {"library": str(library), "documents": n_docs, "questions": len(questions)}


# -- growth ----------------------------------------------------------------------------------------


def grown_library(base: Path, factor: int, log: Callable[[str], None]) -> Path:
    """Return a copy of ``base`` holding ``factor`` copies of every document, built once and cached.

    Copy N of a document is the same document and passages under the doc id
    ``dupN:<doc_id>``; each copied passage also gets the stored vectors of its
    original (every embedder's), so dense search sees the duplicates too.
    """
    from medcite.store import Store

    target = base.with_name(f"{base.stem}-x{factor}.db")
    marker = target.with_suffix(".json")
    source = sqlite3.connect(f"file:{base}?mode=ro", uri=True)
    vectors = dict(source.execute("SELECT model, count(*) FROM passage_vectors GROUP BY model"))
    n_passages = source.execute("SELECT count(*) FROM passages").fetchone()[0]
    stamp = {"base": str(base), "passages": n_passages, "vectors": vectors, "factor": factor}
    if target.exists() and marker.exists() and json.loads(marker.read_text()) == stamp:
        source.close()
        return target
    for stale in (target, marker, *target.parent.glob(target.name + "*")):
        stale.unlink(missing_ok=True)
    with sqlite3.connect(target) as copy:
        source.backup(copy)
    doc_ids = [row[0] for row in source.execute("SELECT doc_id FROM documents ORDER BY doc_id")]
    source.close()
    started = time.perf_counter()
    with Store.open(target) as store:
        originals = [(store.get_document(d), store.get_passages(d)) for d in doc_ids]
        for copy_number in range(1, factor):
            batch = []
            for document, passages in originals:
                new_id = f"dup{copy_number}:{document.doc_id}"
                batch.append(
                    (
                        document.model_copy(update={"doc_id": new_id}),
                        [p.model_copy(update={"passage_id": f"{new_id}#p{p.n}", "doc_id": new_id}) for p in passages],
                    )
                )
                if len(batch) == 1000:
                    store.write_batch(batch)
                    batch = []
            store.write_batch(batch)
        conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        rowid_of = dict(conn.execute("SELECT passage_id, rowid FROM passages"))
        conn.close()
        passage_of = {rowid: passage_id for passage_id, rowid in rowid_of.items()}
        for model in vectors:
            original = [row for rows in store.iter_vectors(model) for row in rows]
            for start in range(0, len(original), 2000):
                store.write_vectors(
                    model,
                    [
                        (rowid_of[f"dup{n}:{passage_of[rowid]}"], blob)
                        for rowid, blob in original[start : start + 2000]
                        for n in range(1, factor)
                    ],
                )
        passages = store.stats().passages
    log(f"[growth] {target.name}: {passages:,} passages in {time.perf_counter() - started:.0f} s")
    marker.write_text(json.dumps(stamp))
    return target


def growth_benchmark(data: Path, cache: Path, embedder_name: str, log: Callable[[str], None]) -> list[dict]:
    base = ds.build_library("dev", data, cache, log=log)
    # Embed the base library first (if an embedder is there) so that the copies inherit its vectors.
    medcite_systems(base, embedder_name=embedder_name, modes=("hybrid",), log=log)
    rng = random.Random(3)
    liveqa = [(q.qid, q.original) for q in ds.liveqa_questions(data)]
    pubmedqa = ds.pubmedqa_questions(data)
    queries = rng.sample(liveqa, 30) + rng.sample(pubmedqa, 30)
    rows = []
    for factor in (1, 4, 16):
        library = base if factor == 1 else grown_library(base, factor, log)
        conn = sqlite3.connect(f"file:{library}?mode=ro", uri=True)
        n_passages = conn.execute("SELECT count(*) FROM passages").fetchone()[0]
        conn.close()
        for system in medcite_systems(library, embedder_name=embedder_name, modes=("lexical", "hybrid"), log=log):
            row = {
                "size": f"{factor}x" + (" (duplicated passages)" if factor > 1 else ""),
                "passages": n_passages,
                "system": system.name,
                "queries": len(queries),
                "note": system.note,
            }
            if system.search is not None:
                log(f"[growth] {factor}x {system.name} ...")
                _results, latencies = run_queries(system, queries, 10)
                row.update(timing(latencies))
            rows.append(row)
    return rows


# -- output ----------------------------------------------------------------------------------------


def _cell(value: float | None, width: int, digits: int = 3) -> str:
    return f"{'—' if value is None else f'{value:.{digits}f}':>{width}}"


def print_table(results: list[Result], infos: dict, growth: list[dict]) -> None:
    for benchmark in dict.fromkeys(r.benchmark for r in results):
        rows = [r for r in results if r.benchmark == benchmark]
        metrics = list(next((r.metrics for r in rows if r.metrics), {}))
        print(f"\n## {benchmark}")
        header = f"{'run':18} {'system':40}" + "".join(f" {m:>15}" for m in metrics)
        print(header + f" {'QPS':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for r in rows:
            line = f"{r.run:18} {r.system:40}" + "".join(_cell(r.metrics.get(m), 16) for m in metrics)
            line += _cell(r.qps, 9, 1) + _cell(r.p50_ms, 9, 2) + _cell(r.p95_ms, 9, 2)
            print(line + (f"  {r.note}" if r.note else ""))
        if benchmark.startswith("LiveQA"):
            print(
                f"{'':18} {'paper: Ben Abacha & Demner-Fushman 2019':40}"
                + "".join(f" {'':>15}" for _ in metrics)
                + "  (figures not retrieved; left empty)"
            )
        for key, value in infos.get(benchmark, {}).items():
            if isinstance(value, dict):
                print(f"  {key}:")
                for inner, count in value.items():
                    print(f"    {count:>6,}  {inner}")
            else:
                print(f"  {key}: {value}")
    if growth:
        print("\n## Latency growth on the development library (copies are DUPLICATED passages under new doc ids)")
        print(f"{'size':24} {'passages':>9} {'system':40} {'QPS':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for row in growth:
            print(
                f"{row['size']:24} {row['passages']:>9,} {row['system']:40}"
                + _cell(row.get("qps"), 9, 1)
                + _cell(row.get("p50_ms"), 9, 2)
                + _cell(row.get("p95_ms"), 9, 2)
                + (f"  {row['note']}" if row["note"] else "")
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("MEDCITE_TEST_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--depth", type=int, default=30, help="passages retrieved per query before collapsing")
    parser.add_argument(
        "--only", default="clinical,liveqa,pubmedqa", help="comma-separated: clinical, liveqa, pubmedqa"
    )
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="run LiveQA and PubMedQA on the mixed development library (guidelines + MedQuAD + PubMed samples + "
        "PubMedQA in one), as users' libraries are, instead of one library per benchmark",
    )
    parser.add_argument("--growth", action="store_true", help="also measure latency at 1x, 4x, 16x library size")
    parser.add_argument(
        "--embedder",
        default=os.environ.get("MEDCITE_EMBEDDER", "auto"),
        help="embedder of the dense and hybrid rows (medcite.embed names; 'none' to skip them)",
    )
    parser.add_argument("--rebuild", action="store_true", help="delete the cached libraries first")
    args = parser.parse_args()
    if not (args.data / ds.LIVEQA_XML).exists():
        sys.exit(f"{args.data} does not hold the shared data; pass --data pointing at it.")
    if args.rebuild and args.cache.exists():
        shutil.rmtree(args.cache)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.perf_counter()
    results: list[Result] = []
    infos: dict[str, dict] = {}
    wanted = {name.strip() for name in args.only.split(",")}
    if "clinical" in wanted:
        rows, infos["Clinical questions (dev)"] = clinical_benchmark(args.data, args.cache, 10, args.embedder, log)
        results += rows
    if "liveqa" in wanted:
        rows, infos["LiveQA-Med 2017"] = liveqa_benchmark(
            args.data, args.cache, args.depth, args.embedder, log, "dev" if args.mixed else "medquad"
        )
        results += rows
    if "pubmedqa" in wanted:
        rows, infos["PubMedQA"] = pubmedqa_benchmark(
            args.data, args.cache, args.depth, args.embedder, log, "dev" if args.mixed else "pubmed"
        )
        results += rows
    growth = growth_benchmark(args.data, args.cache, args.embedder, log) if args.growth else []
    log(f"[done] {time.perf_counter() - started:.0f} s")
    if args.format == "json":
        print(json.dumps({"results": [r.__dict__ for r in results], "info": infos, "growth": growth}, indent=2))
    else:
        print_table(results, infos, growth)


if __name__ == "__main__":
    main()
