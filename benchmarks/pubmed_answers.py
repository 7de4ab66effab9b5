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
another document, or abstains. Rows, in one run:

- baseline: the guideline composer (no lead study: ``compose.extractive.lead_study`` patched to None, which also
  keeps the guideline-fitted abstention model), on the library with every question's own abstract;
- issue 14's composer on that library: the bottom line from the lead study's results and conclusions, abstention
  by the research model (``learn_weights.py --models abstain_research``, fitted on these same questions; its
  5-fold held-out figures are in ``weights.json``'s provenance);
- issue 14's composer on a copy without PubMedQA's abstracts, where every question is uncovered: the share
  abstained is what should be high.
"""

from __future__ import annotations

import argparse
import contextlib
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


def measure(questions: list[tuple[str, str]], retriever) -> tuple[dict[str, int], int]:
    """Counts of the bottom lines' first citations by class, and of own-abstract unlabelled ones."""
    from medcite.answer import ask

    counts = {"own results or conclusions": 0, "background or methods": 0, "other document": 0, "abstained": 0}
    own_other = 0
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
        else:
            own_other += own
            counts["other document"] += 1
    return counts, own_other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--questions", type=int, default=1000, help="The first N PubMedQA questions.")
    parser.add_argument("--embedder", default="wordllama-l2-256")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()
    from unittest import mock

    from medcite.embed import load_embedder
    from medcite.retrieve import Retriever
    from medcite.retrieve.dense import embed_passages
    from medcite.settings import Settings
    from medcite.store import Store

    library = ds.build_library("pubmed", args.data, args.cache, log=lambda line: print(line, file=sys.stderr))
    every = ds.pubmedqa_questions(args.data)
    questions = every[: args.questions]
    without = ds.library_without(
        library, [f"pmid:{pmid}" for pmid, _ in every], args.cache / "pubmed-without-pubmedqa.db"
    )
    embedder = load_embedder(args.embedder) if args.embedder != "none" else None
    rows: dict[str, dict[str, float]] = {}
    own_other: dict[str, int] = {}
    started = time.perf_counter()
    for path, label in ((library, "own abstract in the library"), (without, "no PubMedQA abstract in the library")):
        with Store.open(path) as store:
            if embedder is not None:
                embed_passages(store, embedder)
            retriever = Retriever(store, Settings(library=path, embedder=args.embedder), embedder=embedder)
            names = ["baseline: guideline composer", "issue 14 composer"] if path == library else ["issue 14 composer"]
            for name in names:
                with contextlib.ExitStack() as stack:
                    if name.startswith("baseline"):  # no lead study: the composer and abstention of before
                        stack.enter_context(mock.patch("medcite.compose.extractive.lead_study", return_value=None))
                    counts, unlabelled = measure(questions, retriever)
                key = f"{name}, {label}"
                rows[key] = {k: round(v / len(questions), 3) for k, v in counts.items()}
                own_other[key] = unlabelled
    result = {
        "questions": len(questions),
        "rows": rows,
        "own_abstract_unlabelled": own_other,
        "seconds": round(time.perf_counter() - started),
        "embedder": args.embedder,
    }
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    columns = ["own results or conclusions", "background or methods", "other document", "abstained"]
    print(f"PubMedQA, {len(questions)} questions, the bottom line's first citation (embedder {args.embedder})")
    print(f"| composer, library | {' | '.join(columns)} |")
    print(f"|---|{'---|' * len(columns)}")
    print("| target, own abstract in the library | >= 0.90 | 0 | | |")
    for key, shares in rows.items():
        print(f"| {key} | {' | '.join(f'{shares[c]:.3f}' for c in columns)} |")
    print(f"({result['seconds']} s; own abstract cited from an unlabelled passage: {own_other})")


if __name__ == "__main__":
    main()
