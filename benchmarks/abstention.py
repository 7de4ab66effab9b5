"""Abstention: how well ``ask``'s evidence-coverage score separates answerable from unanswerable questions.

Usage:
    python benchmarks/abstention.py [--data ../shared/data] [--cache benchmarks/.cache] [--format table|json]

Development set (PubMedQA, ``pubmedqa/ori_pqal.json``): the ``pubmed`` benchmark library (every PubMed
abstract in the shared data, PubMedQA's 1,000 contexts included) is copied and the PubMedQA abstracts of
half the questions (odd PMIDs) are deleted from the copy. A question whose own abstract is still in the
library is *answerable*; one whose abstract was deleted is *unanswerable* (its evidence is absent, though
related abstracts remain). Each question is retrieved for as ``ask`` does (lexical BM25, 12 hits) and
scored with ``medcite.answer.evidence_coverage``; ``ask`` abstains below a threshold.

Thresholds are chosen by 2-fold cross-validation (folds by PMID): the threshold with the best balanced
accuracy on one fold is evaluated on the other, so no figure is measured on the rows it was tuned on.
Rows (same run): a baseline that never abstains; the earlier hand-set threshold (0.40); the shipped
``ABSTAIN_MIN_COVERAGE``; the cross-validated choices. The default library's own checks follow: the test
suite's in-scope guideline questions must be answered and the spinal implant question of issue 4 must abstain.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))


def _metrics(scores: list[tuple[float, bool]], threshold: float) -> dict[str, float]:
    """Abstention metrics at a threshold: positives are unanswerable questions (abstaining is right)."""
    tp = sum(1 for s, answerable in scores if s < threshold and not answerable)
    fp = sum(1 for s, answerable in scores if s < threshold and answerable)
    fn = sum(1 for s, answerable in scores if s >= threshold and not answerable)
    tn = sum(1 for s, answerable in scores if s >= threshold and answerable)
    recall = tp / (tp + fn) if tp + fn else 0.0  # unanswerable questions abstained on
    specificity = tn / (tn + fp) if tn + fp else 0.0  # answerable questions answered
    precision = tp / (tp + fp) if tp + fp else 0.0
    return {
        "threshold": round(threshold, 2),
        "balanced_accuracy": round((recall + specificity) / 2, 3),
        "abstain_precision": round(precision, 3),
        "abstain_recall": round(recall, 3),
        "answered_when_answerable": round(specificity, 3),
    }


def _best_threshold(scores: list[tuple[float, bool]]) -> float:
    grid = [round(0.05 * step, 2) for step in range(0, 21)]
    return max(grid, key=lambda t: (_metrics(scores, t)["balanced_accuracy"], -t))


def main() -> None:
    """Print abstention metrics at the shipped threshold, a cross-validated one and never-abstain."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()

    from _datasets import build_library, pubmedqa_questions

    from medcite.answer import ABSTAIN_MIN_COVERAGE, RETRIEVAL_LIMIT_PASSAGES, ask, evidence_coverage
    from medcite.index import default_guideline_pack, ingest
    from medcite.retrieve import Retriever
    from medcite.settings import Settings
    from medcite.store import Store
    from test_answer import FIRST_LINE, IN_SCOPE, SPINAL

    questions = pubmedqa_questions(args.data)
    source = build_library("pubmed", args.data, args.cache, log=lambda line: print(line, file=sys.stderr))
    folds: dict[int, list[tuple[float, bool]]] = {0: [], 1: []}
    with tempfile.TemporaryDirectory() as folder:
        library = Path(folder) / "abstention.db"
        shutil.copyfile(source, library)
        settings = Settings(library=library, embedder="none")
        with Store.open(library) as store:
            removed = [f"pmid:{pmid}" for pmid, _ in questions if int(pmid) % 2 == 1]
            store.delete_documents(removed)
            retriever = Retriever(store, settings)
            for pmid, question in questions:
                hits = retriever.search(question, limit=RETRIEVAL_LIMIT_PASSAGES)
                score = evidence_coverage(question, hits, retriever=retriever)
                folds[int(pmid) // 2 % 2].append((score, int(pmid) % 2 == 0))
        # The default library's own checks, at the shipped threshold and at the cross-validated ones.
        guideline_library = Path(folder) / "guidelines.db"
        settings = Settings(library=guideline_library, embedder="none")
        with Store.open(guideline_library) as store:
            ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
            retriever = Retriever(store, settings)
            in_scope = [q for q, _, _ in FIRST_LINE] + IN_SCOPE
            in_scope_scores = [
                evidence_coverage(q, retriever.search(q, limit=RETRIEVAL_LIMIT_PASSAGES), retriever=retriever)
                for q in in_scope
            ]
            spinal_score = evidence_coverage(
                SPINAL, retriever.search(SPINAL, limit=RETRIEVAL_LIMIT_PASSAGES), retriever=retriever
            )
            spinal_abstains = ask(SPINAL, retriever=retriever).abstained

    everything = folds[0] + folds[1]
    rows = [{"row": "baseline: never abstain", **_metrics(everything, 0.0)}]
    rows.append({"row": "baseline: earlier hand-set threshold 0.40", **_metrics(everything, 0.40)})
    rows.append({"row": "shipped ABSTAIN_MIN_COVERAGE", **_metrics(everything, ABSTAIN_MIN_COVERAGE)})
    for tuned_on, tested_on in ((0, 1), (1, 0)):
        threshold = _best_threshold(folds[tuned_on])
        label = f"tuned on fold {tuned_on}, tested on fold {tested_on}"
        rows.append({"row": label, **_metrics(folds[tested_on], threshold)})
    report = {
        "dataset": "PubMedQA ori_pqal (1,000 questions; odd PMIDs' abstracts deleted = unanswerable)",
        "answerable": sum(1 for _, a in everything if a),
        "unanswerable": sum(1 for _, a in everything if not a),
        "rows": rows,
        "default_library": {
            "in_scope_questions": len(in_scope_scores),
            "in_scope_min_score": round(min(in_scope_scores), 3),
            "in_scope_answered_at_shipped": sum(1 for s in in_scope_scores if s >= ABSTAIN_MIN_COVERAGE),
            "spinal_score": round(spinal_score, 3),
            "spinal_abstains": spinal_abstains,
        },
    }
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return
    print(f"{report['dataset']}: {report['answerable']} answerable, {report['unanswerable']} unanswerable")
    header = f"{'row':44} {'threshold':>9} {'bal.acc':>8} {'abst.P':>7} {'abst.R':>7} {'answered':>9}"
    print(header)
    for row in rows:
        print(
            f"{row['row']:44} {row['threshold']:>9} {row['balanced_accuracy']:>8} {row['abstain_precision']:>7} "
            f"{row['abstain_recall']:>7} {row['answered_when_answerable']:>9}"
        )
    d = report["default_library"]
    print(
        f"default library: {d['in_scope_answered_at_shipped']}/{d['in_scope_questions']} in-scope questions answered "
        f"(lowest score {d['in_scope_min_score']}); spinal implant question scores {d['spinal_score']}, "
        f"abstains: {d['spinal_abstains']}"
    )


if __name__ == "__main__":
    main()
