"""Shared fixtures: the real data folder and a fresh library per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcite.store import Store

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEDCITE_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


def data_path(*parts: str) -> Path:
    """Return a path inside the shared data folder, skipping the test when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data {path} is absent (set MEDCITE_TEST_DATA to the shared data folder)")
    return path


@pytest.fixture
def data() -> Path:
    """The shared data folder (../shared/data or $MEDCITE_TEST_DATA)."""
    if not DATA.exists():
        pytest.skip(f"test data folder {DATA} is absent (set MEDCITE_TEST_DATA)")
    return DATA


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty library file under tmp_path."""
    with Store.open(tmp_path / "library.db") as fresh:
        yield fresh
