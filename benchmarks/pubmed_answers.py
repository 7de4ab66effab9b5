"""Answers from research abstracts (issue 14): is the bottom line quoted from the question's own abstract's results
or conclusions, and never from its background or methods?

Usage:
    python benchmarks/pubmed_answers.py [--data ../shared/data] [--cache benchmarks/.cache] [--questions 1000]
                                        [--embedder wordllama-l2-256] [--format table|json]

The library is the PubMed recipe of ``retrieval.py`` (MEDLINE sample, E-utilities records, MEDLINE exports and
PubMedQA's 1,000 abstracts). Each PubMedQA question (``ori_pqal.json``, in file order) is asked as a clinician
would (``answer.ask``); the passage its bottom line cites first is classed by the structured-abstract label of its
section, mapped to NLM's abstract categories (NLM, "Structured Abstracts in MEDLINE": BACKGROUND, OBJECTIVE,
METHODS, RESULTS, CONCLUSIONS) by the words of the label:

- results or conclusions: RESULT, FINDING, CONCLUSION, INTERPRETATION, OUTCOME, DISCUSSION, SUMMARY;
- background or methods: BACKGROUND, INTRODUCTION, OBJECTIVE, AIM, PURPOSE, CONTEXT, METHOD, DESIGN, SETTING,
  PATIENT, PARTICIPANT, SUBJECT, INTERVENTION, MEASURE, MATERIAL;
- anything else (an unlabelled abstract): other.

PubMedQA's contexts hold every labelled part of the abstract but its conclusions (kept apart as the long answer),
so "results or conclusions" here is in practice results. Rows: the share of questions whose bottom line cites
their own abstract's results or conclusions (target >= 0.90), any background or methods passage (target 0),
another document, or abstains. Every row is today's composer; it is the baseline for the issue's changes.
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

RESULTS_WORDS = ("RESULT", "FINDING", "CONCLUSION", "INTERPRETATION", "OUTCOME", "DISCUSSION", "SUMMARY")
METHODS_WORDS = (
    "BACKGROUND", "INTRODUCTION", "OBJECTIVE", "AIM", "PURPOSE", "CONTEXT", "METHOD", "DESIGN", "SETTING",
    "PATIENT", "PARTICIPANT", "SUBJECT", "INTERVENTION", "MEASURE", "MATERIAL",
)  # fmt: skip


def section_class(section: str) -> str:
    """'results' or 'methods' (background included) from a structured-abstract label, else 'other'."""
    label = section.upper()
    if any(word in label for word in RESULTS_WORDS):
        return "results"
    if any(word in label for word in METHODS_WORDS):
        return "methods"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--questions", type=int, default=1000, help="The first N PubMedQA questions.")
    parser.add_argument("--embedder", default="wordllama-l2-256")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()
    from medcite.answer import ask
    from medcite.embed import load_embedder
    from medcite.retrieve import Retriever
    from medcite.retrieve.dense import embed_passages
    from medcite.settings import Settings
    from medcite.store import Store

    library = ds.build_library("pubmed", args.data, args.cache, log=lambda line: print(line, file=sys.stderr))
    questions = ds.pubmedqa_questions(args.data)[: args.questions]
    counts = {"own results or conclusions": 0, "background or methods": 0, "other document": 0, "abstained": 0}
    own_other = 0
    started = time.perf_counter()
    with Store.open(library) as store:
        embedder = load_embedder(args.embedder) if args.embedder != "none" else None
        if embedder is not None:
            embed_passages(store, embedder)
        retriever = Retriever(store, Settings(library=library, embedder=args.embedder), embedder=embedder)
        for pmid, question in questions:
            answer = ask(question, retriever=retriever, audience="clinician")
            if answer.abstained or not answer.bottom_line.citations:
                counts["abstained"] += 1
                continue
            reference = answer.references[answer.bottom_line.citations[0] - 1]
            own = reference.passage_id.startswith(f"pmid:{pmid}#")
            kind = section_class(reference.section)
            if kind == "methods":
                counts["background or methods"] += 1
            elif own and kind == "results":
                counts["own results or conclusions"] += 1
            elif own:
                own_other += 1
                counts["other document"] += 1
            else:
                counts["other document"] += 1
    n = len(questions)
    result = {
        "questions": n,
        "composer": "extractive (today's, the baseline)",
        "shares": {name: round(value / n, 3) for name, value in counts.items()},
        "own_abstract_unlabelled": own_other,
        "seconds": round(time.perf_counter() - started),
        "embedder": args.embedder,
    }
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    print(f"PubMedQA, {n} questions, the bottom line's first citation (composer: {result['composer']})")
    for name, share in result["shares"].items():
        target = {"own results or conclusions": "  (target >= 0.90)", "background or methods": "  (target 0)"}
        print(f"  {name:<28} {share:.3f}{target.get(name, '')}")
    print(f"  (own abstract, unlabelled passage: {own_other}; {result['seconds']} s; embedder {args.embedder})")


if __name__ == "__main__":
    main()
