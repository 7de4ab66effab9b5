import json
import subprocess
import sys
from pathlib import Path

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
