"""Definition questions: does 'What is <term>?' get the library's defining statement as its bottom line?

    python benchmarks/definitions.py [--baseline-ref REF] [--no-baseline]

The terms are those the default guideline pack defines under a heading that says so ('Definition of Asthma',
'AKI Definition', 'Cardiogenic Shock > Definition'), each with words of its defining statement, quoted from the
pack. A question counts when its bottom line (with its context) holds those words. The baseline is another commit's
``src``, run in its own process on the same library (``answers.py``'s cache). A small set chosen from the pack
itself: it shows whether the mechanism works, not how often clinicians' definition questions are answered.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

TERMS: dict[str, str] = {
    "septic shock": "subset of sepsis",
    "sepsis": "life-threatening organ dysfunction",
    "a TIA": "transient episode of neurological dysfunction",
    "acute kidney injury": "AKI is defined as",
    "CKD": "abnormalities of kidney structure",
    "asthma": "heterogeneous disease",
    "severe asthma": "uncontrolled despite optimized",
    "cardiogenic shock": "sustained hypotension",
    "resistant hypertension": "remains above goal",
    "delayed cerebral ischemia": "focal neurological impairment",
    "heart failure": "clinical syndrome with symptoms",
    "perinatal depression": "major and minor depressive episodes",
    "NAFLD": "5% hepat",
    "clinical ASCVD": "atherosclerotic origin",
    "treat-to-target": "systematic approach",
    "an asthma exacerbation": "acute or subacute worsening",
    "contrast-induced AKI": "intravascular administration",
}
"""Term -> words of the pack's defining statement (verbatim, markup removed)."""


def worker(library: str) -> None:
    from medcite.answer import ask
    from medcite.retrieve import Retriever
    from medcite.settings import Settings
    from medcite.store import Store

    settings = Settings(library=Path(library), embedder="none")
    retriever = Retriever(Store.open(settings.library), settings)
    for term, words in TERMS.items():
        answer = ask(f"What is {term}?", retriever=retriever)
        text = " ".join([answer.bottom_line.text, *getattr(answer.bottom_line, "context", [])]).replace("**", "")
        print(json.dumps({"term": term, "ok": words.lower() in text.lower(), "bottom_line": text[:100]}), flush=True)


def run(src: Path, library: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(src), "MEDCITE_EMBEDDER": "none"}
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(library)], env=env, capture_output=True, text=True, check=True
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main() -> None:
    from answers import DEFAULT_BASELINE_REF, _baseline_src, _library_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE_REF)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    library = _library_for("current", "default", args.cache, args.data)
    if not library.exists():  # the default guideline pack, as answers.py fills it
        from medcite.index import default_guideline_pack, ingest
        from medcite.settings import Settings
        from medcite.store import Store

        with Store.open(library) as store:
            ingest(store, "guidelines", [default_guideline_pack()], settings=Settings(library=library))
    rows = {"current": run(REPO / "src", library)}
    if not args.no_baseline:
        rows["baseline"] = run(_baseline_src(args.baseline_ref, args.cache), library)
    for name, results in rows.items():
        ok = sum(r["ok"] for r in results)
        print(f"{name:10s} defining statement in the bottom line: {ok} of {len(results)}")
    for result in rows["current"]:
        print(f"  {'ok ' if result['ok'] else 'MISS'} What is {result['term']}? -> {result['bottom_line']}")


if __name__ == "__main__":
    main()
