"""Answer quality on real clinicians' questions: the figures of issue 10, beside a baseline, in one run.

Usage:
    python benchmarks/answers.py [--questions ../shared/data/answers/clinical_questions_dev.jsonl]
                                 [--installs bare,dense] [--baseline-ref 037d903] [--no-baseline]
                                 [--library default|mixed] [--show-failures] [--format table|json]

Every figure is computed as ``answers/README.md`` defines it (text lower-cased, ``**`` dropped, >=/<= for
the signs, punctuation other than ``% . / < > = + -`` collapsed to spaces, terms matched on word
boundaries):

- bottom line correct (covered questions): not abstained, every ``bottom_line_terms`` group present in the
  bottom line, no ``wrong_terms`` in it;
- covered / uncovered questions that abstain;
- bottom lines holding a wrong term (count);
- gold passage cited anywhere in the answer, and in the bottom line;
- must-term coverage (share of ``must_terms`` groups present anywhere in the answer);
- citation mismatches (``check_citations`` problems; the composer checks strictly, so 0 or an error);
- ``medcite search`` gold-passage recall@10 and @1 (the gold quote in one of the top k passages, with the
  search the CLI runs for that install);
- warm ``ask`` latency p50/p95 (each question asked once to warm caches, then timed once).

Rows, all in the same run: for each install, the baseline (the composer of ``--baseline-ref``, by default
the landed main before issue 10, extracted with ``git archive`` into the cache and run in a subprocess on
its own library) and this working tree. Installs: ``bare`` (no embedder: lexical search, what
``pip install -e .`` gives) and ``dense`` (the embedders ``medcite ask`` and ``medcite search`` load when
the ``dense`` extra is installed, ``MEDCITE_EMBEDDER=auto``). Each row runs in its own process.

``--library mixed`` answers on the development library of ``benchmarks/_datasets.py`` (guideline pack +
MedQuAD + the PubMed samples + PubMedQA), as users' libraries are.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASELINE_REF = "037d903"
"""Landed main when issue 10 was taken up (the composer the issue measured)."""

# --- The figures, as answers/README.md defines them ------------------------------------------------------------

_KEEP = set("%./<>=+-")


def normalise(text: str) -> str:
    """Lower-case, drop ``**``, map >=/<= signs, collapse other punctuation to spaces."""
    text = text.lower().replace("**", "").replace("≥", ">=").replace("≤", "<=")
    text = "".join(c if c.isalnum() or c.isspace() or c in _KEEP else " " for c in text)
    return " ".join(text.split())


def has_term(term: str, text: str) -> bool:
    """Whether a (normalised) term occurs in normalised text on word boundaries."""
    needle = normalise(term)
    if not needle:
        return False
    return re.search(rf"(?<![a-z0-9]){re.escape(needle)}(?![a-z0-9])", text) is not None


def group_present(group: str, text: str) -> bool:
    """Whether any alternative of a ``a|b|c`` term group occurs in normalised text."""
    return any(has_term(alternative, text) for alternative in group.split("|"))


def answer_texts(answer: dict) -> tuple[str, str]:
    """Normalised bottom line, and the whole answer (bottom line and every section statement)."""
    bottom = answer["bottom_line"]["text"]
    statements = [s["text"] for section in answer["sections"] for s in section["statements"]]
    return normalise(bottom), normalise(" ".join([bottom, *statements]))


def score_question(row: dict, answer: dict, search_texts: list[str]) -> dict:
    """Per-question figures for one answer and the texts of its ``medcite search`` top 10."""
    bottom, whole = answer_texts(answer)
    abstained = bool(answer["abstained"])
    result: dict = {"id": row["id"], "covered": row["covered"], "abstained": abstained}
    if not row["covered"]:
        return result
    gold = normalise(row["gold_quote"])
    groups = row.get("bottom_line_terms") or []
    wrong = [term for term in row.get("wrong_terms") or [] if has_term(term, bottom)]
    missing = [group for group in groups if not group_present(group, bottom)]
    references = {ref["n"]: normalise(ref["passage"]) for ref in answer["references"]}
    cited = set(answer["bottom_line"]["citations"])
    for section in answer["sections"]:
        for statement in section["statements"]:
            cited |= set(statement["citations"])
    must = row.get("must_terms") or []
    result.update(
        correct=not abstained and not missing and not wrong,
        missing=missing,
        wrong=wrong,
        gold_cited=not abstained and any(gold in references.get(n, "") for n in cited),
        gold_in_bottom=not abstained and any(gold in references.get(n, "") for n in answer["bottom_line"]["citations"]),
        must_coverage=(sum(group_present(g, whole) for g in must) / len(must)) if must else 1.0,
        recall_at_1=any(gold in normalise(t) for t in search_texts[:1]),
        recall_at_10=any(gold in normalise(t) for t in search_texts[:10]),
        bottom_line=answer["bottom_line"]["text"],
    )
    return result


def summarise(results: list[dict], latencies_ms: list[float]) -> dict:
    """The table's figures over per-question results."""
    covered = [r for r in results if r["covered"]]
    uncovered = [r for r in results if not r["covered"]]

    def share(rows: list[dict], key: str) -> float:
        return round(sum(bool(r[key]) for r in rows) / len(rows), 3) if rows else 0.0

    ordered = sorted(latencies_ms)

    def percentile(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))], 1) if ordered else 0.0

    return {
        "n_covered": len(covered),
        "n_uncovered": len(uncovered),
        "bottom_line_correct": share(covered, "correct"),
        "covered_abstained": share(covered, "abstained"),
        "uncovered_abstained": share(uncovered, "abstained"),
        "wrong_term_bottom_lines": sum(bool(r["wrong"]) for r in covered),
        "gold_cited": share(covered, "gold_cited"),
        "gold_in_bottom_line": share(covered, "gold_in_bottom"),
        "must_term_coverage": round(statistics.fmean(r["must_coverage"] for r in covered), 3) if covered else 0.0,
        "search_recall_at_10": share(covered, "recall_at_10"),
        "search_recall_at_1": share(covered, "recall_at_1"),
        "citation_mismatches": sum(r.get("citation_problems", 0) for r in results),
        "ask_p50_ms": percentile(0.5),
        "ask_p95_ms": percentile(0.95),
    }


# --- One row: runs in its own process with one source tree ------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    """Answer every question with the importable medcite; print one JSON line per question, then timings."""
    from medcite.answer import ask, check_citations  # noqa: F401  (check_citations: the strict check ran inside)

    try:
        from medcite.answer import search_passages  # this tree: `medcite search` orders passages by statement

        def search(question, retriever):
            return search_passages(question, retriever=retriever, limit=10)
    except ImportError:  # the baseline: `medcite search` was the retriever's ranking

        def search(question, retriever):
            return retriever.search(question, limit=10)

    from medcite.retrieve import Retriever
    from medcite.settings import Settings
    from medcite.store import Store

    rows = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line.strip()]
    settings = Settings(library=Path(args.library), embedder=args.embedder)
    ask_embedder, search_embedder = _embedders(args.embedder)
    with Store.open(settings.library) as store:
        _fill(store, settings)
        for embedder in {id(e): e for e in (ask_embedder, search_embedder) if e is not None}.values():
            from medcite.retrieve.dense import embed_passages

            embed_passages(store, embedder)
        ask_retriever = Retriever(store, settings, embedder=ask_embedder)
        search_retriever = (
            ask_retriever if search_embedder is ask_embedder else Retriever(store, settings, embedder=search_embedder)
        )
        for row in rows:  # warm-up pass: vocabulary, term statistics, model caches
            ask(row["question"], retriever=ask_retriever, audience=row.get("audience", "clinician"))
        for row in rows:
            started = time.perf_counter()
            error = None
            try:
                answer = ask(row["question"], retriever=ask_retriever, audience=row.get("audience", "clinician"))
                data = json.loads(answer.model_dump_json())
            except Exception as exc:  # a crash is a failed answer, reported, not a lost run
                error = f"{type(exc).__name__}: {exc}"
                data = {"abstained": True, "bottom_line": {"text": "", "citations": []}, "sections": [],
                        "references": []}  # fmt: skip
            elapsed = (time.perf_counter() - started) * 1000
            hits = search(row["question"], search_retriever)
            print(json.dumps({"id": row["id"], "answer": data, "error": error, "ms": elapsed,
                              "search": [h.text for h in hits]}), flush=True)  # fmt: skip


def _embedders(name: str):
    """The embedders ``medcite ask`` and ``medcite search`` load for an install ('none' or 'auto')."""
    if name == "none":
        return None, None
    from medcite.embed import load_embedder

    try:
        from medcite.embed import CLI_EMBEDDER_CHOICE  # this tree: one embedder for both commands
    except ImportError:  # the baseline: ask took the quickest embedder, search the best
        return load_embedder("auto-fast"), load_embedder("auto")
    embedder = load_embedder(CLI_EMBEDDER_CHOICE)
    return embedder, embedder


def _fill(store, settings) -> None:
    from medcite.index import default_guideline_pack, ingest

    if store.count_documents() == 0:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)


# --- Orchestration ---------------------------------------------------------------------------------------------


def _baseline_src(ref: str, cache: Path) -> Path:
    target = cache / f"baseline-{ref}"
    if not (target / "src" / "medcite").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = target / "src.tar"
        with archive.open("wb") as stream:
            subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], stdout=stream, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        archive.unlink()
    return target / "src"


def _library_for(label: str, kind: str, cache: Path, data: Path) -> Path:
    if kind == "mixed":
        sys.path.insert(0, str(REPO / "benchmarks"))
        from _datasets import build_library

        source = build_library("dev", data, cache, log=lambda line: print(line, file=sys.stderr))
        target = cache / f"answers-mixed-{label}.db"
        if not target.exists():  # each source tree migrates its own copy
            import shutil

            shutil.copy(source, target)
        return target
    return cache / f"answers-default-{label}.db"


def run_row(src: Path, label: str, install: str, args: argparse.Namespace) -> dict:
    """Run one worker process; return its per-question results and summary."""
    library = _library_for(label, args.library, args.cache, args.data)
    env = {**os.environ, "PYTHONPATH": str(src), "MEDCITE_EMBEDDER": "none" if install == "bare" else "auto"}
    command = [sys.executable, __file__, "--worker", "--questions", str(args.questions), "--library", str(library)]
    command += ["--embedder", "none" if install == "bare" else "auto"]
    started = time.perf_counter()
    output = subprocess.run(command, env=env, capture_output=True, text=True)
    if output.returncode != 0:
        raise SystemExit(f"{label} {install}: the worker failed:\n{output.stderr[-3000:]}")
    rows = {json.loads(line)["id"]: json.loads(line) for line in Path(args.questions).read_text().splitlines() if line}
    results, latencies = [], []
    for line in output.stdout.splitlines():
        record = json.loads(line)
        result = score_question(rows[record["id"]], record["answer"], record["search"])
        result["error"] = record["error"]
        result["citation_problems"] = 1 if record["error"] and "CitationError" in record["error"] else 0
        results.append(result)
        latencies.append(record["ms"])
    return {"label": label, "install": install, "seconds": round(time.perf_counter() - started, 1),
            "summary": summarise(results, latencies), "results": results}  # fmt: skip


TARGETS = {
    "bottom_line_correct": ">= 0.85",
    "covered_abstained": "<= 0.05",
    "uncovered_abstained": ">= 0.95",
    "wrong_term_bottom_lines": "0",
    "gold_cited": ">= 0.95",
    "search_recall_at_10": ">= 0.97",
    "search_recall_at_1": ">= 0.80",
    "ask_p95_ms": "< 500",
}


def print_table(rows: list[dict]) -> None:
    """Figures as rows, one column per (install, tree)."""
    keys = list(rows[0]["summary"])
    heads = [f"{r['install']}:{r['label']}" for r in rows]
    print(f"{'figure':<26}{'target':>9}" + "".join(f"{h:>18}" for h in heads))
    for key in keys:
        cells = "".join(f"{r['summary'][key]!s:>18}" for r in rows)
        print(f"{key:<26}{TARGETS.get(key, ''):>9}{cells}")


def main() -> None:
    """Run the rows and print the figures (and, with --show-failures, each wrong bottom line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--questions", type=Path, default=REPO.parent / "shared" / "data" / "answers" / "clinical_questions_dev.jsonl"
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--installs", default="bare,dense")
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE_REF)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--library", choices=["default", "mixed"], default="default")
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    if "--worker" in sys.argv:
        worker_parser = argparse.ArgumentParser()
        worker_parser.add_argument("--worker", action="store_true")
        worker_parser.add_argument("--questions")
        worker_parser.add_argument("--library")
        worker_parser.add_argument("--embedder")
        worker(worker_parser.parse_args())
        return
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    trees = [] if args.no_baseline else [("baseline", _baseline_src(args.baseline_ref, args.cache))]
    trees.append(("this tree", REPO / "src"))
    rows = []
    for install in args.installs.split(","):
        for label, src in trees:
            print(f"[{install}] {label} ...", file=sys.stderr)
            key = "baseline" if label == "baseline" else "current"
            rows.append(run_row(src, key, install, args))
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.questions.name}: {rows[0]['summary']['n_covered']} covered, "
          f"{rows[0]['summary']['n_uncovered']} uncovered questions; library: {args.library}")  # fmt: skip
    print_table(rows)
    if args.show_failures:
        for row in rows:
            if row["label"] == "baseline":
                continue
            print(f"\n== failures: {row['install']}:{row['label']}")
            for result in row["results"]:
                if result["covered"] and not result["correct"]:
                    print(f"{result['id']} abst={result['abstained']} missing={result['missing']} "
                          f"wrong={result['wrong']} gold@10={result['recall_at_10']} "
                          f"err={result['error']}\n    BL: {result.get('bottom_line', '')[:300]!r}")  # fmt: skip
                elif not result["covered"] and not result["abstained"]:
                    print(f"{result['id']} uncovered, answered")


if __name__ == "__main__":
    main()
