"""The README's walk-through, run exactly as printed.

The block between `<!-- walk-through: begin -->` and `<!-- walk-through: end -->` in
README.md is extracted and run with bash, unchanged, five times, each time in a new empty
folder. The README builds `las` in a separate block above it and puts `target/release` on
PATH; this test puts the folder of the `las` it tests (LAS_BIN, the debug build of the
test command) first on PATH instead: that is the only difference from a user's run.

The block makes its own folder (`mkdir las-walk && cd las-walk`) and listens on its own
port (18799, not the default 18766 of the README's first command), and checks that the LAS
answering there is the one it started. As root (CI), each run gets its own network namespace
(`unshare -n`, loopback only), so that nothing else on the machine can hold that port;
elsewhere it runs on the host's loopback and fails, saying so, when the port is taken.
`test_walkthrough_is_not_fooled_by_another_las` starts another LAS on that port first: the
block must say STOP and accept nothing.
"""
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile

import pytest

RUNS = 5
BEGIN = "<!-- walk-through: begin -->"
END = "<!-- walk-through: end -->"
HEX64 = re.compile(r"^[0-9A-Fa-f]{64}$")
FOLDER = "las-walk"


def walk_port(script: str) -> int:
    m = re.search(r"^LAS=127\.0\.0\.1:(\d+)\s", script, re.M)
    assert m, "the walk-through sets LAS=127.0.0.1:PORT"
    return int(m.group(1))


def walkthrough(repo: pathlib.Path) -> str:
    text = (repo / "README.md").read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "walk-through markers"
    inner = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")
    lines = inner.split("\n")
    assert lines[0] == "```sh" and lines[-1] == "```", f"one ```sh block between the markers: {inner[:80]!r}"
    assert "```" not in "\n".join(lines[1:-1]), "exactly one code block between the markers"
    return "\n".join(lines[1:-1]) + "\n"


def netns_prefix() -> list:
    """`unshare -n` with loopback up, where this user may create a network namespace."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return []
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10)
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] if probe.returncode == 0 else []


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_walkthrough_extracts_as_one_block(repo):
    script = walkthrough(repo)
    assert "las serve" in script and "las wait-ready" in script and "las verify" in script
    first = script.split("\n")[0]
    assert first.startswith(f"mkdir {FOLDER} && cd {FOLDER}"), f"it begins in a new folder: {first}"
    assert walk_port(script) != 18766, "its own port, not the default one"


def run_block(script: str, las_bin: str, before: str = ""):
    """Runs `before` then the block with bash in a new empty folder (in a network namespace
    where possible); returns (process, the block's folder)."""
    prefix = netns_prefix()
    if not prefix:
        print("walk-through on the host's loopback (no network namespace: not root or no unshare)")
        assert port_free(walk_port(script)), f"port {walk_port(script)} is in use on 127.0.0.1: the walk-through needs it"
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("LAS_") or k.startswith("SCONE_"))}
    env["PATH"] = str(pathlib.Path(las_bin).resolve().parent) + os.pathsep + env.get("PATH", "")
    parent = pathlib.Path(tempfile.mkdtemp(prefix="las-readme-"))
    work = parent / "run"
    work.mkdir()
    script_file = parent / "walkthrough.sh"
    script_file.write_text(before + script)
    try:
        p = subprocess.run(prefix + ["bash", "--noprofile", "--norc", str(script_file)],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        shutil.rmtree(parent, ignore_errors=True)
        pytest.fail(f"the walk-through did not finish in 120 s; stderr: {e.stderr!r}")
    return p, parent, work / FOLDER


def test_walkthrough_is_not_fooled_by_another_las(repo, las_bin):
    """Another LAS (its own state) already answers on the block's port: the block's
    `las serve` cannot bind, and its check must say so instead of going on as if all was
    well (before: `invalid-report-mac` three commands later, the bind error hidden)."""
    script = walkthrough(repo)
    port = walk_port(script)
    before = (f"las serve --listen 127.0.0.1:{port} --state-dir \"$PWD/other-state\" 2>/dev/null &\n"
              f"las wait-ready --las 127.0.0.1:{port} --timeout 10s || exit 97\n")
    p, parent, _ = run_block(script + "kill %1 2>/dev/null; wait\n", las_bin, before)
    try:
        assert p.returncode != 97, p.stderr
        out = p.stdout.split("\n")
        assert out[0].startswith("STOP: the LAS on 127.0.0.1:"), p.stdout
        assert not any(line.startswith("ACCEPTED") for line in out), p.stdout
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.parametrize("run", range(1, RUNS + 1))
def test_readme_walkthrough_verbatim(repo, las_bin, run):
    script = walkthrough(repo)
    p, parent, work = run_block(script, las_bin)
    try:
        log = (work / "las.log").read_text() if (work / "las.log").exists() else "(no las.log)"
        context = f"run {run}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}\n--- las.log\n{log}"
        assert p.returncode == 0, context
        out = p.stdout.strip("\n").split("\n")
        assert len(out) >= 5, context
        assert out[0] == f"our LAS answers on 127.0.0.1:{walk_port(script)}", context
        from_log, from_id = out[1].strip(), out[2].strip()
        assert HEX64.match(from_log), f"the grep pipeline printed no platform ID\n{context}"
        assert from_log.upper() == from_id.upper(), f"log ID != `las id`\n{context}"
        assert any(line.startswith("ACCEPTED") for line in out), context
        assert out[-2] == "0", f"las verify did not exit 0\n{context}"
        assert out[-1] == "0", f"las serve did not exit 0 on SIGTERM\n{context}"
        assert "error" not in p.stderr.lower(), f"an error on stderr\n{context}"
    finally:
        shutil.rmtree(parent, ignore_errors=True)
