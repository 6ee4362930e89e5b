"""Shared fixtures for the Python checks: where the las binary and the repo are."""
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def las_bin() -> str:
    path = os.environ.get("LAS_BIN", str(REPO / "target" / "debug" / "las"))
    if not os.path.exists(path):
        pytest.fail(f"las binary not found at {path}: run `cargo build` first or set LAS_BIN")
    return path
