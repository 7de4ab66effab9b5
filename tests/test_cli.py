import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medcite.cli import run


def test_library_stats_fills_an_empty_library_with_the_guideline_pack(tmp_path: Path, capsys):
    library = tmp_path / "new" / "library.db"
    assert run(["library", "stats", "--format", "json", "--library", str(library)]) == 0
    captured = capsys.readouterr()
    stats = json.loads(captured.out)
    assert {"documents", "passages", "by_kind", "by_evidence_type", "retracted"} <= stats.keys()
    assert stats["documents"] == 43
    assert stats["by_kind"] == {"guidelines": 43}
    assert stats["by_evidence_type"] == {"guideline": 43}
    assert stats["retracted"] == 0
    assert "empty" in captured.err and "guideline pack" in captured.err
    assert run(["library", "stats", "--format", "json", "--library", str(library)]) == 0
    assert "guideline pack" not in capsys.readouterr().err


def test_library_option_falls_back_to_medcite_library_variable(tmp_path: Path, capsys, monkeypatch):
    library = tmp_path / "from-env.db"
    monkeypatch.setenv("MEDCITE_LIBRARY", str(library))
    assert run(["library", "stats"]) == 0
    assert library.exists()
    assert "43 documents" in capsys.readouterr().out


def test_ingest_missing_path_is_skipped_with_one_line_and_exit_1(tmp_path: Path, capsys):
    library = tmp_path / "library.db"
    code = run(["ingest", "guidelines", str(tmp_path / "nope"), "--library", str(library)])
    captured = capsys.readouterr()
    assert code == 1
    assert "nope: no such file or folder." in captured.err
    assert captured.out.strip() == "0 added, 0 updated, 0 unchanged, 1 skipped"


def test_ingest_guidelines_twice_reports_unchanged_and_exit_0(tmp_path: Path, capsys):
    library = tmp_path / "library.db"
    assert run(["ingest", "guidelines", "--library", str(library)]) == 0
    assert capsys.readouterr().out.strip() == "43 added, 0 updated, 0 unchanged, 0 skipped"
    assert run(["ingest", "guidelines", "--library", str(library)]) == 0
    assert capsys.readouterr().out.strip() == "0 added, 0 updated, 43 unchanged, 0 skipped"


def test_bad_input_prints_one_line_and_no_traceback(tmp_path: Path):
    not_a_library = tmp_path / "notes.txt"
    not_a_library.write_text("hello")
    cases = [
        (["ingest", "no-such-kind", "x"], 2),
        (["ingest", "pubmed-xml"], 2),
        (["library", "stats", "--library", str(not_a_library)], 3),
    ]
    for args, expected in cases:
        result = subprocess.run([sys.executable, "-m", "medcite", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == expected, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert "Error" in result.stderr


def test_ingest_pubmed_fetches_from_eutils_replay_server(tmp_path: Path, capsys, monkeypatch, httpserver):
    from werkzeug import Request, Response

    from conftest import data_path

    entrez = data_path("pubmed", "entrez")
    bodies = {"16403221,16377612": "pubmed1.xml", "14871861": "pubmed4.xml"}

    def efetch(request: Request) -> Response:
        return Response((entrez / bodies[request.args["id"]]).read_bytes(), content_type="text/xml")

    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch1.xml").read_bytes())
    httpserver.expect_request("/efetch.fcgi").respond_with_handler(efetch)
    monkeypatch.setenv("MEDCITE_EUTILS_BASE_URL", httpserver.url_for("/"))
    monkeypatch.setenv("MEDCITE_EUTILS_BATCH_RECORDS", "2")
    library = tmp_path / "library.db"
    code = run(["ingest", "pubmed", "--query", "biopython", "--max", "3", "--library", str(library)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == "3 added, 0 updated, 0 unchanged, 0 skipped"
    assert run(["library", "stats", "--format", "json", "--library", str(library)]) == 0
    assert json.loads(capsys.readouterr().out)["by_kind"] == {"guidelines": 43, "pubmed": 3}


def test_ingest_pubmed_unreachable_server_is_one_line_exit_6(tmp_path: Path, capsys, monkeypatch, httpserver):
    httpserver.expect_request("/esearch.fcgi").respond_with_data("Service Unavailable", status=503)
    monkeypatch.setenv("MEDCITE_EUTILS_BASE_URL", httpserver.url_for("/"))
    monkeypatch.setenv("MEDCITE_EUTILS_MAX_RETRIES", "0")
    code = run(["ingest", "pubmed", "--query", "gout", "--library", str(tmp_path / "library.db")])
    captured = capsys.readouterr()
    assert code == 6
    assert captured.err.count("\n") <= 3 and "Error:" in captured.err


def test_every_command_has_help_and_appears_in_readme():
    import typer

    from medcite.cli import app

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    group = typer.main.get_command(app)
    names = []
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        names.extend([f"{name} {sub}" for sub in subcommands] if subcommands else [name])
        for sub in (subcommands or {}).values():
            assert sub.help, f"{name} {sub.name} has no help text"
        assert command.help, f"{name} has no help text"
    assert sorted(names) == [
        "ask",
        "cite",
        "ingest",
        "library copy",
        "library list",
        "library remove",
        "library show",
        "library stats",
        "llm check",
        "mcp",
        "review stale",
        "schema answer",
        "search",
        "serve",
        "users add",
        "users disable",
        "users list",
        "users password",
        "users token",
    ]
    for name in names:
        assert f"medcite {name}" in readme, name


def test_invalid_setting_is_one_line_exit_2(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("MEDCITE_INGEST_BATCH_DOCUMENTS", "abc")
    assert run(["library", "stats", "--library", str(tmp_path / "library.db")]) == 2
    err = capsys.readouterr().err
    assert "MEDCITE_INGEST_BATCH_DOCUMENTS" in err and err.count("\n") == 1


def test_ingest_reports_broken_links_and_pipes_and_reads_the_rest(tmp_path: Path, capsys):
    from conftest import data_path

    folder = tmp_path / "inputs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "record.xml").write_bytes(data_path("pubmed", "pubmed-29768149.xml").read_bytes())
    (folder / "dead.xml").symlink_to(tmp_path / "missing.xml")
    pipe = tmp_path / "pipe.xml"
    os.mkfifo(pipe)
    code = run(["ingest", "pubmed-xml", str(folder), str(pipe), "--library", str(tmp_path / "library.db")])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.strip() == "1 added, 0 updated, 0 unchanged, 2 skipped"
    assert "dead.xml: a broken link" in captured.err and "pipe.xml: not a regular file" in captured.err


def test_search_json_lists_passages_with_the_documented_keys(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    library = str(tmp_path / "library.db")
    assert run(["search", "acute gout flare first-line", "--k", "3", "--format", "json", "--library", library]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3
    assert {"passage_id", "document_id", "title", "section", "text", "evidence_type", "year", "score"} <= hits[0].keys()
    assert hits[0]["document_id"] == "guideline:acr_gout_2020" and hits[0]["evidence_type"] == "guideline"


def test_search_queries_file_prints_one_json_line_per_query(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "query": "gout flare"}\n\n{"id": 2, "query": "  "}\n')
    # A query that cannot be searched is reported on its line, counted, and makes the exit code 1 (as ask's batch).
    assert run(["search", "--queries", str(queries), "--k", "2", "--library", str(tmp_path / "library.db")]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["id"] for line in lines] == ["a", "2"]
    assert len(lines[0]["results"]) == 2 and lines[1]["results"] == [] and "empty" in lines[1]["error"]
    assert captured.err.strip().splitlines()[-1] == "1 searched, 1 could not be searched."


def test_search_refuses_a_query_longer_than_a_question(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    assert run(["search", "gout flare " * 300, "--library", str(tmp_path / "library.db")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "Error: The query is 3300 characters long; keep it under 2000."
    )


def test_undecodable_bytes_and_escape_codes_never_reach_the_embedder_or_the_output(tmp_path: Path, capsys, monkeypatch):
    # A tester's 'gout \xff treatment' reached WordLlama's tokenizer as a lone surrogate (TypeError traceback), and
    # an ESC [31m in a question was printed back into the terminal and saved.
    pytest.importorskip("wordllama", reason="the crash was WordLlama's tokenizer (the static extra)")
    monkeypatch.setenv("MEDCITE_EMBEDDER", "wordllama-l2-256")
    library = str(tmp_path / "library.db")
    assert run(["search", "gout \udcff flare treatment", "--k", "2", "--format", "json", "--library", library]) == 0
    assert json.loads(capsys.readouterr().out)[0]["document_id"] == "guideline:acr_gout_2020"
    assert run(["ask", "gout\x01\x1b[31m flare \udcff treatment?", "--format", "json", "--library", library]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["question"] == "Gout flare treatment?"
    assert "\\u001b" not in out and "\x1b" not in out


def test_search_empty_query_is_one_line_exit_2(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    assert run(["search", "   ", "--library", str(tmp_path / "library.db")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("Error: The query is empty")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": null, "query": null}', "'id' is NoneType, not text"),
        ('{"id": "a", "query": ["gout"]}', "'query' is list, not text"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        # a tester's lines: Python's own words ('list indices must be integers', "'float' object is not
        # subscriptable") reached the user
        ('["gout"]', "line 1 is not a JSON object with 'id' and 'query' (it is an array)"),
        ("3.5", "line 1 is not a JSON object with 'id' and 'query' (it is a number)"),
    ],
    ids=["null", "list", "deep", "array-line", "number-line"],
)
def test_queries_file_refuses_values_that_are_not_text_in_one_line(tmp_path: Path, capsys, line, message):
    # A tester's finding: null was searched as the text "None"; deep nesting printed a RecursionError traceback.
    queries = tmp_path / "q.jsonl"
    queries.write_text(line + "\n")
    assert run(["search", "--queries", str(queries), "--library", str(tmp_path / "library.db")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "line 1" in error[0] and message in error[0]


def test_questions_file_may_start_with_a_byte_order_mark(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    questions = tmp_path / "q.jsonl"
    questions.write_bytes('\ufeff{"id": "g", "question": "acute gout flare first-line treatment?"}\n'.encode())
    assert run(["ask", "--questions", str(questions), "--format", "json", "--library", str(tmp_path / "l.db")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["id"] == "g"


def test_ask_refuses_what_the_web_app_refuses_in_one_line(tmp_path: Path, capsys, monkeypatch):
    # A tester's finding: the CLI saved a 112,000-character question the web app caps at 2,000, and
    # `--format html` was silently ignored with --questions.
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    library = str(tmp_path / "library.db")
    assert run(["ask", "gout " * 1000, "--library", library]) == 2
    assert "5000 characters long; keep it under 2000" in capsys.readouterr().err
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "g", "question": "gout flare first-line?"}\n')
    assert run(["ask", "--questions", str(questions), "--format", "html", "--library", library]) == 2
    assert "--format html needs one QUESTION" in capsys.readouterr().err


def test_a_damaged_full_text_index_is_one_line_exit_3(tmp_path: Path, capsys, monkeypatch):
    # A tester deleted rows of the FTS5 index's data table: search and ask printed an 80-line DatabaseError.
    import sqlite3

    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    library = tmp_path / "library.db"
    assert run(["library", "stats", "--library", str(library)]) == 0
    with sqlite3.connect(library) as connection:
        connection.execute("DELETE FROM passages_fts_data WHERE id > 10")
    capsys.readouterr()
    for command in (["search", "gout flare"], ["ask", "gout flare treatment?"]):
        assert run([*command, "--library", str(library)]) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "has a damaged full-text index (database disk image is malformed)" in err[0]


def test_ctrl_c_during_ingest_says_what_was_kept(tmp_path: Path, capsys, monkeypatch):
    # typer turns KeyboardInterrupt into an exit code of 130 without raising: the message was never printed.
    import medcite.index
    from medcite.cli import INTERRUPTED

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(medcite.index, "ingest", interrupted)
    protocol = tmp_path / "protocol.md"
    protocol.write_text("# Protocol\n\nText.\n")
    assert run(["ingest", "files", str(protocol), "--library", str(tmp_path / "library.db")]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == INTERRUPTED


def test_a_question_starting_with_a_dash_gets_a_hint(tmp_path: Path, capsys):
    # A tester's '-what is gout' got only click's 'No such option: -w'.
    assert run(["ask", "-what is gout", "--library", str(tmp_path / "library.db")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2] == "Error: No such option: -w"
    assert err[-1] == "A question or query starting with '-' goes after --, e.g. medcite ask -- \"-...\""
