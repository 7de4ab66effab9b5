"""Ingest speed and memory on the real MEDLINE distribution file, with a whole-tree baseline.

Usage:
    python benchmarks/ingest.py [--data ../shared/data] [--format table|json] [--repeat 3]

Each measurement runs in a fresh subprocess (one core; peak resident memory is
VmHWM from /proc; seconds exclude interpreter start-up and imports, shown
apart) over ``medline16n0902.xml.gz`` (604 citations) and a
4x copy of it (2,416 citations; the same records with PMIDs offset so every
record is new). Rows, all in the same run:

- baseline: ``lxml.etree.parse`` of the whole file, the non-streaming way (memory grows with the file);
- medcite parse: ``read_pubmed_xml`` (lxml iterparse, elements cleared) yielding Documents;
- medcite ingest: parse + passages + SQLite/FTS5 writes in per-batch transactions, into a new library.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from pathlib import Path

def peak_mib():
    # VmHWM: this process's peak resident memory (reset by exec, unlike ru_maxrss).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

mode, path, library = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
started = time.perf_counter()
if mode == "baseline":
    import gzip
    from lxml import etree
    ready = time.perf_counter()
    with gzip.open(path) as stream:
        tree = etree.parse(stream)
    n = len(tree.getroot().findall("MedlineCitation"))
elif mode == "parse":
    from medcite.corpus.pubmed_xml import read_pubmed_xml
    from medcite.models import Document
    ready = time.perf_counter()
    n = sum(1 for record in read_pubmed_xml(path) if isinstance(record, Document))
else:
    from medcite.index import ingest
    from medcite.settings import Settings
    from medcite.store import Store
    store = Store.open(library)
    ready = time.perf_counter()
    report = ingest(store, "pubmed-xml", [path], settings=Settings(library=library))
    n = report.added + report.updated + report.unchanged
    store.close()
done = time.perf_counter()
print(json.dumps({"n": n, "seconds": done - ready, "startup_s": ready - started, "peak_mib": peak_mib()}))
"""


def make_copies(source: Path, times: int, target: Path) -> None:
    """Write ``times`` copies of the file's citations into one file, offsetting PMIDs so each is new."""
    text = gzip.open(source, "rt", encoding="utf-8").read()
    head, rest = text.split("<MedlineCitation ", 1)
    body, tail = ("<MedlineCitation " + rest).rsplit("</MedlineCitationSet>", 1)
    copies = []
    for copy in range(times):
        copies.append(re.sub(r"<PMID( [^>]*)?>(\d+)</PMID>", rf"<PMID\g<1>>{copy}\g<2></PMID>", body))
    with gzip.open(target, "wt", encoding="utf-8") as out:
        out.write(head + "".join(copies) + "</MedlineCitationSet>" + tail)


def measure(mode: str, path: Path, repeat: int) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            library = str(Path(folder) / "library.db")
            output = subprocess.run(
                [sys.executable, "-c", CHILD, mode, str(path), library],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            ).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
    seconds = statistics.median(run["seconds"] for run in runs)
    return {
        "citations": runs[0]["n"],
        "seconds": round(seconds, 3),
        "citations_per_s": round(runs[0]["n"] / seconds, 1),
        "startup_s": round(statistics.median(run["startup_s"] for run in runs), 3),
        "peak_mib": round(max(run["peak_mib"] for run in runs), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("MEDCITE_TEST_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = args.data / "pubmed" / "medline16n0902.xml.gz"
    if not source.exists():
        sys.exit(f"{source} is missing; pass --data pointing at the shared data folder.")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        four = Path(folder) / "medline16n0902x4.xml.gz"
        make_copies(source, 4, four)
        for label, mode in (
            ("baseline: lxml whole-tree parse", "baseline"),
            ("medcite parse", "parse"),
            ("medcite ingest", "ingest"),
        ):
            for size, path in (("1x", source), ("4x", four)):
                rows.append({"row": label, "input": size, **measure(mode, path, args.repeat)})
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'row':34} {'input':>5} {'citations':>9} {'seconds':>8} {'citations/s':>12} {'startup s':>9} {'peak MiB':>9}"
    )
    for row in rows:
        print(
            f"{row['row']:34} {row['input']:>5} {row['citations']:>9} {row['seconds']:>8.3f} "
            f"{row['citations_per_s']:>12.1f} {row['startup_s']:>9.3f} {row['peak_mib']:>9.1f}"
        )


if __name__ == "__main__":
    main()
