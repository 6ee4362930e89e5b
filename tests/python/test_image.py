"""The LAS container image: docker/, scripts/build-image and scripts/docker-engine.

The image is built by scripts/build-image (a static lasd in a `FROM scratch` image) in a Docker
engine: the one DOCKER_HOST reaches, or a private one that scripts/docker-engine installs and
starts (and that this module stops by its pid). Where no engine can be started, the tests that
need one are skipped with the reason (`pytest -rs` shows it), never passed; under CI=true
such a skip is a failure, since CI's machine can run them.

The runs mirror the Helm chart's pod: the `prepare-state` init step as root with only the
CHOWN, FOWNER and DAC_READ_SEARCH capabilities on a root-owned host directory, then the LAS as
the image's non-root user with a read-only root filesystem and no capabilities.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import urllib.request

import pytest
import yaml
from conftest import not_run

HEX64 = re.compile(r"^[0-9A-Fa-f]{64}$")
LAS_UID = 10001
PREPARE_CAPS = ["CHOWN", "FOWNER", "DAC_READ_SEARCH"]
# The cargo profile of the static lasd in the image. `dev` by default: a cold static build is a
# second full compile next to scripts/test's own, and on 2 cores the release one (thin LTO)
# takes about twice as long (measured: 6m20s vs 3m11s of CPU time), for the same packaging
# and behaviour. LAS_IMAGE_PROFILE=release tests the image exactly as scripts/build-image
# ships it.
PROFILE = os.environ.get("LAS_IMAGE_PROFILE", "dev")
# A static lasd to package instead of building one (scripts/build-image --lasd-binary).
PREBUILT = os.environ.get("LAS_IMAGE_BINARY")


def run(cmd, *, env=None, timeout=60, check=False, cwd=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def final_stage(dockerfile: str) -> list[str]:
    """The instructions of the last stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    start = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[start:]


# --- without an engine --------------------------------------------------------------------


def test_dockerfiles_build_the_same_final_stage(repo):
    source = final_stage((repo / "docker" / "Dockerfile").read_text())
    prebuilt = final_stage((repo / "docker" / "Dockerfile.prebuilt").read_text())
    # The same instructions but for where the files come from.
    assert [re.sub(r"--from=\S+ |/out/", "", line) for line in source] == prebuilt
    assert prebuilt[0] == "FROM scratch"
    assert "USER 10001:10001" in prebuilt
    assert "EXPOSE 18766" in prebuilt
    # The measured daemon is the entrypoint; it serves without arguments.
    assert 'ENTRYPOINT ["/usr/local/bin/lasd"]' in prebuilt
    assert not [line for line in prebuilt if line.upper().startswith("CMD")]
    assert not [line for line in prebuilt if line.upper().startswith("HEALTHCHECK")]


def test_default_tag_is_the_charts_default_image(repo):
    tag = run([repo / "scripts" / "build-image", "--print-tag"], check=True).stdout.strip()
    values = yaml.safe_load((repo / "charts" / "las" / "values.yaml").read_text())
    assert tag == values["image"]


def test_build_image_says_when_there_is_no_engine(repo, tmp_path):
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-such.sock")
    started = time.monotonic()
    proc = run([repo / "scripts" / "build-image", "--tag", "las:never"], env=env)
    assert proc.returncode == 3, proc.stderr
    assert "no Docker engine reachable" in proc.stderr and "not built" in proc.stderr
    assert time.monotonic() - started < 20, "it should give up before building anything"


@pytest.fixture(scope="module")
def prepare_state_bin(repo, tmp_path_factory):
    out = tmp_path_factory.mktemp("helper") / "las-prepare-state"
    run(["rustc", "--edition", "2021", "-O", "-o", out, repo / "docker" / "las-prepare-state.rs"], check=True, timeout=120)
    return out


def test_prepare_state_hands_the_directory_to_the_las_user(prepare_state_bin, tmp_path):
    if os.geteuid() != 0:
        not_run("las-prepare-state changes owners: needs root")
    host = tmp_path / "var-lib-las"
    host.mkdir(mode=0o755)
    state = host / "state"
    run([prepare_state_bin, state, "10001", "10002"], check=True)
    st = state.lstat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (10001, 10002, 0o700)
    assert (host.stat().st_uid, stat.S_IMODE(host.stat().st_mode)) == (0, 0o755), "it touched the parent"

    # A secret left by a root-run LAS is handed over; symlinks are changed, not followed.
    os.chown(state, 0, 0)
    os.chmod(state, 0o755)
    (state / "platform-secret").write_bytes(b"\0" * 32)
    os.chmod(state / "platform-secret", 0o600)
    target = tmp_path / "elsewhere"
    target.write_text("not the LAS's")
    (state / "link").symlink_to(target)
    (state / "sub").mkdir()
    (state / "sub" / "deep").write_text("")
    run([prepare_state_bin, state, "10001", "10001"], check=True)
    for entry in ("", "platform-secret", "link", "sub"):
        assert (state / entry).lstat().st_uid == 10001, entry
    assert stat.S_IMODE((state / "platform-secret").stat().st_mode) == 0o600
    assert target.stat().st_uid == 0, "it followed a symlink"
    assert (state / "sub" / "deep").stat().st_uid == 0, "it recursed"
    assert stat.S_IMODE(state.lstat().st_mode) == 0o700


def test_prepare_state_refuses_symlinks_and_files(prepare_state_bin, tmp_path):
    if os.geteuid() != 0:
        not_run("las-prepare-state changes owners: needs root")
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "state").symlink_to(real)
    proc = run([prepare_state_bin, tmp_path / "state", "10001", "10001"])
    assert proc.returncode == 1 and "symlink" in proc.stderr
    assert real.stat().st_uid == 0
    (tmp_path / "file").write_text("")
    assert run([prepare_state_bin, tmp_path / "file", "10001", "10001"]).returncode == 1
    assert run([prepare_state_bin, tmp_path / "x", "ten", "10001"]).returncode == 2


# --- with an engine -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_env(repo):
    """An environment whose DOCKER_HOST answers: the caller's engine, or a private one."""
    if shutil.which("docker") and run(["docker", "version"], timeout=20).returncode == 0:
        yield dict(os.environ)
        return
    # Short: the engine's unix sockets live below this directory.
    engine_dir = tempfile.mkdtemp(prefix="lasd.", dir="/tmp")
    started = run([repo / "scripts" / "docker-engine", "start", engine_dir], timeout=300)
    if started.returncode == 3:
        shutil.rmtree(engine_dir, ignore_errors=True)
        not_run(f"no Docker engine can be started here: {started.stderr.strip()}")
    if started.returncode != 0:
        pytest.fail(f"scripts/docker-engine start failed ({started.returncode}): {started.stderr}")
    host = started.stdout.strip().splitlines()[-1].removeprefix("DOCKER_HOST=")
    try:
        yield dict(os.environ, DOCKER_HOST=host)
    finally:
        run([repo / "scripts" / "docker-engine", "stop", engine_dir], timeout=60)
        shutil.rmtree(engine_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def image(repo, docker_env):
    tag = f"las-test:{os.getpid()}"
    cmd = [repo / "scripts" / "build-image", "--tag", tag, "--profile", PROFILE]
    if PREBUILT:
        cmd += ["--lasd-binary", PREBUILT]
    built = run(cmd, env=docker_env, timeout=900)
    assert built.returncode == 0, f"scripts/build-image failed:\n{built.stderr[-4000:]}"
    assert built.stdout.strip().splitlines()[-1] == tag
    yield tag
    run(["docker", "rmi", "--force", tag], env=docker_env)


def docker(env, *args, timeout=60, check=True) -> subprocess.CompletedProcess:
    return run(["docker", *args], env=env, timeout=timeout, check=check)


# The LAS container as the chart runs it.
LAS_RUN = ["--network", "none", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


def prepare_host_dir(env, image, host_dir):
    """The chart's init container: hands <host_dir>/state to the LAS user."""
    docker(env, "run", "--rm", *LAS_RUN, "--user", "0:0", *[f"--cap-add={c}" for c in PREPARE_CAPS],
           "-v", f"{host_dir}:/host-state", "--entrypoint", "/usr/local/bin/las-prepare-state",
           image, "/host-state/state", str(LAS_UID), str(LAS_UID))


def las_id(env, image, state_dir) -> str:
    proc = docker(env, "run", "--rm", *LAS_RUN, "-v", f"{state_dir}:/state", image, "id", "--state-dir", "/state",
                  check=False)
    assert proc.returncode == 0, f"lasd id exited {proc.returncode}: {proc.stderr}"
    lines = proc.stdout.split()
    assert lines and HEX64.match(lines[-1]), f"lasd id printed no platform ID (64 hex chars): {proc.stdout!r}"
    return lines[-1]


def test_image_config(docker_env, image):
    [info] = json.loads(docker(docker_env, "image", "inspect", image).stdout)
    config = info["Config"]
    assert config["User"] == "10001:10001"
    assert list(config["ExposedPorts"]) == ["18766/tcp"]
    assert config["Entrypoint"] == ["/usr/local/bin/lasd"] and not config["Cmd"]
    assert not config.get("Healthcheck")
    assert "LAS_STATE_DIR=/var/lib/las" in config["Env"]
    assert len(info["RootFS"]["Layers"]) == 2, "a scratch image has the layers of its two COPYs only"


def test_image_holds_only_the_three_binaries(docker_env, image, tmp_path):
    container = docker(docker_env, "create", image).stdout.strip()
    try:
        tar = tmp_path / "fs.tar"
        docker(docker_env, "export", "-o", str(tar), container)
    finally:
        docker(docker_env, "rm", container, check=False)
    listing = run(["tar", "-tvf", tar], check=True).stdout.splitlines()
    # `PERMS OWNER SIZE DATE TIME NAME[ -> TARGET]`
    entries = {line.split(None, 5)[5].split(" -> ")[0].rstrip("/"): line for line in listing}
    files = {name: line for name, line in entries.items() if not line.startswith("d")}
    # The measured daemon, the init helper, and the operator CLI `las`, which the chart's
    # verification service and `helm test` hook run (the LAS pods never do: their command is
    # lasd, tests/python/test_image.py::test_every_rendered_container_runs_in_the_image).
    assert {"usr/local/bin/lasd", "usr/local/bin/las-prepare-state", "usr/local/bin/las", "etc/passwd", "etc/group"} <= set(files)
    extra = [f for f in files if not f.startswith(("usr/local/bin/", "etc/", ".dockerenv", "dev/", "proc/", "sys/"))]
    assert not extra, f"unexpected files in the image: {extra}"
    state = entries["var/lib/las"]
    assert state.split()[0] == "drwx------" and state.split()[1] in ("10001/10001", "las/las")
    for binary in ("lasd", "las", "las-prepare-state"):
        assert files[f"usr/local/bin/{binary}"].split()[1] in ("0/0", "root/root"), binary


def test_las_id_runs_as_non_root_and_keeps_its_identity(docker_env, image, tmp_path):
    host = tmp_path / "var-lib-las"  # as the kubelet creates it: root's, 0755
    host.mkdir(mode=0o755)
    prepare_host_dir(docker_env, image, host)
    first = las_id(docker_env, image, host / "state")
    secret = host / "state" / "platform-secret"
    assert secret.exists(), f"no platform-secret in the state dir: {os.listdir(host / 'state')}"
    st = secret.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (LAS_UID, 0o600)
    # A restarted pod on the same node: the same platform ID.
    assert las_id(docker_env, image, host / "state") == first
    # The init step runs again on every pod start; it must not disturb the identity.
    prepare_host_dir(docker_env, image, host)
    assert las_id(docker_env, image, host / "state") == first


def wait_for_key_line(env, container, deadline_s=30) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        logs = docker(env, "logs", container, check=False)
        lines = [line for line in (logs.stdout + logs.stderr).splitlines() if "public key" in line]
        if lines:
            return lines[-1]
        state = docker(env, "inspect", "-f", "{{.State.Running}}", container, check=False).stdout.strip()
        if state == "false":
            pytest.fail(f"lasd exited early:\n{logs.stdout}{logs.stderr}")
        time.sleep(0.3)
    pytest.fail(f"lasd logged no 'public key' line within {deadline_s} s")


def test_serve_logs_the_platform_id_and_stops_on_sigterm(docker_env, image, tmp_path):
    host = tmp_path / "var-lib-las"
    host.mkdir(mode=0o755)
    prepare_host_dir(docker_env, image, host)
    expected = las_id(docker_env, image, host / "state")
    container = docker(docker_env, "run", "-d", *LAS_RUN, "-v", f"{host / 'state'}:/var/lib/las", image).stdout.strip()
    try:
        line = wait_for_key_line(docker_env, container)
        # `kubectl logs POD | grep 'public key' | tail -n 1 | awk '{print $8}'`
        assert line.split()[7].upper() == expected.upper(), line
        # PID 1 of a scratch image: SIGTERM has no default action there, so the LAS must
        # handle it, or every pod deletion waits out the grace period and gets SIGKILL.
        docker(docker_env, "stop", "-t", "10", container, timeout=30)
        code = docker(docker_env, "inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip()
        assert code == "0", f"lasd exited {code} on SIGTERM (137: it ignored SIGTERM and was killed)"
    finally:
        docker(docker_env, "rm", "--force", container, check=False)


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_the_kubernetes_probes(docker_env, image, tmp_path):
    # The host's network namespace, but bound to loopback only.
    port = free_loopback_port()
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, LAS_UID, LAS_UID)
    container = docker(docker_env, "run", "-d", "--network", "host", "--read-only", "--cap-drop", "ALL",
                       "--security-opt", "no-new-privileges", "-e", f"LAS_LISTEN=127.0.0.1:{port}",
                       "-v", f"{state}:/var/lib/las", image).stdout.strip()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError as err:
                if time.monotonic() > deadline:
                    logs = docker(docker_env, "logs", container, check=False)
                    pytest.fail(f"/readyz did not answer 200 within 30 s ({err}):\n{logs.stdout}{logs.stderr}")
                time.sleep(0.3)
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"{base}/metrics", timeout=2) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"{base}/v1/platform", timeout=2) as resp:
            platform = json.load(resp)
        line = wait_for_key_line(docker_env, container)
        assert platform["platform_id"].upper() == line.split()[7].upper()
    finally:
        docker(docker_env, "rm", "--force", container, check=False)
