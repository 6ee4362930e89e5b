"""The operator path, as an operator walks it: render the chart, run what NOTES print.

Real parts: the chart rendered by the real Helm library, the real `las` binary (daemons on
loopback and the `las platform-ids` client), the real `kubectl` for the NOTES' log loop, and a
stand-in Kubernetes API server (below) that serves EXACTLY the pods the rendered DaemonSet
would create: their labels are the rendered pod template's, a pod list answers only the
labelSelectors that match them, the pod proxy forwards to a real LAS, and a pod's log is that
LAS's real log. Also here: the API server's rules kubernetes-validate does not check, chart
upgrades that must not restart pods, IPv6, and the chart repository of scripts/package-chart.
"""
from __future__ import annotations

import contextlib
import copy
import http.server
import json
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
import tomllib
import urllib.parse
import urllib.request

import helm_python as helm
import jinja2
import kubernetes_validate
import pytest
import yaml

from conftest import not_run
from test_chart import CASES, KUBE_VERSIONS, Rendered

LOG_FORMATS = ("text", "json")


# --- real LAS daemons -----------------------------------------------------------------------


def free_port(family=socket.AF_INET, host="127.0.0.1") -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Las:
    """`las serve` in simulation mode on loopback, with its stderr log in a file."""

    def __init__(self, las_bin, tmp: pathlib.Path, listen: str, log_format="text"):
        self.log_path = tmp / f"las-{time.monotonic_ns()}.log"
        state = tmp / f"state-{time.monotonic_ns()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAS_")}
        self.proc = subprocess.Popen(
            [las_bin, "serve", "--mode", "sim", "--listen", listen, "--state-dir", str(state), "--log-format", log_format],
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("wb"),
            env=env,
        )
        m = re.match(r"^\[?([^\]]*)\]?:(\d+)$", listen)
        host = m.group(1)
        self.port = int(m.group(2))
        self.host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.platform_id = self._wait()

    def url(self, path: str, host: str | None = None) -> str:
        h = host or self.host
        h = f"[{h}]" if ":" in h else h
        return f"http://{h}:{self.port}{path}"

    def _wait(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"las serve exited: {self.log()}")
            try:
                with urllib.request.urlopen(self.url("/v1/platform"), timeout=2) as r:
                    return json.load(r)["platform_id"]
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"las serve did not answer within 20 s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_las(las_bin, tmp_path):
    started = []

    def _start(listen=None, log_format="text") -> Las:
        las = Las(las_bin, tmp_path, listen or f"127.0.0.1:{free_port()}", log_format)
        started.append(las)
        return las

    yield _start
    for las in started:
        las.stop()


# --- the stand-in API server ---------------------------------------------------------------


def selector_matches(selector: str, labels: dict) -> bool:
    """Equality-based label selectors as the API server reads them."""
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = re.split("==?", term, maxsplit=1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term.strip() not in labels:
            return False
    return True


class FakeApiServer:
    """Pods of one rendered DaemonSet in one namespace, each backed by a real LAS."""

    def __init__(self, namespace: str, daemonset: dict, backends: list[Las]):
        self.namespace = namespace
        self.seen: list[str] = []
        template = daemonset["spec"]["template"]
        self.pods = {}
        for i, las in enumerate(backends):
            name = f"{daemonset['metadata']['name']}-{'abcde'[i]}{i}x7k"
            spec = copy.deepcopy(template["spec"])
            spec["nodeName"] = f"node-{i + 1}"
            # The pod's LAS port: the one the real LAS behind it listens on.
            for c in spec["containers"]:
                for p in c.get("ports", []):
                    if p.get("name") == "las":
                        p["containerPort"] = las.port
            self.pods[name] = (
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "namespace": namespace, "labels": copy.deepcopy(template["metadata"]["labels"])},
                    "spec": spec,
                    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
                },
                las,
            )
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, status, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                server.seen.append(self.path)
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                status, body, ctype = server.answer(url.path, query)
                self.send(status, body, ctype)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, query: dict):
        js = "application/json"
        not_found = (404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": f"{path} not found"}, js)
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.addr}]}, js
        if path == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}, js
        if path == "/api/v1":
            return 200, {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": [
                    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["get", "list"], "shortNames": ["po"]},
                    {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
                    {"name": "pods/proxy", "singularName": "", "namespaced": True, "kind": "PodProxyOptions", "verbs": ["get"]},
                ],
            }, js
        m = re.match(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+)(?:/(log|proxy)(/.*)?)?)?$", path)
        if not m:
            return not_found
        ns, pod, sub, rest = m.groups()
        pods = self.pods if ns == self.namespace else {}
        if pod is None:
            items = [p for p, _ in pods.values() if selector_matches(query.get("labelSelector", ""), p["metadata"]["labels"])]
            return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}, js
        name, _, port = pod.partition(":")
        if name not in pods:
            return not_found
        obj, las = pods[name]
        if sub is None:
            return 200, obj, js
        if sub == "log":
            return 200, las.log().encode(), "text/plain"
        if port != str(las.port):
            return 503, {"kind": "Status", "status": "Failure", "code": 503, "message": "no such port"}, js
        with urllib.request.urlopen(las.url(rest or "/"), timeout=5) as r:
            return r.status, r.read(), r.headers.get("Content-Type", js)

    def kubeconfig(self, tmp: pathlib.Path, namespace: str | None = None) -> pathlib.Path:
        path = tmp / f"kubeconfig-{time.monotonic_ns()}"
        context = {"cluster": "fake", "user": "nobody"}
        if namespace:
            context["namespace"] = namespace
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://{self.addr}"}}],
            "users": [{"name": "nobody", "user": {}}],
            "contexts": [{"name": "fake", "context": context}],
            "current-context": "fake",
        }))
        return path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def chart():
    with helm.Chart.load(pathlib.Path(__file__).resolve().parents[2] / "charts" / "las") as loaded:
        yield loaded


def render(chart, values=None, name="las", namespace="default") -> Rendered:
    return Rendered(chart.render(copy.deepcopy(values or {}), name=name, namespace=namespace))


def notes_platform_ids_command(notes: str, flag: str | None = None) -> list[str]:
    """The `las platform-ids` line of NOTES: the plain one, or the one with `flag`
    (`--qe-id`, `--check`)."""
    lines = [l.strip() for l in notes.splitlines() if l.strip().startswith("las platform-ids")]
    [line] = [l for l in lines if (flag in l.split() if flag else not any(x in l for x in ("--qe-id", "--check")))]
    return shlex.split(line)


def notes_log_loop(notes: str) -> str:
    lines = notes.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip().startswith("for pod in"))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "done")
    return "\n".join(lines[start : end + 1])


def manifest_log_format(repo) -> str:
    """The log format the Gramine manifest (hardware mode) fixes in its measured argv."""
    text = (repo / "gramine" / "las.manifest.template").read_text()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)

    class Gramine:
        libos = "/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so"

        @staticmethod
        def runtimedir():
            return "/usr/lib/x86_64-linux-gnu/gramine/runtime/glibc"

    m = tomllib.loads(env.from_string(text).render(gramine=Gramine, las_dir="/las", arch_libdir="/lib/x86_64-linux-gnu",
                                                   listen="[::]:18766", log_level="error", debug="false"))
    argv = m["loader"]["argv"]
    return argv[argv.index("--log-format") + 1]


# --- 1. platform-ids for any release name and nameOverride, as NOTES print it --------------


@pytest.mark.parametrize(
    "release, values",
    [("las", {}), ("prod", {}), ("prod", {"nameOverride": "attest"}), ("my-las", {"fullnameOverride": "attestation"})],
    ids=["las", "prod", "prod-nameOverride", "fullnameOverride"],
)
def test_notes_platform_ids_command_finds_the_release(chart, start_las, las_bin, tmp_path, release, values):
    rendered = render(chart, values, name=release, namespace="sgx")
    backends = [start_las(), start_las()]
    api = FakeApiServer("sgx", rendered.one("DaemonSet"), backends)
    try:
        argv = notes_platform_ids_command(rendered.notes)
        assert argv[:2] == ["las", "platform-ids"]
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(api.kubeconfig(tmp_path))}
        out = subprocess.run([las_bin, *argv[1:]], capture_output=True, text=True, env=env, timeout=60)
        ids = sorted(b.platform_id for b in backends)
        assert out.returncode == 0, out.stderr
        assert out.stdout == f"platforms: [ {', '.join(ids)}]\n", out.stderr
        # The seed's `INSTANCE=... las platform-ids` with the context's namespace: same answer.
        env2 = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(api.kubeconfig(tmp_path, "sgx")), "INSTANCE": release}
        out = subprocess.run([las_bin, "platform-ids"], capture_output=True, text=True, env=env2, timeout=60)
        assert out.stdout == f"platforms: [ {', '.join(ids)}]\n", out.stderr
    finally:
        api.close()


def test_notes_qe_id_and_check_commands_work_against_the_release(chart, start_las, las_bin, tmp_path):
    """The QE-ID line of NOTES prints both nodes' QE IDs (as /v1/platform serves them), and
    the --check line exits 0 for a policy listing them and 1 for one that lists only one."""
    rendered = render(chart, {}, name="las", namespace="sgx")
    backends = [start_las(), start_las()]
    api = FakeApiServer("sgx", rendered.one("DaemonSet"), backends)
    try:
        qes = []
        for b in backends:
            with urllib.request.urlopen(b.url("/v1/platform"), timeout=5) as r:
                qes.append(json.load(r)["tcb_state"]["qe_id"])
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(api.kubeconfig(tmp_path))}
        argv = notes_platform_ids_command(rendered.notes, "--qe-id")
        out = subprocess.run([las_bin, *argv[1:]], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        want = ", ".join(f"INTEL_QE_ID:{q}" for q in sorted(qes))
        assert out.stdout == f"platforms: [ {want}]\n", out.stderr
        argv = notes_platform_ids_command(rendered.notes, "--check")
        assert argv[-1] == "policy.yaml"
        for listed, code in ((qes, 0), (qes[:1], 1)):
            entries = ", ".join(f"INTEL_QE_ID:{q}" for q in listed)
            (tmp_path / "policy.yaml").write_text(
                "security:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n"
                f"    attestation: {{mrenclave: [{'aa' * 32}]}}\n    platforms: [{entries}]\n")
            out = subprocess.run([las_bin, *argv[1:-1], str(tmp_path / "policy.yaml")],
                                 capture_output=True, text=True, env=env, timeout=60)
            assert out.returncode == code, out.stdout + out.stderr
    finally:
        api.close()


def kubectl_or_not_run() -> str:
    path = shutil.which("kubectl")
    if path is None:
        # The test command installs it (scripts/test); under CI a missing kubectl fails.
        not_run("needs kubectl (Debian: kubernetes-client) to run the NOTES' log loop")
    return path


# --- 2. the seed's log pipeline in every mode the chart deploys ----------------------------


@pytest.mark.parametrize(
    "values",
    [{}, {"mode": "sim"}, {"logFormat": "json"}, {"mode": "hw", "useSGXDevPlugin": "intel"},
     {"mode": "hw", "useSGXDevPlugin": "privileged", "logFormat": "json"}],
    ids=["auto-text", "sim-text", "auto-json", "hw-intel", "hw-privileged-json-ignored"],
)
def test_notes_log_loop_prints_the_ids_in_every_mode(chart, repo, start_las, tmp_path, values):
    kubectl_or_not_run()
    rendered = render(chart, values, name="prod", namespace="sgx")
    # The format the LAS of that mode logs in: the env the chart sets, or in hardware mode the
    # one the measured manifest fixes (LAS_* variables do not reach the enclave).
    if values.get("mode") == "hw":
        fmt = manifest_log_format(repo)
    else:
        fmt = rendered.env()["LAS_LOG_FORMAT"]
    assert fmt in LOG_FORMATS
    backends = [start_las(log_format=fmt), start_las(log_format=fmt)]
    api = FakeApiServer("sgx", rendered.one("DaemonSet"), backends)
    try:
        loop = notes_log_loop(rendered.notes)
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(api.kubeconfig(tmp_path))}
        out = subprocess.run(["bash", "-c", f"set -o pipefail\n{loop}"], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        assert sorted(out.stdout.split()) == sorted(b.platform_id for b in backends), (fmt, loop, out.stdout, out.stderr)
        if fmt == "json":
            # Both consumers: every log line is still JSON.
            for line in backends[0].log().splitlines():
                json.loads(line)
    finally:
        api.close()


def test_hardware_manifest_logs_text_so_the_seed_pipeline_works(repo):
    assert manifest_log_format(repo) == "text"


# --- 3. auto never simulates silently where SGX is present ---------------------------------


@pytest.mark.parametrize("plugin", ["intel", "scone", "enabled", "privileged"])
def test_auto_with_sgx_devices_is_refused_naming_both_fixes(chart, plugin):
    values = {"useSGXDevPlugin": plugin}
    with pytest.raises(helm.HelmError) as info:
        chart.render(values, name="las", namespace="default")
    message = str(info.value)
    assert "mode=hw" in message and "mode=sim" in message and "Gramine" in message, message


def test_notes_never_hide_simulation(chart):
    for values in [{}, {"mode": "sim"}, {"mode": "sim", "useSGXDevPlugin": "intel"}]:
        assert "simulates SGX" in render(chart, values).notes, values
    assert "simulates SGX" not in render(chart, {"mode": "hw", "useSGXDevPlugin": "intel"}).notes


# --- 4. the API server's rules that kubernetes-validate does not check ---------------------
# (kubernetes-validate checks the OpenAPI schema only; the API server's validation code adds
# cross-field rules, which the chart must keep as well.)


def _containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("initContainers", []) + pod_spec.get("containers", [])


def api_server_rule_violations(obj: dict) -> list[str]:
    """What the JSON schemas cannot express. API-server validation (pkg/apis/core/validation,
    pkg/apis/apps/validation): privileged beside allowPrivilegeEscalation=false (and
    CAP_SYS_ADMIN beside it), the DaemonSet selector matching the template labels, OnDelete
    without rollingUpdate, unique volume/container/port names, every volumeMount naming a
    volume, hostPort == containerPort under hostNetwork. Beyond the API server, what fails
    only at run time: a probe naming a port the container lacks, a hostNetwork pod without
    ClusterFirstWithHostNet (it would lose cluster DNS)."""
    problems = []
    if obj["kind"] == "DaemonSet":
        template = obj["spec"]["template"]
        sel = obj["spec"]["selector"]["matchLabels"]
        if not sel.items() <= template["metadata"]["labels"].items():
            problems.append("selector does not match template labels")
        strategy = obj["spec"].get("updateStrategy", {})
        if strategy.get("type") == "OnDelete" and "rollingUpdate" in strategy:
            problems.append("rollingUpdate with OnDelete")
        pod = template["spec"]
    elif obj["kind"] == "Pod":
        pod = obj["spec"]
    else:
        return problems
    volumes = [v["name"] for v in pod.get("volumes", [])]
    if len(volumes) != len(set(volumes)):
        problems.append(f"duplicate volume names {volumes}")
    names = [c["name"] for c in _containers(pod)]
    if len(names) != len(set(names)):
        problems.append(f"duplicate container names {names}")
    host_network = pod.get("hostNetwork", False)
    if host_network and pod.get("dnsPolicy") != "ClusterFirstWithHostNet":
        problems.append("hostNetwork with an unsuitable dnsPolicy")
    for c in _containers(pod):
        ctx = c.get("securityContext", {})
        if ctx.get("privileged") and ctx.get("allowPrivilegeEscalation") is False:
            problems.append(f"{c['name']}: cannot set allowPrivilegeEscalation to false and privileged to true")
        if "SYS_ADMIN" in ctx.get("capabilities", {}).get("add", []) and ctx.get("allowPrivilegeEscalation") is False:
            problems.append(f"{c['name']}: cannot set allowPrivilegeEscalation to false and capabilities.Add CAP_SYS_ADMIN")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problems.append(f"{c['name']}: volumeMount {m['name']} names no volume")
        port_names = [p["name"] for p in c.get("ports", []) if "name" in p]
        if len(port_names) != len(set(port_names)):
            problems.append(f"{c['name']}: duplicate port names")
        for p in c.get("ports", []):
            if host_network and p.get("hostPort", p["containerPort"]) != p["containerPort"]:
                problems.append(f"{c['name']}: hostNetwork needs hostPort == containerPort")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if isinstance(port, str) and port not in port_names:
                problems.append(f"{c['name']}: {probe} names port {port} the container lacks")
    return problems


def test_the_rule_checker_catches_what_it_checks():
    bad = {"kind": "Pod", "spec": {"containers": [{"name": "las", "securityContext": {"privileged": True, "allowPrivilegeEscalation": False},
                                                  "ports": [{"name": "las", "containerPort": 1, "hostPort": 2}], "volumeMounts": [{"name": "x", "mountPath": "/x"}]}],
                                   "hostNetwork": True, "dnsPolicy": "ClusterFirst"}}
    assert len(api_server_rule_violations(bad)) == 4, api_server_rule_violations(bad)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_case_keeps_the_api_server_rules(chart, case):
    rendered = render(chart, CASES[case])
    for obj in rendered.objects + rendered.hooks:
        assert not api_server_rule_violations(obj), (case, obj["kind"], api_server_rule_violations(obj))


@pytest.mark.parametrize("devices", [None, ["/dev/isgx"]])
def test_hardware_without_a_device_plugin_is_privileged_with_host_devices(chart, devices):
    values = {"mode": "hw", "useSGXDevPlugin": "privileged"}
    if devices:
        values["sgxDevices"] = devices
    rendered = render(chart, values)
    want = devices or ["/dev/sgx_enclave", "/dev/sgx_provision"]
    ctx = rendered.las["securityContext"]
    assert ctx["privileged"] is True and "allowPrivilegeEscalation" not in ctx
    mounts = {m["name"]: m["mountPath"] for m in rendered.las["volumeMounts"]}
    for dev in want:
        [vol] = [v for v in rendered.pod["volumes"] if v.get("hostPath", {}).get("path") == dev]
        assert vol["hostPath"]["type"] == "CharDevice" and mounts[vol["name"]] == dev
    # No device-plugin resources.
    assert not [k for k in rendered.las["resources"]["limits"] if "sgx" in k]
    for v in KUBE_VERSIONS:
        kubernetes_validate.validate(rendered.one("DaemonSet"), v, strict=True)


def test_set_privileged_as_scone_advises_renders_a_valid_pod(chart):
    rendered = render(chart, helm.parse_set_string("securityContext.privileged=true"))
    assert rendered.las["securityContext"]["privileged"] is True
    assert not api_server_rule_violations(rendered.one("DaemonSet"))


# --- 5. pod templates change only when pods must -------------------------------------------


def test_a_chart_only_version_bump_keeps_the_pod_template(chart, tmp_path, repo):
    bumped = tmp_path / "las"
    shutil.copytree(repo / "charts" / "las", bumped)
    meta = yaml.safe_load((bumped / "Chart.yaml").read_text())
    meta["version"] = meta["version"] + "-bump.1"
    (bumped / "Chart.yaml").write_text(yaml.safe_dump(meta))
    with helm.Chart.load(bumped) as other:
        for values in [{}, CASES["everything-else"], CASES["hw-intel-aesmd"]]:
            a, b = render(chart, values).one("DaemonSet"), render(other, values).one("DaemonSet")
            assert a["metadata"]["labels"]["helm.sh/chart"] != b["metadata"]["labels"]["helm.sh/chart"], "the bump did not take"
            assert a["spec"]["template"] == b["spec"]["template"]


# --- 6. IPv6 and dual stack ----------------------------------------------------------------


def ipv6_loopback_or_fail():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as e:
        pytest.fail(f"no IPv6 loopback on this machine ({e}): the dual-stack checks need ::1")


def test_the_chart_listen_address_serves_ipv4_and_ipv6(chart, start_las, las_bin, tmp_path):
    ipv6_loopback_or_fail()
    port = free_port(socket.AF_INET6, "::")
    rendered = render(chart, {"service": {"port": port}})
    listen = rendered.env()["LAS_LISTEN"]
    assert listen == f"[::]:{port}"
    las = start_las(listen=listen)
    for host in ("127.0.0.1", "::1"):
        with urllib.request.urlopen(las.url("/readyz", host), timeout=5) as r:
            assert r.status == 200
    # The SCONE_LAS_ADDR forms NOTES print, with an IPv4 and an IPv6 node IP, as the las
    # client parses them.
    forms = re.findall(r'value: "(\[?\$\(NODE_IP\)\]?:\d+)"', rendered.notes)
    assert forms == [f"$(NODE_IP):{port}", f"[$(NODE_IP)]:{port}"], rendered.notes
    for form, ip in zip(forms, ("127.0.0.1", "::1")):
        addr = form.replace("$(NODE_IP)", ip)
        out = subprocess.run([las_bin, "platform-ids", "--las", addr], capture_output=True, text=True, timeout=30)
        assert out.stdout == f"platforms: [ {las.platform_id}]\n", (addr, out.stderr)


def test_helm_test_hook_asks_the_las_of_its_node(chart, start_las, las_bin):
    ipv6_loopback_or_fail()
    port = free_port(socket.AF_INET6, "::")
    rendered = render(chart, {"service": {"port": port}})
    [hook] = rendered.hooks
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    labels = hook["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] != "las", "platform-ids would count the test pod"
    # No selector of the release takes the test pod for one of its own (the DaemonSet would
    # adopt it as an orphan).
    for selector in (rendered.one("DaemonSet")["spec"]["selector"]["matchLabels"], rendered.one("Service")["spec"]["selector"]):
        assert not selector.items() <= labels.items(), selector
    assert not selector_matches("app.kubernetes.io/component=las,app.kubernetes.io/instance=las", labels)
    [c] = hook["spec"]["containers"]
    assert c["image"] == rendered.las["image"]
    for v in KUBE_VERSIONS:
        kubernetes_validate.validate(hook, v, strict=True)
    las = start_las(listen=rendered.env()["LAS_LISTEN"])
    for node_ip in ("127.0.0.1", "::1"):
        args = [a.replace("$(NODE_IP)", node_ip) for a in c["args"]]
        out = subprocess.run([las_bin, *args], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and las.platform_id in out.stdout, (args, out.stderr)
    las.stop()
    out = subprocess.run([las_bin, *[a.replace("$(NODE_IP)", "127.0.0.1") for a in c["args"]]], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, "the hook passes without a LAS"


def test_hardware_mode_hook_needs_a_non_gramine_image(chart):
    hw = {"mode": "hw", "useSGXDevPlugin": "intel", "image": "registry.example.com/las-gramine:0.1.0"}
    assert render(chart, hw).hooks == []
    [hook] = render(chart, {**hw, "tests": {"image": "registry.example.com/las:0.1.0"}}).hooks
    assert hook["spec"]["containers"][0]["image"] == "registry.example.com/las:0.1.0"


def test_host_network_option(chart):
    rendered = render(chart, {"hostNetwork": True})
    assert rendered.pod["hostNetwork"] is True and rendered.pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    [port] = rendered.las["ports"]
    assert port["hostPort"] == port["containerPort"]
    assert "on the nodes' network" in rendered.notes and "$(NODE_IP)" in rendered.notes


# --- 7. defaults an SGX cluster expects ------------------------------------------------------


def test_toleration_value_true_as_scone_writes_it(chart):
    values = helm.parse_set_string("tolerations[0].key=sgx,tolerations[0].operator=Equal,tolerations[0].value=true,tolerations[0].effect=NoSchedule")
    chart.validate_schema(chart.merge_values(copy.deepcopy(values)))
    rendered = render(chart, values)
    assert rendered.pod["tolerations"] == [{"key": "sgx", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]
    for v in KUBE_VERSIONS:
        kubernetes_validate.validate(rendered.one("DaemonSet"), v, strict=True)


@pytest.mark.parametrize(
    "expr, named",
    [("tolerations[0].effect=NoScheduel", "/tolerations/0/effect"), ("tolerations[0].operator=exists", "/tolerations/0/operator"),
     ("tolerations[0].keys=sgx", "keys"), ("sgxDevices[0]=sgx_enclave", "/sgxDevices/0")],
)
def test_bad_tolerations_and_devices_fail_naming_the_value(chart, expr, named):
    with pytest.raises(helm.HelmError) as info:
        chart.render(helm.parse_set_string(expr), name="las", namespace="default")
    assert named in str(info.value), str(info.value)


def test_sgx_toleration_linux_nodes_pod_monitor_and_chart_metadata(chart, repo):
    pod = render(chart, {"sgxToleration": {"enabled": True}}).pod
    assert pod["tolerations"] == [{"key": "sgx.intel.com/sgx", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    rendered = render(chart, {"metrics": {"podMonitor": {"enabled": True}}})
    monitor = rendered.one("PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= rendered.one("DaemonSet")["spec"]["template"]["metadata"]["labels"].items()
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "las"
    meta = yaml.safe_load((repo / "charts" / "las" / "Chart.yaml").read_text())
    cargo = tomllib.loads((repo / "Cargo.toml").read_text())["workspace"]["package"]
    assert meta["home"] == cargo["repository"] and meta["sources"] == [cargo["repository"]]
    assert meta["maintainers"] and all(m["name"] for m in meta["maintainers"])


# --- 8. a chart repository -----------------------------------------------------------------


@contextlib.contextmanager
def static_server(directory: pathlib.Path):
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_package_chart_makes_a_repository_helm_installs_from(repo, tmp_path):
    out = tmp_path / "repo"
    subprocess.run([repo / "scripts" / "package-chart", out], check=True, capture_output=True, timeout=300)
    meta = yaml.safe_load((repo / "charts" / "las" / "Chart.yaml").read_text())
    archive = out / f"las-{meta['version']}.tgz"
    assert archive.exists()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "none", "user": {"token": "unused"}}],
        "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
        "current-context": "none",
    }))
    with static_server(out) as url:
        # What `helm repo add` reads and checks.
        index = helm.repo_index(url)
        [entry] = index["entries"]["las"]
        assert entry["version"] == meta["version"] and entry["appVersion"] == meta["appVersion"]
        assert entry["digest"].removeprefix("sha256:") == helm.digest(archive).removeprefix("sha256:")
        # `helm install las REPO/las --dry-run`, from the served repository.
        with helm.Config(kubeconfig_path=kubeconfig, namespace="sgx") as cfg:
            release = cfg.install("las", "prod", {"image": "registry.example.com/las:0.1.0"}, dry_run="client", chart_repo_url=url)
            objects = [d for d in yaml.safe_load_all(release["manifest"]) if d]
            assert sorted(o["kind"] for o in objects) == ["DaemonSet", "Service"]
            assert release["chart_version"] == meta["version"]
            assert "las platform-ids --namespace sgx --instance prod" in release["notes"]


# --- 9. CLI conventions (las) ----------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(las_bin, shell, tmp_path):
    out = subprocess.run([las_bin, "completion", shell], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "platform-ids" in out.stdout and "--instance" in out.stdout
    if shell == "bash":
        script = tmp_path / "las.bash"
        script.write_text(out.stdout)
        # Loads in bash and completes a subcommand.
        probe = f'source {script}; COMP_WORDS=(las platf); COMP_CWORD=1; _las las platf las; echo "${{COMPREPLY[@]}}"'
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
        assert "platform-ids" in done.stdout, done.stderr


def test_man_pages(las_bin, tmp_path):
    out = subprocess.run([las_bin, "man", tmp_path / "man"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    pages = sorted(p.name for p in (tmp_path / "man").iterdir())
    for want in ["las.1", "las-serve.1", "las-platform-ids.1", "las-policy-set-platforms.1", "las-completion.1"]:
        assert want in pages, pages
    page = (tmp_path / "man" / "las-platform-ids.1").read_text()
    assert page.startswith(".ie") or ".TH" in page
    assert "instance" in page
    if shutil.which("man"):
        shown = subprocess.run(["man", "-l", tmp_path / "man" / "las.1"], capture_output=True, text=True, env={**os.environ, "MANPAGER": "cat", "PAGER": "cat"}, timeout=30)
        assert "platform-ids" in shown.stdout


def test_version_names_commit_and_features(las_bin, repo):
    out = subprocess.run([las_bin, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    version = tomllib.loads((repo / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    m = re.fullmatch(rf"las {re.escape(version)} \(commit (\S+); features: ([^)]+\)?)\)\n", out.stdout)
    assert m, out.stdout
    if (repo / ".git").exists():
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
        assert head[:7] in m.group(1) or m.group(1) != "unknown", out.stdout


def test_duration_timeouts_and_old_flags(las_bin):
    for flag, value in [("--timeout", "1s"), ("--timeout", "1500ms"), ("--timeout-secs", "1")]:
        out = subprocess.run([las_bin, "platform-ids", "--las", "127.0.0.1:9", flag, value], capture_output=True, text=True, timeout=30)
        assert out.returncode == 1, (flag, value, out.stderr)
    out = subprocess.run([las_bin, "quote", "--report-data", "00", "--timeout", "soon"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--timeout" in out.stderr and "duration" in out.stderr, out.stderr


def test_error_messages_name_the_os_error_once(las_bin, tmp_path):
    missing = tmp_path / "no-such-policy.yaml"
    out = subprocess.run([las_bin, "verify", "--policy", missing, "--quote", missing], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.count("No such file or directory") == 1, out.stderr


def test_a_missing_kubeconfig_is_named_once(las_bin, tmp_path):
    missing = tmp_path / "no-such-kubeconfig"
    out = subprocess.run([las_bin, "platform-ids", "--kubeconfig", missing], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.count(str(missing)) == 1 and out.stderr.count("No such file or directory") == 1, out.stderr
