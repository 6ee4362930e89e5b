"""Shared fixtures for the Python checks: where the las binary and the repo are, a real
daemon on a loopback port (stderr read by a thread, every wait with a deadline), and the
rule for tests this machine cannot run (skipped with the reason; a failure under CI)."""
import os
import pathlib
import queue
import re
import subprocess
import tempfile
import threading

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def on_ci() -> bool:
    """CI sets CI=true; its machine (root, same kind as ours) must run every test."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def not_run(reason: str):
    """Skips with `reason` (shown by `pytest -rs`), or fails when CI is set."""
    if on_ci():
        pytest.fail(f"NOT RUN on CI, which must run it: {reason}")
    pytest.skip(f"NOT RUN: {reason}")


@pytest.fixture(scope="session")
def repo() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def las_bin() -> str:
    path = os.environ.get("LAS_BIN", str(REPO / "target" / "debug" / "las"))
    if not os.path.exists(path):
        pytest.fail(f"las binary not found at {path}: run `cargo build` first or set LAS_BIN")
    return path


class Daemon:
    """`las serve` on 127.0.0.1:0 with a temp state folder; its stderr collected by a thread."""

    def __init__(self, las_bin: str, start_deadline: float = 20):
        self.state = tempfile.mkdtemp()
        self.proc = subprocess.Popen(
            [las_bin, "serve", "--mode", "sim", "--listen", "127.0.0.1:0", "--state-dir", self.state],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        lines: queue.Queue = queue.Queue()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        self.addr = None
        try:
            while self.addr is None:
                line = lines.get(timeout=start_deadline)
                if line is None:
                    break
                m = re.search(r"listening on http://([^\s\"]+)", line)
                if m:
                    self.addr = m.group(1)
        except queue.Empty:
            pass
        if self.addr is None:
            self.proc.kill()
            pytest.fail(f"las serve did not announce a listener within {start_deadline} s:\n{''.join(self.log)}")

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("las serve did not exit within 15 s of SIGTERM")


@pytest.fixture()
def las_daemon(las_bin):
    d = Daemon(las_bin)
    yield d
    assert d.stop() == 0
