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
# A static `las` to package instead of building one (scripts/build-image --cli-binary).
PREBUILT_CLI = os.environ.get("LAS_IMAGE_CLI_BINARY")


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
    if PREBUILT_CLI:
        cmd += ["--cli-binary", PREBUILT_CLI]
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


# --- the chart's containers, as rendered, in the image --------------------------------------
# Kubernetes runs `command` (or, without it, the image's ENTRYPOINT) with `args`, `$(VAR)`
# expanded from the container's env. Each container the chart renders is run here exactly so,
# in the image it names, with its security context, env and volumes: a container whose program
# is missing from its image fails here, not in a cluster.

VERIFIER_POLICY = ('version: "0.3"\nname: demo\nservices:\n  - name: app\n    attestation:\n'
                   '      mrenclave: ["' + "ab" * 32 + '"]\n')
NODE_IP = "127.0.0.1"
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def render_chart(repo, values: dict) -> tuple[list[dict], list[dict]]:
    """The objects and the `helm test` hooks of one rendering."""
    import helm_python as helm

    with helm.Chart.load(repo / "charts" / "las") as chart:
        out = chart.render(values, name="las", namespace="default")
    objects, hooks = [], []
    for path, text in out.items():
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                annotations = doc.get("metadata", {}).get("annotations") or {}
                (hooks if "helm.sh/hook" in annotations else objects).append(doc)
    return objects, hooks


def pod_specs(objects, hooks) -> list[tuple[str, dict]]:
    specs = [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
             for o in objects if o["kind"] in ("DaemonSet", "Deployment")]
    specs += [(f"Pod/{h['metadata']['name']}", h["spec"]) for h in hooks if h["kind"] == "Pod"]
    return specs


def every_container(objects, hooks):
    for where, spec in pod_specs(objects, hooks):
        for c in spec.get("initContainers", []):
            yield where, spec, c, True
        for c in spec["containers"]:
            yield where, spec, c, False


def container_env(container) -> dict[str, str]:
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), e["value"])
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.hostIP":
            env[e["name"]] = NODE_IP
        else:
            pytest.fail(f"the image test does not know how to fill {e}")
    return env


def kubernetes_argv(env_docker, image, container) -> list[str]:
    """What the kubelet runs: command or the ENTRYPOINT, then args (or CMD without command)."""
    [info] = json.loads(docker(env_docker, "image", "inspect", image).stdout)
    config = info["Config"]
    command = container.get("command") or config.get("Entrypoint") or []
    if "args" in container:
        args = container["args"]
    else:
        args = [] if container.get("command") else (config.get("Cmd") or [])
    env = container_env(container)
    return [VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), a) for a in [*command, *args]]


def docker_run_args(objects, spec, container, tmp_path) -> list[str]:
    """`docker run` options for the container's security context, env and volumes."""
    pod_ctx = spec.get("securityContext", {})
    ctx = container.get("securityContext", {})
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup", uid))
    opts = []
    if uid is not None:
        opts += ["--user", f"{uid}:{gid}"]
    if "fsGroup" in pod_ctx:
        opts += ["--group-add", str(pod_ctx["fsGroup"])]
    if ctx.get("readOnlyRootFilesystem"):
        opts.append("--read-only")
    caps = ctx.get("capabilities", {})
    if "ALL" in caps.get("drop", []):
        opts += ["--cap-drop", "ALL"]
    opts += [f"--cap-add={c}" for c in caps.get("add", [])]
    if ctx.get("allowPrivilegeEscalation") is False:
        opts += ["--security-opt", "no-new-privileges"]
    assert not ctx.get("privileged"), "the image test runs no privileged container"
    for name, value in container_env(container).items():
        opts += ["-e", f"{name}={value}"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    for m in container.get("volumeMounts", []):
        vol = volumes[m["name"]]
        host = tmp_path / "volumes" / m["name"]
        if "emptyDir" in vol:
            opts += ["--tmpfs", f"{m['mountPath']}:mode=1777"]
            continue
        if not host.exists():
            host.mkdir(parents=True, mode=0o755)  # as the kubelet creates a hostPath: root's
            files = {}
            if "configMap" in vol:
                files = by_name[("ConfigMap", vol["configMap"]["name"])]["data"]
                mode = vol["configMap"].get("defaultMode", 0o644)
            elif "secret" in vol:
                import base64
                data = by_name[("Secret", vol["secret"]["secretName"])]["data"]
                files = {k: base64.b64decode(v).decode() for k, v in data.items()}
                mode = vol["secret"].get("defaultMode", 0o644)
            for key, text in files.items():
                f = host / key
                f.write_text(text)
                os.chmod(f, mode)
                # The kubelet hands projected files to the pod's fsGroup.
                os.chown(f, 0, pod_ctx.get("fsGroup", 0))
        source = host / m["subPath"] if "subPath" in m else host
        source.mkdir(parents=True, exist_ok=True)
        opts += ["-v", f"{source}:{m['mountPath']}{':ro' if m.get('readOnly') else ''}"]
    return opts


def run_container(env_docker, image, objects, spec, container, tmp_path, *, detach=False, extra=(), argv=None):
    argv = argv or kubernetes_argv(env_docker, image, container)
    opts = docker_run_args(objects, spec, container, tmp_path)
    cmd = ["run", *(["-d"] if detach else ["--rm"]), *opts, *extra, "--entrypoint", argv[0], image, *argv[1:]]
    return docker(env_docker, *cmd, check=False, timeout=60)


def wait_for_log(env_docker, container_id, needle, deadline_s=30) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        logs = docker(env_docker, "logs", container_id, check=False)
        text = logs.stdout + logs.stderr
        if needle in text:
            return text
        if docker(env_docker, "inspect", "-f", "{{.State.Running}}", container_id, check=False).stdout.strip() == "false":
            pytest.fail(f"the container exited before logging {needle!r}:\n{text}")
        time.sleep(0.3)
    pytest.fail(f"no {needle!r} within {deadline_s} s")


def test_every_rendered_container_runs_in_the_image(repo, docker_env, image, tmp_path):
    if os.geteuid() != 0:
        not_run("the chart's init container and the Secret volume need root")
    objects, hooks = render_chart(repo, {
        "image": image,
        "verifier": {"enabled": True, "policy": VERIFIER_POLICY},
    })
    containers = list(every_container(objects, hooks))
    names = sorted(f"{where}:{c['name']}" for where, _, c, _ in containers)
    assert names == ["DaemonSet/las:las", "DaemonSet/las:prepare-state", "Deployment/las-verifier:verifier",
                     "Pod/las-test:platform-id"], names
    for where, _, c, _ in containers:
        assert c["image"] == image, f"{where}:{c['name']} runs {c['image']}"

    def find(name):
        return next((spec, c) for _, spec, c, _ in containers if c["name"] == name)

    started = []
    try:
        # The init container: as root with three capabilities; prepares the state directory.
        spec, c = find("prepare-state")
        proc = run_container(docker_env, image, objects, spec, c, tmp_path)
        assert proc.returncode == 0, f"prepare-state exited {proc.returncode}: {proc.stderr}"

        # The LAS, on [::]:18766 of its own network namespace (no network: loopback only).
        spec, c = find("las")
        proc = run_container(docker_env, image, objects, spec, c, tmp_path, detach=True, extra=["--network", "none"])
        assert proc.returncode == 0, proc.stderr
        las = proc.stdout.strip()
        started.append(las)
        line = wait_for_key_line(docker_env, las)
        platform_id = line.split()[7]

        # The helm test hook, in the LAS's network namespace, where status.hostIP:18766 is the LAS.
        spec, c = find("platform-id")
        proc = run_container(docker_env, image, objects, spec, c, tmp_path / "hook", extra=["--network", f"container:{las}"])
        assert proc.returncode == 0, f"the helm test hook failed ({proc.returncode}): {proc.stdout}{proc.stderr}"
        assert platform_id.upper() in proc.stdout.upper(), proc.stdout

        # The verification service, as rendered: policy, imported keys, [::]:18767.
        spec, c = find("verifier")
        proc = run_container(docker_env, image, objects, spec, c, tmp_path / "verifier", detach=True,
                             extra=["--network", "none"])
        assert proc.returncode == 0, proc.stderr
        verifier = proc.stdout.strip()
        started.append(verifier)
        logs = wait_for_log(docker_env, verifier, "listening on http://[::]:18767")
        time.sleep(1)
        running = docker(docker_env, "inspect", "-f", "{{.State.Running}}", verifier).stdout.strip()
        assert running == "true", f"the verifier stopped after it started:\n{logs}"

        # The same container again, on a loopback port of this host, answers its probes and
        # serves the JWKS made from the key Secret the chart rendered.
        port = free_loopback_port()
        renamed = copy_with_env(c, "LAS_VERIFIER_LISTEN", f"127.0.0.1:{port}")
        proc = run_container(docker_env, image, objects, spec, renamed, tmp_path / "verifier-probe", detach=True,
                             extra=["--network", "host"])
        assert proc.returncode == 0, proc.stderr
        started.append(proc.stdout.strip())
        wait_for_log(docker_env, started[-1], f"listening on http://127.0.0.1:{port}")
        for path in ("/healthz", "/readyz", "/.well-known/jwks.json"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                assert resp.status == 200, path
                body = resp.read()
        assert json.loads(body)["keys"][0]["crv"] == "P-256"
    finally:
        for container_id in started:
            docker(docker_env, "rm", "--force", container_id, check=False)
    # They all ran; and none leaves its program to the image's entrypoint, which is no contract.
    for where, _, c, _ in containers:
        assert c.get("command"), f"{where}:{c['name']} names no command"


def copy_with_env(container: dict, name: str, value: str) -> dict:
    out = json.loads(json.dumps(container))
    out["env"] = [e if e["name"] != name else {"name": name, "value": value} for e in out["env"]]
    return out


def test_hardware_rendering_runs_las_from_the_las_image(repo, docker_env, image, tmp_path):
    """In mode hw `image` is the Gramine LAS, which cannot be built here (no base image) nor run
    without SGX; the verifier and the hook must come from this project's image, and their
    programs must answer in it."""
    gramine = "registry.example.com/las-gramine:1"
    objects, hooks = render_chart(repo, {
        "mode": "hw", "useSGXDevPlugin": "intel", "image": gramine,
        "verifier": {"enabled": True, "policy": VERIFIER_POLICY, "image": image},
        "tests": {"image": image},
    })
    ran = []
    for where, spec, c, _ in every_container(objects, hooks):
        assert c.get("command"), f"{where}:{c['name']} names no command"
        if c["image"] == gramine:
            assert c["command"] == ["gramine-sgx", "las"] and c.get("workingDir") == "/las"
            continue
        assert c["image"] == image
        argv = kubernetes_argv(docker_env, image, c)
        # The program and its subcommand, with --help: a real start needs SGX nodes.
        subcommand = [a for a in argv[1:3] if not a.startswith("-")]
        proc = run_container(docker_env, image, objects, spec, c, tmp_path / c["name"], extra=["--network", "none"],
                             argv=[argv[0], *subcommand, "--help"])
        assert proc.returncode == 0, f"{where}:{c['name']}: {argv[0]} {subcommand} --help: {proc.stderr}"
        assert "Usage" in proc.stdout
        ran.append(c["name"])
    assert sorted(ran) == ["platform-id", "verifier"]


def test_package_chart_prints_the_image_digest(repo, docker_env, image, tmp_path):
    # Built, not pushed: no registry digest yet, so the local ID and what to do.
    image_id = docker(docker_env, "image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    proc = run([repo / "scripts" / "package-chart", "--image", image, tmp_path / "repo"], env=docker_env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "repo" / "index.yaml").exists()
    [line] = [line for line in proc.stdout.splitlines() if line.startswith("image digest:")]
    assert image_id in line and "not pushed" in line and "@sha256:" in line, line
    # An image that is not there fails before anything is packaged.
    missing = run([repo / "scripts" / "package-chart", "--image", "las-test:missing", tmp_path / "none"], env=docker_env, timeout=60)
    assert missing.returncode == 1 and "las-test:missing" in missing.stderr
    assert not (tmp_path / "none").exists()
