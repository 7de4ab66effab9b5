"""Latency of ``medcite ask`` on the default library (guideline pack), lexical retrieval.

Usage:
    python benchmarks/answer.py [--repeat 5] [--format table|json]

Rows, all in the same run:

- baseline: ``Retriever.search`` alone (the retrieval ``ask`` starts with), warm;
- ask (warm): the whole ``ask`` call (retrieval, sibling passages, composition, citation checks) in one
  process after one warm-up pass, p50 and p95 over every question x repeat;
- CLI (process): wall time of one ``medcite ask ... --format json`` subprocess, interpreter start-up and
  imports included (the library already exists).

The questions are the clinician questions of tests/test_answer.py.
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


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    """Print p50/p95 warm ask latency, a retrieval-only baseline, and one CLI process time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()

    from medcite.answer import ask
    from medcite.index import default_guideline_pack, ingest
    from medcite.retrieve import Retriever
    from medcite.settings import Settings
    from medcite.store import Store
    from test_answer import FIRST_LINE, IN_SCOPE, SPINAL

    questions = [q for q, _, _ in FIRST_LINE] + IN_SCOPE + [SPINAL]
    with tempfile.TemporaryDirectory() as folder:
        library = Path(folder) / "library.db"
        settings = Settings(library=library, embedder="none")
        with Store.open(library) as store:
            ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
            retriever = Retriever(store, settings)
            for question in questions:  # warm-up: vocabulary, term statistics, stemmer cache
                ask(question, retriever=retriever)
            search_ms, ask_ms = [], []
            for _ in range(args.repeat):
                for question in questions:
                    started = time.perf_counter()
                    retriever.search(question, limit=12)
                    search_ms.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    ask(question, retriever=retriever)
                    ask_ms.append((time.perf_counter() - started) * 1000)
        env = {**os.environ, "MEDCITE_EMBEDDER": "none"}
        command = [sys.executable, "-m", "medcite", "ask", questions[0], "--format", "json", "--library", str(library)]
        subprocess.run(command, env=env, capture_output=True, check=True)  # OS file cache warm
        started = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=True)
        cli_s = time.perf_counter() - started
    rows = {
        "questions": len(questions),
        "repeat": args.repeat,
        "baseline_search_p50_ms": round(statistics.median(search_ms), 1),
        "baseline_search_p95_ms": round(_percentile(search_ms, 0.95), 1),
        "ask_p50_ms": round(statistics.median(ask_ms), 1),
        "ask_p95_ms": round(_percentile(ask_ms, 0.95), 1),
        "cli_process_s": round(cli_s, 2),
    }
    if args.format == "json":
        print(json.dumps(rows))
        return
    print(f"{rows['questions']} questions x {rows['repeat']} repeats, default library, lexical retrieval")
    print(f"{'measure':<34}{'p50':>10}{'p95':>10}")
    search = f"{rows['baseline_search_p50_ms']:>10}{rows['baseline_search_p95_ms']:>10}"
    print(f"{'baseline: Retriever.search (ms)':<34}{search}")
    print(f"{'ask, warm (ms)':<34}{rows['ask_p50_ms']:>10}{rows['ask_p95_ms']:>10}")
    print(f"{'CLI ask, one process (s)':<34}{rows['cli_process_s']:>10}")


if __name__ == "__main__":
    main()
