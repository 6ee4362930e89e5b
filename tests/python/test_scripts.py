"""The test command's own scripts fail instead of passing on nothing (issue 23 item 9).

`scripts/fuzz-smoke` ran every target `cargo fuzz list` printed: when it printed none, the
smoke ran nothing and passed. Here the real script runs in a copy of the repository's
layout whose `scripts/cargo-tool` hands it a stand-in cargo-fuzz that lists no target, and
whose `cargo` (for `cargo fetch`) does nothing: the script must fail, say why, and build
nothing.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import stat
import subprocess

from conftest import REPO


def executable(path: pathlib.Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_fuzz_smoke_fails_on_an_empty_target_list(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "fuzz").mkdir()
    (tmp_path / "bin").mkdir()
    shutil.copy(REPO / "scripts" / "fuzz-smoke", tmp_path / "scripts" / "fuzz-smoke")
    log = tmp_path / "calls.log"
    executable(tmp_path / "fake-cargo-fuzz", f'#!/bin/sh\necho "cargo-fuzz $*" >> "{log}"\n'
               'case "$1 $2" in "fuzz list") exit 0;; esac\nexit 0\n')
    executable(tmp_path / "scripts" / "cargo-tool", f'#!/bin/sh\necho "{tmp_path / "fake-cargo-fuzz"}"\n')
    executable(tmp_path / "bin" / "cargo", f'#!/bin/sh\necho "cargo $*" >> "{log}"\nexit 0\n')
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    p = subprocess.run(["bash", str(tmp_path / "scripts" / "fuzz-smoke")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    calls = log.read_text() if log.exists() else ""
    assert p.returncode != 0, f"passed with no target\n{p.stdout}\n{p.stderr}\n{calls}"
    assert "no fuzz targets" in p.stderr, p.stderr
    assert "cargo-fuzz fuzz list" in calls, calls
    assert "fuzz build" not in calls and "fuzz run" not in calls, calls


def test_fuzz_smoke_runs_what_it_lists(tmp_path):
    """The stand-in above is a real check: with one listed target, the script builds and
    runs it (so the empty case fails because of the list, not the stand-in)."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "fuzz" / "corpus" / "t1").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    shutil.copy(REPO / "scripts" / "fuzz-smoke", tmp_path / "scripts" / "fuzz-smoke")
    log = tmp_path / "calls.log"
    executable(tmp_path / "fake-cargo-fuzz", f'#!/bin/sh\necho "cargo-fuzz $*" >> "{log}"\n'
               'case "$1 $2" in "fuzz list") echo t1; exit 0;; esac\n'
               'echo "stat::number_of_executed_units: 5"\necho "stat::new_units_added: 0"\nexit 0\n')
    executable(tmp_path / "scripts" / "cargo-tool", f'#!/bin/sh\necho "{tmp_path / "fake-cargo-fuzz"}"\n')
    executable(tmp_path / "bin" / "cargo", f'#!/bin/sh\necho "cargo $*" >> "{log}"\nexit 0\n')
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", FUZZ_SECS="1")
    p = subprocess.run(["bash", str(tmp_path / "scripts" / "fuzz-smoke")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    calls = log.read_text()
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}\n{calls}"
    assert "fuzz build" in calls and "fuzz run -s none --codegen-units 16 t1" in calls, calls
    assert "t1: 5 executions" in p.stdout, p.stdout
