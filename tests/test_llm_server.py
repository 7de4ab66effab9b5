"""The LLM composer against a real model server: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M.

The model is weak on purpose (fluent, often wrong), so these tests hold what must be true whatever it writes:
the client negotiates the server's dialect, every ask ends in an Answer (the model's, verified, or the extractive
one with a notice), and nothing the verifier's documented rules reject reaches the bottom line or the sections.
A small TCP proxy in front of the real server makes it slow, cut the stream, or corrupt the JSON.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from conftest import LLM_SERVER_MODEL, data_path
from medcite.answer import ask
from medcite.cli import run
from medcite.compose.llm import CUT_OFF_NOTICE, FALLBACK_NOTICE
from medcite.llm import LLMClient, remembered_dialect
from medcite.models import EMERGENCY_SECTION, Answer
from medcite.settings import Settings
from medcite.verify import LEXICAL_THRESHOLD, drug_names, lexical_support, number_mentions
from medcite.web.app import create_app
from test_llm import library, retriever  # noqa: F401  (the default guideline pack, lexical search)
from test_web_llm import _events

pytestmark = pytest.mark.llm_server

GOUT = "What is the first-line treatment for an acute gout flare?"
FALLBACK_START = FALLBACK_NOTICE.split("(")[0]
MAX_TOKENS = 512


def _client(base_url: str, **options) -> LLMClient:
    options = {"timeout_s": 120.0, "max_retries": 0, "max_tokens": MAX_TOKENS, **options}
    return LLMClient(base_url, LLM_SERVER_MODEL, **options)


def _llm_env(monkeypatch, base_url: str) -> None:
    monkeypatch.setenv("MEDCITE_LLM_BASE_URL", base_url)
    monkeypatch.setenv("MEDCITE_LLM_MODEL", LLM_SERVER_MODEL)
    monkeypatch.setenv("MEDCITE_LLM_MAX_TOKENS", str(MAX_TOKENS))
    monkeypatch.setenv("MEDCITE_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")


def _statements(answer: Answer) -> list[tuple[str, list[int]]]:
    pairs = [(answer.bottom_line.text, answer.bottom_line.citations)]
    sections = [section for section in answer.sections if section.title != EMERGENCY_SECTION]
    return pairs + [(s.text, s.citations) for section in sections for s in section.statements]


def _unsupported(statement: str, passages: list[str]) -> list[str]:
    """Why a statement breaks the verifier's documented rules (docs/llm.md), checked here on their own terms."""
    problems = []
    joined = "\n".join(passages)
    passage_numbers = set(number_mentions(joined)[0])
    problems += [f"number {n}" for n in number_mentions(statement)[0] if n not in passage_numbers]
    words = {word.strip(".,;:()[]").lower() for word in joined.split()}
    problems += [f"drug {d}" for d in drug_names(statement) if not any(d in word for word in words)]
    if lexical_support(statement, passages) < LEXICAL_THRESHOLD:
        problems.append("lexical coverage below the threshold")
    return problems


def _assert_sound(answer: Answer) -> None:
    """An LLM answer keeps only supported statements; a fallback says why; dropped statements say why."""
    if answer.composer == "llm":
        assert answer.notice in (None, CUT_OFF_NOTICE.format(max_tokens=MAX_TOKENS))
        assert answer.verification.model == LLM_SERVER_MODEL
        for text, citations in _statements(answer):
            assert citations, text
            passages = [answer.references[n - 1].passage for n in citations]
            assert _unsupported(text, passages) == [], text
    else:
        assert answer.notice.startswith(FALLBACK_START)
    if answer.verification is not None:
        kept = {text for text, _ in _statements(answer)} if answer.composer == "llm" else set()
        for dropped in answer.verification.dropped:
            assert dropped.reasons and all(reason.strip() for reason in dropped.reasons)
            assert dropped.text.strip() not in kept


# --- dialects --------------------------------------------------------------------------------------------------


def test_llm_check_against_the_real_server_names_json_object(llm_server, monkeypatch, capsys):
    _llm_env(monkeypatch, llm_server)
    assert run(["llm", "check"]) == 0
    out = capsys.readouterr().out
    assert f"Models it lists: {LLM_SERVER_MODEL}" in out
    assert re.search(r"\n  json_schema  \d+ ms +refused: HTTP 500: 1 validation error: .*'response_format'", out)
    assert re.search(r"\n  json_object  \d+ ms, \d+ tokens, [\d.]+ tokens/s +valid answer\n", out)
    for dialect in ("tools", "prompt"):
        assert re.search(
            rf"\n  {dialect} +\d+ ms, \d+ tokens, [\d.]+ tokens/s +(valid answer|accepted, reply not)", out
        )
    assert "medcite will use: json_object (the first dialect the server accepts)\n" in out


@pytest.mark.parametrize("dialect", ["json_schema", "json_object", "tools", "prompt", "auto"])
def test_each_dialect_gives_a_verified_answer_or_a_clear_fallback(llm_server, retriever, dialect):  # noqa: F811
    with _client(llm_server, structured_output=dialect) as client:
        answer = ask(GOUT, retriever=retriever, composer="llm", llm=client)
        chosen = client.structured_output
    _assert_sound(answer)
    if dialect == "json_schema":  # llama-cpp-python refuses OpenAI's form: the fallback says the server erred
        assert answer.composer == "extractive" and "the model server returned an error" in answer.notice
    elif dialect in ("json_object", "auto"):  # schema-constrained: a draft came back and was checked
        assert answer.verification is not None and answer.verification.model == LLM_SERVER_MODEL
    else:  # tools and prompt leave the JSON to the model: accepted, then checked statements or a reason to fall back
        assert answer.verification is not None or "the model server returned an error" not in answer.notice
    if dialect == "auto":
        assert chosen == "json_object"
        assert remembered_dialect(f"{llm_server}/chat/completions", LLM_SERVER_MODEL) == "json_object"


# --- streaming -------------------------------------------------------------------------------------------------


def test_web_stream_delivers_deltas_then_a_verified_answer(llm_server, library):  # noqa: F811
    settings = Settings(
        library=library,
        embedder="none",
        llm_base_url=llm_server,
        llm_model=LLM_SERVER_MODEL,
        llm_max_tokens=MAX_TOKENS,
        llm_max_retries=0,
    )
    with TestClient(create_app(settings)) as client:
        response = client.post("/api/answers/stream", json={"question": GOUT, "composer": "llm"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and kinds.count("answer") == 1
    deltas = [data for kind, data in events if kind == "delta"]
    assert len(deltas) >= 2 and kinds.index("delta") < kinds.index("answer")
    assert [d["n_chars"] for d in deltas] == sorted(d["n_chars"] for d in deltas)
    answer = Answer.model_validate(events[-1][1]["answer"])
    _assert_sound(answer)
    assert answer.verification is not None and answer.verification.model == LLM_SERVER_MODEL


def test_cli_ask_with_the_real_server_prints_a_checked_answer(llm_server, library, monkeypatch, capsys):  # noqa: F811
    _llm_env(monkeypatch, llm_server)
    assert run(["ask", GOUT, "--composer", "llm", "--format", "json", "--library", str(library)]) == 0
    answer = Answer.model_validate_json(capsys.readouterr().out)
    _assert_sound(answer)
    assert answer.verification is not None and answer.verification.model == LLM_SERVER_MODEL


# --- a server that is slow, disconnects, or sends invalid JSON ---------------------------------------------------


class _Proxy:
    """A TCP proxy in front of the real server: one request per connection, the reply passed on as ``mode`` says.

    Modes: 'slow' holds the reply back ``delay_s``; 'cut' closes the connection after the third server-sent
    event; 'corrupt' turns the first streamed '{' into '<' (same length, so HTTP framing stays intact).
    """

    def __init__(self, upstream_port: int, mode: str, delay_s: float = 3.0) -> None:
        self.upstream_port, self.mode, self.delay_s = upstream_port, mode, delay_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(downstream,), daemon=True).start()

    @staticmethod
    def _read_request(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length")), 0)
        while len(body) < length:
            body += sock.recv(65536)
        kept = [line for line in lines if not line.lower().startswith(b"connection:")]
        return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + body

    def _relay(self, downstream: socket.socket) -> None:
        with downstream, socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            upstream.sendall(self._read_request(downstream))
            if self.mode == "slow":
                time.sleep(self.delay_s)
            events, corrupted = 0, False
            while chunk := upstream.recv(65536):
                if self.mode == "corrupt" and not corrupted and b'"content": "{' in chunk:
                    chunk, corrupted = chunk.replace(b'"content": "{', b'"content": "<', 1), True
                if self.mode == "cut":
                    events += chunk.count(b"data: ")
                    if events >= 3:
                        downstream.sendall(chunk[: chunk.rfind(b"data: ")])
                        return
                try:
                    downstream.sendall(chunk)
                except OSError:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(llm_server, request) -> Iterator[_Proxy]:
    upstream = int(llm_server.rsplit(":", 1)[1].split("/")[0])
    running = _Proxy(upstream, request.param)
    yield running
    running.close()


@pytest.mark.parametrize(
    ("proxy", "timeout_s", "why"),
    [
        ("slow", 1.0, "the model server did not answer in time"),
        ("cut", 120.0, "the connection to the model server broke mid-answer"),
        ("corrupt", 120.0, "the model's output was not valid JSON of the answer's shape"),
    ],
    indirect=["proxy"],
)
def test_a_slow_cut_or_corrupted_server_gives_the_extractive_answer_with_the_notice(proxy, retriever, timeout_s, why):  # noqa: F811
    with _client(f"http://127.0.0.1:{proxy.port}/v1", structured_output="json_object", timeout_s=timeout_s) as client:
        answer = ask(GOUT, retriever=retriever, composer="llm", llm=client)
    assert answer.composer == "extractive"
    assert answer.notice == FALLBACK_NOTICE.format(why=why)
    assert answer.bottom_line.text == ask(GOUT, retriever=retriever).bottom_line.text


# --- the verifier on real model output -----------------------------------------------------------------------


def _covered_questions(n: int) -> list[dict]:
    path = data_path("answers", "clinical_questions_dev.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if row["covered"]][:n]


def test_verifier_on_ten_real_answers_keeps_only_supported_statements(llm_server, retriever):  # noqa: F811
    questions = _covered_questions(10)
    assert len(questions) == 10
    proposed = kept = 0
    with _client(llm_server) as client:
        for row in questions:
            answer = ask(row["question"], retriever=retriever, composer="llm", llm=client, audience=row["audience"])
            _assert_sound(answer)
            if answer.verification is not None:
                kept += answer.verification.n_statements_kept
                proposed += answer.verification.n_statements_kept + answer.verification.n_statements_dropped
    # The model wrote statements for the verifier to judge (12 on this machine, all dropped: benchmarks/verify.py).
    assert proposed >= 3
    assert kept <= proposed
