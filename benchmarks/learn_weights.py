"""Learn the weights of medcite's linear ranking models with cross-validation, and ship them.

Usage:
    python benchmarks/learn_weights.py [--models passage,unit,abstain] [--folds 5] [--write]
                                       [--questions ../shared/data/answers/clinical_questions_dev.jsonl]

Training data: the development questions of ``answers/`` (clinicians' and patients' questions with a gold
quote from the default guideline pack) on the default library. For each model:

- ``passage`` (``retrieve/rerank.py``): candidates are ``Retriever.candidates`` (first stage, 100 passages);
  a passage is relevant when it holds the question's gold quote; one model per install (``passage``:
  lexical only; ``passage_dense``: hybrid with the embedder ``medcite`` loads when the ``dense`` extra is
  installed).
- ``unit`` (``compose/``): candidate statements of the evidence ``ask`` reads; a statement is a correct bottom
  line when it holds the gold quote (or, quoted with its context, every bottom-line term group).
- ``abstain_research`` (``--models abstain_research``): the abstention model ``compose`` uses when a research
  abstract leads the evidence (``compose.extractive.lead_study``). Questions: PubMedQA's expert-labelled ones on
  the PubMed library of ``retrieval.py``; each is asked of that library (covered: its own abstract is there) and
  of a copy without PubMedQA's abstracts (uncovered: the closest other abstracts answer something nearby).
  Cross-validated by question: both rows of a question are in the same fold.
- ``abstain``: one row per question, the features of its best answer; label: the question is not covered. With
  ``--withheld`` (the default), each covered question is also asked of a copy of the library without its gold
  guideline and, unless that copy still answers it correctly, counts as one more uncovered example for training;
  held-out figures and the threshold are read on the real questions only.

The ranking models are listwise (softmax over a question's candidates, the log-probability of its relevant
ones maximised; Cao et al., "Learning to rank: from pairwise approach to listwise approach", ICML 2007) with an
L2 penalty; ``abstain`` is logistic regression. Each is cross-validated over questions (``--folds``, questions
shuffled with a fixed seed): the table shows, per fold, the held-out figure of weights fitted on the other
folds, beside the first-stage (or hand-set) baseline on the same questions. ``--write`` fits on all questions
and writes ``src/medcite/retrieve/weights.json`` with the provenance (date, data, CV figures).
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _datasets as ds  # noqa: E402
from answers import normalise  # noqa: E402

WEIGHTS = REPO / "src" / "medcite" / "retrieve" / "weights.json"
MAX_COVERED_ABSTAINED = 0.05
"""The abstention threshold is the one that abstains on the most held-out uncovered questions while abstaining on
at most this share (0-1) of covered ones (issue 10's target)."""
LABELS = "any"
"""Statement labels: 'any' (every unit holding the gold quote, or every term group from the gold guideline) or
'smallest' (the smallest such unit: a list only when none of its items holds them)."""


@dataclass
class Group:
    """One question's candidates: feature rows, which are relevant, and its id."""

    qid: str
    features: np.ndarray
    labels: np.ndarray
    extra: dict


def fit_listwise(groups: list[Group], *, l2: float = 0.01, steps: int = 3000, lr: float = 0.05) -> np.ndarray:
    """Listwise softmax weights (Adam on the mean negative log-likelihood of the relevant candidates)."""
    dim = groups[0].features.shape[1]
    w = np.zeros(dim)
    m, v = np.zeros(dim), np.zeros(dim)
    usable = [g for g in groups if g.labels.any()]
    for step in range(1, steps + 1):
        grad = 2 * l2 * w
        for g in usable:
            s = g.features @ w
            s -= s.max()
            p = np.exp(s)
            p /= p.sum()
            q = p * g.labels
            q /= q.sum()
            grad += (g.features.T @ (p - q)) / len(usable)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return w


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 0.01, steps: int = 3000, lr: float = 0.05):
    """Logistic regression with an intercept (Adam, L2 on the weights); returns (weights, intercept).

    Fitted on standardized columns (zero mean, unit variance over ``x``) so that the L2 penalty treats features of
    any scale alike; the returned weights and intercept apply to the raw features.
    """
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    xb = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    m, v = np.zeros_like(w), np.zeros_like(w)
    for step in range(1, steps + 1):
        p = 1 / (1 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) / len(y)
        grad[:-1] += 2 * l2 * w[:-1]
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    weights = w[:-1] / scale
    return weights, float(w[-1] - weights @ mean)


def folds_of(ids: list[str], n_folds: int, seed: int = 13) -> dict[str, int]:
    """Assign each question id to a fold (fixed-seed shuffle)."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    return {qid: i % n_folds for i, qid in enumerate(order)}


def cross_validate(
    groups: list[Group], n_folds: int, evaluate: Callable[[Group, np.ndarray], dict], **fit_args
) -> tuple[list[dict], np.ndarray]:
    """Held-out figures per question (weights fitted without its fold) and the weights fitted on all."""
    fold = folds_of([g.qid for g in groups], n_folds)
    held_out: list[dict] = []
    for k in range(n_folds):
        train = [g for g in groups if fold[g.qid] != k]
        w = fit_listwise(train, **fit_args)
        held_out += [{"fold": k, **evaluate(g, w)} for g in groups if fold[g.qid] == k]
    return held_out, fit_listwise(groups, **fit_args)


# --- passage model ---------------------------------------------------------------------------------------------


def passage_groups(rows: list[dict], retriever) -> list[Group]:
    """Candidates and features of every covered question (questions whose gold passage was not found included)."""
    from medcite.retrieve.rerank import passage_features

    groups = []
    for row in rows:
        if not row["covered"] or not row.get("gold_quote"):
            continue
        candidates = retriever.candidates(row["question"], depth=100)
        features = passage_features(
            candidates.frame, candidates.matcher, candidates.hits, candidates.stage_ranks, candidates.fused
        )
        gold = normalise(row["gold_quote"])
        labels = np.array([gold in normalise(h.text) for h in candidates.hits], dtype=float)
        groups.append(Group(row["id"], features, labels, {"hits": candidates.hits}))
    return groups


def capped_rank(group: Group, scores: np.ndarray, per_document: int) -> int | None:
    """1-based rank of the first relevant passage after ordering by score and capping passages per document.

    ``per_document``: as ``medcite search`` caps them (``Settings.max_passages_per_document``; 0: no cap).
    """
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], group.extra["hits"][i].passage_id))
    seen: dict[str, int] = {}
    rank = 0
    for i in order:
        doc = group.extra["hits"][i].doc_id
        if per_document and seen.get(doc, 0) >= per_document:
            continue
        seen[doc] = seen.get(doc, 0) + 1
        rank += 1
        if group.labels[i]:
            return rank
    return None


def passage_report(groups: list[Group], n_folds: int, names: tuple[str, ...]) -> tuple[dict, np.ndarray]:
    from medcite.settings import Settings

    cap = Settings().max_passages_per_document  # read once, not per question and fold

    def evaluate(group: Group, w: np.ndarray) -> dict:
        return {
            "rank": capped_rank(group, group.features @ w, cap),
            "base": capped_rank(group, group.features[:, 0], cap),
        }

    held, w = cross_validate(groups, n_folds, evaluate)
    n = len(held)

    def at(key: str, k: int) -> float:
        return round(sum(1 for h in held if h[key] is not None and h[key] <= k) / n, 3)

    report = {
        "questions": n,
        "with_gold_candidate": sum(1 for g in groups if g.labels.any()),
        "heldout_recall_at_1": at("rank", 1),
        "heldout_recall_at_10": at("rank", 10),
        "first_stage_recall_at_1": at("base", 1),
        "first_stage_recall_at_10": at("base", 10),
        "per_fold_recall_at_1": [
            round(
                sum(1 for h in held if h["fold"] == k and h["rank"] == 1) / max(1, sum(h["fold"] == k for h in held)), 3
            )
            for k in range(n_folds)
        ],
    }
    print(f"passage model ({n} questions, {n_folds}-fold CV):")
    base1, base10 = report["first_stage_recall_at_1"], report["first_stage_recall_at_10"]
    print(f"  first stage (RRF)      recall@1 {base1:.3f}  @10 {base10:.3f}")
    held1, held10 = report["heldout_recall_at_1"], report["heldout_recall_at_10"]
    print(f"  learned, held-out      recall@1 {held1:.3f}  @10 {held10:.3f}")
    print(f"  per fold recall@1      {report['per_fold_recall_at_1']}")
    for name, weight in sorted(zip(names, w, strict=True), key=lambda item: -abs(item[1])):
        print(f"    {name:<22}{weight:+.3f}")
    return report, w


# --- unit (statement) model --------------------------------------------------------------------------------------


def evidence_for(retriever, question: str, passage_model=None):
    """The evidence ``ask`` reads (``compose.evidence``) and the candidate statements of it with their features."""
    from medcite.compose.evidence import gather_evidence

    return gather_evidence(question, retriever=retriever, passage_model=passage_model)


def unit_groups(rows: list[dict], retriever, passage_model) -> list[Group]:
    """Candidate statements and features of every covered question, with labels from its gold quote and terms."""
    from answers import group_present, has_term

    groups = []
    for row in rows:
        if not row["covered"]:
            continue
        evidence = evidence_for(retriever, row["question"], passage_model)
        gold = normalise(row["gold_quote"]) if row.get("gold_quote") else None
        terms = row.get("bottom_line_terms") or []
        wrong = row.get("wrong_terms") or []
        correct = []
        holds_gold = []
        for unit in evidence.units:
            text = normalise(unit.piece.text)
            whole = normalise(" ".join((*unit.piece.context, unit.piece.text)))
            complete = all(group_present(g, whole) for g in terms) and not any(has_term(t, whole) for t in wrong)
            correct.append(complete)
            holds_gold.append(gold is not None and gold in text)
        # The smallest statement that answers is the label: a sentence, item, row or step holding the gold quote
        # (or, from the gold guideline, every bottom-line term group); a list only when none of its items does.
        small = ("sentence", "item", "row", "step")
        gold_doc = f"guideline:{row['guideline']}"
        labels = []
        small_complete = any(
            c and u.piece.kind in small and u.hit.doc_id == gold_doc
            for u, c in zip(evidence.units, correct, strict=True)
        )
        small_gold_complete = any(
            g and c and u.piece.kind in small for u, g, c in zip(evidence.units, holds_gold, correct, strict=True)
        )
        for unit, gold_in, complete in zip(evidence.units, holds_gold, correct, strict=True):
            kind = unit.piece.kind
            needed = 2 if gold is not None else 1  # questions without a gold quote are labelled by their terms
            if LABELS == "any":
                positive = (gold_in and kind not in ("table", "algorithm")) or (
                    complete and len(terms) >= needed and unit.hit.doc_id == gold_doc and kind != "algorithm"
                )
            elif kind in small:
                positive = gold_in or (complete and len(terms) >= 2 and unit.hit.doc_id == gold_doc)
            elif kind == "list":
                positive = gold_in and complete and not small_gold_complete and not small_complete
            else:
                positive = False
            labels.append(positive)
        groups.append(
            Group(
                row["id"],
                evidence.features,
                np.array(labels, dtype=float),
                {"correct": np.array(correct), "units": evidence.units, "evidence": evidence, "row": row},
            )
        )
    return groups


def bottom_line_correct(evidence, row: dict, unit_model) -> bool:
    """Whether the composed bottom line (up to three statements with context) holds every term group, no wrong term."""
    from medcite.compose.extractive import compose_statements

    composition = compose_statements(
        evidence, evidence.frame.intent, row.get("audience", "clinician"), model=unit_model
    )
    return bottom_line_holds(composition, row)


def bottom_line_holds(composition, row: dict) -> bool:
    """Whether a composition's bottom line holds every bottom-line term group of ``row`` and none of its wrong terms."""
    from answers import group_present, has_term

    from medcite.compose.extractive import statement_of

    text = normalise(" ".join(statement_of(unit, [1]).plain() for unit in composition.bottom))
    terms = row.get("bottom_line_terms") or []
    wrong = row.get("wrong_terms") or []
    return (
        bool(composition.bottom)
        and all(group_present(g, text) for g in terms)
        and not any(has_term(t, text) for t in wrong)
    )


def unit_report(rows, retriever, n_folds: int, names: tuple[str, ...]) -> tuple[dict, np.ndarray, np.ndarray]:
    """Nested CV: per outer fold, the passage model and the unit model are fitted on the other folds."""
    from medcite.compose.features import UNIT_FEATURES
    from medcite.retrieve.rerank import PASSAGE_FEATURES, Model

    covered = [r for r in rows if r["covered"]]
    fold = folds_of([r["id"] for r in covered], n_folds)
    passage = passage_groups([r for r in rows if r.get("gold_quote")], retriever)
    held: list[dict] = []
    for k in range(n_folds):
        wp = fit_listwise([g for g in passage if fold[g.qid] != k])
        model = Model(names=PASSAGE_FEATURES, weights=wp)
        groups = unit_groups(rows, retriever, model)
        wu = fit_listwise([g for g in groups if fold[g.qid] != k])
        umodel = Model(names=UNIT_FEATURES, weights=wu)
        for g in groups:
            if fold[g.qid] != k:
                continue
            scores = g.features @ wu
            top = int(np.argmax(scores)) if len(scores) else None
            held.append({
                "fold": k,
                "set": g.qid.split("-")[0],
                "gold_at_1": bool(top is not None and g.labels[top]),
                "correct_at_1": bool(top is not None and g.extra["correct"][top]),
                "any_correct": bool(g.extra["correct"].any()),
                "bottom_line_correct": bottom_line_correct(g.extra["evidence"], g.extra["row"], umodel),
            })  # fmt: skip
    wp_all = fit_listwise(passage)
    groups = unit_groups(rows, retriever, Model(names=PASSAGE_FEATURES, weights=wp_all))
    wu_all = fit_listwise(groups)
    n = len(held)
    report = {
        "questions": n,
        "heldout_gold_statement_at_1": round(sum(h["gold_at_1"] for h in held) / n, 3),
        "heldout_bottom_line_terms_at_1": round(sum(h["correct_at_1"] for h in held) / n, 3),
        "evidence_holds_a_correct_statement": round(sum(h["any_correct"] for h in held) / n, 3),
        "heldout_bottom_line_correct_if_answered": round(sum(h["bottom_line_correct"] for h in held) / n, 3),
    }
    for name in sorted({h["set"] for h in held}):
        part = [h for h in held if h["set"] == name]
        report[f"heldout_bottom_line_correct_if_answered_{name}"] = round(
            sum(h["bottom_line_correct"] for h in part) / len(part), 3
        )
    print(f"unit model ({n} questions, {n_folds}-fold nested CV):")
    for key, value in report.items():
        print(f"  {key:<40}{value}")
    for name, weight in sorted(zip(names, wu_all, strict=True), key=lambda item: -abs(item[1])):
        print(f"    {name:<22}{weight:+.3f}")
    return report, wp_all, wu_all


# --- abstention model -------------------------------------------------------------------------------------------


def abstain_rows(
    items: list[tuple[dict, object, float]], passage_model, unit_model
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Abstention features of each (question, retriever, label) item's composed answer under the given models.

    Returns the feature rows, their labels (1 = not covered) and the indices of the items kept: a withheld-guideline
    item (label 1 on a library without its gold guideline) is dropped when that library still answers it correctly.
    """
    from medcite.compose.abstain import abstention_features
    from medcite.compose.extractive import compose_statements

    features, labels, kept = [], [], []
    for index, (row, retriever, label) in enumerate(items):
        evidence = evidence_for(retriever, row["question"], passage_model)
        composition = compose_statements(evidence, evidence.frame.intent, row.get("audience", "clinician"),
                                         model=unit_model)  # fmt: skip
        if label and row["covered"] and bottom_line_holds(composition, row):
            continue  # another guideline answers it: not an uncovered question after all
        features.append(abstention_features(evidence, composition))
        labels.append(label)
        kept.append(index)
    return np.array(features), np.array(labels), kept


def withheld_retrievers(rows: list[dict], library: Path, cache: Path, settings) -> dict[str, object]:
    """Per gold guideline of the covered questions, a lexical retriever on a copy of the library without it.

    Each covered question asked of a library that lacks its guideline is an uncovered question of the same form
    (a near miss: the closest other guidelines answer something nearby), which gives the abstention model
    uncovered examples beyond the few the development set holds. Copies are cached in ``cache``.
    """
    from medcite.retrieve import Retriever
    from medcite.store import Store

    retrievers = {}
    for guideline in sorted({r["guideline"] for r in rows if r["covered"] and r.get("guideline")}):
        path = ds.library_without(library, [f"guideline:{guideline}"], cache / f"learn-without-{guideline}.db")
        retrievers[guideline] = Retriever(Store.open(path), settings)
    return retrievers


def abstain_report(rows, retriever, n_folds: int, names: tuple[str, ...], threshold: float, withheld=None):
    """Nested CV of the abstention model: passage, unit and abstention weights fitted on the other folds.

    ``withheld`` (guideline -> retriever without it, ``withheld_retrievers``) adds, for training only, each covered
    question asked of the library without its gold guideline as an uncovered example; held-out figures and the
    threshold are read on the real questions alone.
    """
    from medcite.compose.features import UNIT_FEATURES
    from medcite.retrieve.rerank import PASSAGE_FEATURES, Model

    withheld = withheld or {}
    fold = folds_of([r["id"] for r in rows], n_folds)
    items = [(r, retriever, 0.0 if r["covered"] else 1.0) for r in rows]
    items += [(r, withheld[r["guideline"]], 1.0) for r in rows if r["covered"] and r.get("guideline") in withheld]
    real = np.array([i < len(rows) for i in range(len(items))])
    passage = passage_groups([r for r in rows if r.get("gold_quote")], retriever)
    predictions = np.zeros(len(rows))
    labels = np.array([0.0 if r["covered"] else 1.0 for r in rows])
    synthetic_predictions: list[float] = []
    for k in range(n_folds):
        train_ids = {r["id"] for r in rows if fold[r["id"]] != k}
        wp = fit_listwise([g for g in passage if g.qid in train_ids])
        pmodel = Model(names=PASSAGE_FEATURES, weights=wp)
        units = unit_groups([r for r in rows if r["id"] in train_ids], retriever, pmodel)
        umodel = Model(names=UNIT_FEATURES, weights=fit_listwise(units))
        x, y, kept = abstain_rows(items, pmodel, umodel)
        train = np.array([fold[items[i][0]["id"]] != k for i in kept])
        w, b = fit_logistic(x[train], y[train])
        p = 1 / (1 + np.exp(-(x @ w + b)))
        for j, i in enumerate(kept):
            if train[j]:
                continue
            if real[i]:
                predictions[i] = p[j]
            else:
                synthetic_predictions.append(float(p[j]))
    wp = fit_listwise(passage)
    pmodel = Model(names=PASSAGE_FEATURES, weights=wp)
    umodel = Model(names=UNIT_FEATURES, weights=fit_listwise(unit_groups(rows, retriever, pmodel)))
    x, y, _kept = abstain_rows(items, pmodel, umodel)
    w, b = fit_logistic(x, y)
    grid = [round(0.2 + 0.025 * i, 3) for i in range(32)]
    allowed = [t for t in grid if (predictions >= t)[labels == 0].mean() <= MAX_COVERED_ABSTAINED]
    threshold = max(allowed, key=lambda t: ((predictions >= t)[labels == 1].mean(), -t)) if allowed else threshold
    abstained = predictions >= threshold
    synthetic = np.array(synthetic_predictions)
    report = {
        "questions": len(rows),
        "withheld_guideline_examples": int(len(y) - len(rows)),
        "heldout_covered_abstained": round(float(abstained[labels == 0].mean()), 3),
        "heldout_uncovered_abstained": round(float(abstained[labels == 1].mean()), 3),
        "heldout_withheld_abstained": round(float((synthetic >= threshold).mean()), 3) if len(synthetic) else None,
        "threshold": threshold,
    }
    print(f"abstention model ({len(rows)} questions, {n_folds}-fold nested CV, threshold {threshold}):")
    for key, value in report.items():
        print(f"  {key:<36}{value}")
    for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        a = predictions >= t
        print(
            f"  at {t}: covered abstained {a[labels == 0].mean():.3f}, uncovered abstained {a[labels == 1].mean():.3f}"
        )
    for name, weight in sorted(zip(names, w, strict=True), key=lambda item: -abs(item[1])):
        print(f"    {name:<22}{weight:+.3f}")
    print(f"    {'bias':<22}{b:+.3f}")
    return report, w, b


RESEARCH_UNTITLED = ("doc_title_cover", "title_gap")
"""Abstention features the research model leaves out (weight 0): PubMedQA's abstracts come without titles ('PubMed
N') while the library's other abstracts have theirs, so title features would tell the two apart, not covered
questions from uncovered ones; abstracts fetched from PubMed all have titles."""


def research_abstain_report(questions: list[tuple[str, str]], covered, uncovered, n_folds: int, names, threshold):
    """Cross-validated research abstention model: (report, weights, bias), chosen threshold in the report.

    Every question gives two rows, asked of ``covered`` (a retriever on the library with its abstract) and of
    ``uncovered`` (one without any PubMedQA abstract); the shipped statement models compose both. The threshold
    is the one abstaining on the most held-out uncovered rows with at most ``MAX_COVERED_ABSTAINED`` of covered ones.
    The ``RESEARCH_UNTITLED`` features are left out.
    """
    from medcite.compose.abstain import abstention_features
    from medcite.compose.extractive import compose_statements

    rows, labels, qids, own = [], [], [], []
    for pmid, question in questions:
        for retriever, label in ((covered, 0.0), (uncovered, 1.0)):
            evidence = evidence_for(retriever, question)
            composition = compose_statements(evidence, evidence.frame.intent, "clinician")
            rows.append(abstention_features(evidence, composition))
            labels.append(label)
            qids.append(pmid)
            best = composition.best
            own.append(best is not None and best.hit.doc_id == f"pmid:{pmid}")
    x, y = np.array(rows), np.array(labels)
    x[:, [list(names).index(name) for name in RESEARCH_UNTITLED]] = 0.0
    fold = folds_of(qids, n_folds)
    predictions = np.zeros(len(y))
    for k in range(n_folds):
        train = np.array([fold[q] != k for q in qids])
        w, b = fit_logistic(x[train], y[train])
        predictions[~train] = 1 / (1 + np.exp(-(x[~train] @ w + b)))
    grid = [round(0.2 + 0.025 * i, 3) for i in range(32)]
    allowed = [t for t in grid if (predictions >= t)[y == 0].mean() <= MAX_COVERED_ABSTAINED]
    threshold = max(allowed, key=lambda t: ((predictions >= t)[y == 1].mean(), -t)) if allowed else threshold
    abstained = predictions >= threshold
    w, b = fit_logistic(x, y)
    report = {
        "questions": len(questions),
        "heldout_covered_abstained": round(float(abstained[y == 0].mean()), 3),
        "heldout_uncovered_abstained": round(float(abstained[y == 1].mean()), 3),
        "covered_best_statement_own_abstract": round(float(np.mean(np.array(own)[y == 0])), 3),
        "threshold": threshold,
    }
    print(f"research abstention model ({len(questions)} PubMedQA questions x 2, {n_folds}-fold CV):")
    for key, value in report.items():
        print(f"  {key:<36}{value}")
    for name, weight in sorted(zip(names, w, strict=True), key=lambda item: -abs(item[1])):
        print(f"    {name:<22}{weight:+.3f}")
    print(f"    {'bias':<22}{b:+.3f}")
    return report, w, b


def research_retrievers(data: Path, cache: Path, settings_for):
    """Lexical retrievers on the PubMed library of ``retrieval.py`` and on a cached copy without PubMedQA abstracts."""
    from medcite.retrieve import Retriever
    from medcite.store import Store

    library = ds.build_library("pubmed", data, cache, log=lambda line: print(line, file=sys.stderr))
    questions = ds.pubmedqa_questions(data)
    own = [f"pmid:{pmid}" for pmid, _ in questions]
    without = ds.library_without(library, own, cache / "pubmed-without-pubmedqa.db")
    covered = Retriever(Store.open(library), settings_for(library))
    uncovered = Retriever(Store.open(without), settings_for(without))
    return questions, covered, uncovered


def main() -> None:
    """Cross-validate the chosen models, print the figures, and with --write ship the weights fitted on all."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--questions", type=Path, default=REPO.parent / "shared" / "data" / "answers" / "clinical_questions_dev.jsonl"
    )
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="for abstain_research")
    parser.add_argument("--models", default="passage,unit,abstain")
    parser.add_argument(
        "--extra-questions",
        type=Path,
        default=REPO / "benchmarks" / "data" / "first_line_questions.jsonl",
        help="more development questions for the statement and abstention models ('' for none)",
    )
    parser.add_argument("--embedder", default="none", help="'none' (the passage model) or 'auto' (passage_dense)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--withheld",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the abstention model also on covered questions asked of the library without their guideline",
    )
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()  # fmt: skip

    from medcite.index import default_guideline_pack, ingest
    from medcite.retrieve import Retriever
    from medcite.retrieve.rerank import PASSAGE_FEATURES
    from medcite.settings import Settings
    from medcite.store import Store

    rows = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    extra = []
    if args.extra_questions and str(args.extra_questions) and args.extra_questions.is_file():
        extra = [json.loads(line) for line in args.extra_questions.read_text().splitlines() if line.strip()]
    library = args.cache / "learn-default.db"
    args.cache.mkdir(parents=True, exist_ok=True)
    settings = Settings(library=library, embedder=args.embedder)
    shipped = json.loads(WEIGHTS.read_text()) if WEIGHTS.exists() else {}
    with Store.open(library) as store:
        if store.count_documents() == 0:
            ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
        embedder = None
        if args.embedder != "none":
            from medcite.embed import load_embedder
            from medcite.retrieve.dense import embed_passages

            embedder = load_embedder(args.embedder)
            embed_passages(store, embedder)
        retriever = Retriever(store, settings, embedder=embedder)
        if "passage" in args.models.split(","):
            groups = passage_groups(rows, retriever)
            report, w = passage_report(groups, args.folds, PASSAGE_FEATURES)
            key = "passage" if embedder is None else "passage_dense"
            shipped[key] = {
                "names": list(PASSAGE_FEATURES),
                "weights": [round(float(x), 5) for x in w],
                "provenance": (
                    f"benchmarks/learn_weights.py on {datetime.date.today().isoformat()}: listwise softmax, "
                    f"L2 0.01, fitted on {args.questions.name} ({report['questions']} covered questions, default "
                    f"library, embedder {embedder.name if embedder else 'none'}); {args.folds}-fold held-out "
                    f"recall@1 {report['heldout_recall_at_1']}, @10 {report['heldout_recall_at_10']} "
                    f"(first stage {report['first_stage_recall_at_1']}, {report['first_stage_recall_at_10']})"
                ),
                "cross_validation": report,
            }
        if "unit" in args.models.split(","):
            from medcite.compose.features import UNIT_FEATURES

            report, _wp, wu = unit_report(rows + extra, retriever, args.folds, UNIT_FEATURES)
            shipped["unit"] = {
                "names": list(UNIT_FEATURES),
                "weights": [round(float(x), 5) for x in wu],
                "provenance": (
                    f"benchmarks/learn_weights.py on {datetime.date.today().isoformat()}: listwise softmax, L2 0.01, "
                    f"fitted on {args.questions.name} ({report['questions']} covered questions, default library); "
                    f"{args.folds}-fold nested held-out: gold statement first {report['heldout_gold_statement_at_1']}, "
                    f"bottom-line terms in the first statement {report['heldout_bottom_line_terms_at_1']}"
                ),
                "cross_validation": report,
            }
        if "abstain" in args.models.split(","):
            from medcite.compose.abstain import ABSTAIN_FEATURES, ABSTAIN_THRESHOLD

            withheld = withheld_retrievers(rows + extra, library, args.cache, settings) if args.withheld else None
            report, w, b = abstain_report(
                rows + extra, retriever, args.folds, ABSTAIN_FEATURES, ABSTAIN_THRESHOLD, withheld=withheld
            )
            shipped["abstain"] = {
                "names": [*ABSTAIN_FEATURES, "bias"],
                "weights": [*(round(float(x), 5) for x in w), round(b, 5)],
                "threshold": report["threshold"],
                "provenance": (
                    f"benchmarks/learn_weights.py on {datetime.date.today().isoformat()}: logistic regression, "
                    f"L2 0.01, fitted on {args.questions.name} ({report['questions']} questions, default library, "
                    f"{report['withheld_guideline_examples']} withheld-guideline examples); "
                    f"{args.folds}-fold nested held-out at the chosen threshold {report['threshold']}: "
                    "covered abstained "
                    f"{report['heldout_covered_abstained']}, uncovered abstained "
                    f"{report['heldout_uncovered_abstained']}"
                ),
                "cross_validation": report,
            }
        if "abstain_research" in args.models.split(","):
            from medcite.compose.abstain import ABSTAIN_FEATURES, ABSTAIN_THRESHOLD

            questions, covered, uncovered = research_retrievers(
                args.data, args.cache, lambda path: Settings(library=path, embedder="none")
            )
            report, w, b = research_abstain_report(
                questions, covered, uncovered, args.folds, ABSTAIN_FEATURES, ABSTAIN_THRESHOLD
            )
            shipped["abstain_research"] = {
                "names": [*ABSTAIN_FEATURES, "bias"],
                "weights": [*(round(float(x), 5) for x in w), round(b, 5)],
                "threshold": report["threshold"],
                "provenance": (
                    f"benchmarks/learn_weights.py on {datetime.date.today().isoformat()}: logistic regression, "
                    f"L2 0.01, fitted on PubMedQA's {report['questions']} expert-labelled questions, each asked of "
                    "the PubMed library with and without its abstract (lexical); "
                    f"{args.folds}-fold held-out at the chosen threshold {report['threshold']}: covered abstained "
                    f"{report['heldout_covered_abstained']}, uncovered abstained "
                    f"{report['heldout_uncovered_abstained']}"
                ),
                "cross_validation": report,
            }
    if args.write:
        WEIGHTS.write_text(json.dumps(shipped, indent=1) + "\n")
        print(f"wrote {WEIGHTS}")


if __name__ == "__main__":
    main()
