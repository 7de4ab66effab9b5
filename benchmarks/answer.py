"""Latency of ``medcite ask``: warm calls on the default and development libraries, and one CLI process.

Usage:
    python benchmarks/answer.py [--repeat 5] [--libraries default,dev] [--embedders none,wordllama-l2-256,minilm-l6-v2]
                                [--data ../shared/data] [--cache benchmarks/.cache] [--format table|json]

Rows, all in the same run, for each library x embedder (embedders that are not installed are skipped):

- baseline: ``Retriever.search`` alone (the retrieval ``ask`` starts with), warm;
- ask (warm): the whole ``ask`` call (retrieval, sibling passages, composition, citation checks) in one
  process after one warm-up pass, p50 and p95 over every question x repeat; clinician audience, and the
  patient audience (reading grade, definitions) on the default library;
- CLI (process): wall time of one ``medcite ask ... --format json`` subprocess on the default library,
  interpreter start-up, imports and model loading included (library and vectors already exist).

Libraries: ``default`` is the guideline pack (built in a temporary folder); ``dev`` is the development
library of ``benchmarks/_datasets.py`` (guideline pack + MedQuAD + the PubMed samples, ~38k passages),
built once into the cache. The questions are the clinician questions of tests/test_answer.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _timed(questions: list[str], repeat: int, call) -> tuple[float, float]:
    for question in questions:  # warm-up: vocabulary, term statistics, stemmer and model caches
        call(question)
    times = []
    for _ in range(repeat):
        for question in questions:
            started = time.perf_counter()
            call(question)
            times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1), round(_percentile(times, 0.95), 1)


def _library(name: str, folder: Path, data: Path, cache: Path) -> Path:
    from medcite.index import default_guideline_pack, ingest
    from medcite.settings import Settings
    from medcite.store import Store

    if name == "dev":
        from _datasets import build_library

        return build_library("dev", data, cache, log=lambda line: print(line, file=sys.stderr))
    library = folder / "default.db"
    if not library.exists():
        with Store.open(library) as store:
            ingest(store, "guidelines", [default_guideline_pack()], settings=Settings(library=library))
    return library


def main() -> None:
    """Print p50/p95 warm ask latency per library and embedder, a retrieval baseline, and CLI process times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--libraries", default="default,dev")
    parser.add_argument("--embedders", default="none,wordllama-l2-256,minilm-l6-v2")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()

    from medcite.answer import ask
    from medcite.embed import available_embedders, load_embedder
    from medcite.retrieve import Retriever
    from medcite.retrieve.dense import embed_passages
    from medcite.settings import Settings
    from medcite.store import Store
    from test_answer import FIRST_LINE, IN_SCOPE, SPINAL

    questions = [q for q, _, _ in FIRST_LINE] + IN_SCOPE + [SPINAL]
    installed = set(available_embedders()) | {"none"}
    embedders = [name for name in args.embedders.split(",") if name in installed]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        for library_name in args.libraries.split(","):
            library = _library(library_name, Path(folder), args.data, args.cache)
            for embedder_name in embedders:
                settings = Settings(library=library, embedder=embedder_name)
                embedder = None if embedder_name == "none" else load_embedder(embedder_name)
                with Store.open(library) as store:
                    if embedder is not None:
                        embed_passages(store, embedder)  # no-op when the vectors exist
                    retriever = Retriever(store, settings, embedder=embedder)
                    passages = store.count_passages()
                    search = _timed(questions, args.repeat, lambda q, r=retriever: r.search(q, limit=12))
                    warm = _timed(questions, args.repeat, lambda q, r=retriever: ask(q, retriever=r))
                    audiences = [("clinician", warm)]
                    if library_name == "default":
                        patient = _timed(
                            questions, args.repeat, lambda q, r=retriever: ask(q, retriever=r, audience="patient")
                        )
                        audiences.append(("patient", patient))
                row = {"library": library_name, "passages": passages, "embedder": embedder_name}
                rows.append({**row, "measure": "baseline: Retriever.search", "p50_ms": search[0], "p95_ms": search[1]})
                for audience, (p50, p95) in audiences:
                    rows.append({**row, "measure": f"ask, warm, {audience}", "p50_ms": p50, "p95_ms": p95})
        library = _library("default", Path(folder), args.data, args.cache)
        for embedder_name in embedders:
            env = {**os.environ, "MEDCITE_EMBEDDER": embedder_name}
            command = [sys.executable, "-m", "medcite", "ask", questions[0], "--format", "json"]
            command += ["--library", str(library)]
            subprocess.run(command, env=env, capture_output=True, check=True)  # vectors, OS file cache
            started = time.perf_counter()
            subprocess.run(command, env=env, capture_output=True, check=True)
            seconds = time.perf_counter() - started
            rows.append(
                {"library": "default", "passages": None, "embedder": embedder_name, "measure": "CLI ask, one process",
                 "seconds": round(seconds, 2)}
            )  # fmt: skip
    if args.format == "json":
        print(json.dumps({"questions": len(questions), "repeat": args.repeat, "rows": rows}, indent=2))
        return
    print(
        f"{len(questions)} questions x {args.repeat} repeats (targets: warm p95 < 500 ms default, < 1 s dev; CLI < 2 s)"
    )
    print(f"{'library':<9}{'passages':>9}  {'embedder':<18}{'measure':<30}{'p50 ms':>9}{'p95 ms':>9}{'s':>7}")
    for row in rows:
        p50, p95 = row.get("p50_ms", ""), row.get("p95_ms", "")
        passages = row["passages"] if row["passages"] is not None else ""
        print(
            f"{row['library']:<9}{passages:>9}  {row['embedder']:<18}{row['measure']:<30}{p50:>9}{p95:>9}"
            f"{row.get('seconds', ''):>7}"
        )


if __name__ == "__main__":
    main()
