"""The chart's verification service (`verifier.enabled`), rendered by the real Helm library:
strict Kubernetes validation, what the objects say, the values schema and the template's
own checks, and that the key Secret the chart generates really starts `las verifier serve`."""
from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

KUBE_VERSIONS = ["1.29.0", "1.37.0"]
POLICY = 'version: "0.3"\nname: demo\nservices:\n  - name: app\n    attestation:\n      mrenclave: ["' + "ab" * 32 + '"]\n'
ON = {"verifier": {"enabled": True, "replicas": 2, "port": 18767, "policy": POLICY}}


@pytest.fixture(scope="module")
def chart(repo):
    with helm.Chart.load(repo / "charts" / "las") as loaded:
        yield loaded


def render(chart, values, name="las"):
    out = chart.render(copy.deepcopy(values), name=name, namespace="default")
    docs = []
    for path, text in out.items():
        if path.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def one(docs, kind, suffix="verifier"):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind} *{suffix}: {[d['metadata']['name'] for d in docs]}"
    return found[0]


def error(chart, values) -> str:
    with pytest.raises(helm.HelmError) as info:
        chart.render(values, name="las", namespace="default")
    return str(info.value)


def deep(values, **verifier):
    v = copy.deepcopy(ON)
    v["verifier"].update(verifier)
    return v


def test_off_by_default(chart):
    docs = render(chart, {})
    assert not [d for d in docs if "verifier" in d["metadata"]["name"]]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", [
    ON,
    deep(ON, existingPolicyConfigMap="my-policy", existingKeySecret="my-keys", policy=""),
    deep(ON, replicas=3, minAvailable=2, serviceType="NodePort", port=19000),
])
def test_every_object_passes_strict_validation(chart, values, kube_version):
    for d in render(chart, values):
        kubernetes_validate.validate(d, kube_version, strict=True)


def test_deployment_pdb_service_configmap_and_secret(chart):
    docs = render(chart, ON)
    dep = one(docs, "Deployment")
    assert dep["metadata"]["name"] == "las-verifier"
    assert dep["spec"]["replicas"] == 2
    sel = dep["spec"]["selector"]["matchLabels"]
    assert sel == {"app.kubernetes.io/name": "las-verifier", "app.kubernetes.io/instance": "las"}
    pod = dep["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == 10001
    c = pod["containers"][0]
    assert c["command"] == ["/usr/local/bin/las"] and c["args"] == ["verifier", "serve"]
    env = {e["name"]: e["value"] for e in c["env"]}
    # Every address, IPv4 and IPv6 alike: IPv6-only clusters probe and route over IPv6.
    assert env["LAS_VERIFIER_LISTEN"] == "[::]:18767"
    assert env["LAS_VERIFIER_IMPORT_KEYS_FROM"] == "/etc/las-verifier/keys"
    assert env["LAS_VERIFIER_POLICY"] == "/etc/las-verifier/policy/policy.yaml"
    # A folder inside the (root's, world-writable) emptyDir: the service creates it 0700.
    assert env["LAS_VERIFIER_STATE_DIR"] == "/var/lib/las-verifier/state"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["resources"]["limits"]["memory"] == "128Mi"
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert "subPath" not in mounts["policy"], "a subPath mount never sees ConfigMap updates"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["policy"]["configMap"]["name"] == "las-verifier-policy"
    assert vols["keys"]["secret"]["secretName"] == "las-verifier-keys"
    assert vols["keys"]["secret"]["defaultMode"] == 0o440
    assert vols["state"]["emptyDir"]["medium"] == "Memory"

    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == sel
    svc = one(docs, "Service")
    assert svc["spec"]["selector"] == sel
    assert svc["spec"]["ports"][0]["port"] == 18767
    assert one(docs, "ConfigMap", "policy")["data"]["policy.yaml"] == POLICY
    secret = one(docs, "Secret", "keys")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # The LAS DaemonSet's selector does not select the verifier pods.
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    assert ds["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "las"


def test_existing_configmap_and_secret_are_used_not_created(chart):
    docs = render(chart, deep(ON, existingPolicyConfigMap="my-policy", existingKeySecret="my-keys", policy=""))
    assert not [d for d in docs if d["kind"] in ("ConfigMap", "Secret")]
    vols = {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert vols["policy"]["configMap"]["name"] == "my-policy"
    assert vols["keys"]["secret"]["secretName"] == "my-keys"


@pytest.mark.parametrize("values, named", [
    (deep(ON, policy=""), "verifier.policy"),
    (deep(ON, replicas=1, minAvailable=2), "verifier.minAvailable"),
    # A PodDisruptionBudget that would block every drain.
    (deep(ON, replicas=2, minAvailable=2), "verifier.minAvailable"),
    (deep(ON, replicas=3, minAvailable=3), "verifier.minAvailable"),
    (deep(ON, maxUnavailable=0), "maxUnavailable"),
    # The verifier's own security context is a typed Kubernetes SecurityContext.
    (deep(ON, securityContext={"readOnlyRootFilesytem": True}), "readOnlyRootFilesytem"),
    (deep(ON, podSecurityContext={"runAsUSer": 1}), "runAsUSer"),
    (deep(ON, topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "x", "whenUnsatisfiable": "Never"}]), "whenUnsatisfiable"),
    (deep(ON, color="blue"), "color"),
    (deep(ON, replicas=0), "replicas"),
    (deep(ON, port="http"), "port"),
    (deep(ON, evidenceCacheSecs=600), "evidenceCacheSecs"),
    (deep(ON, existingKeySecret="Not_A_Name"), "existingKeySecret"),
])
def test_bad_values_fail_naming_the_value(chart, values, named):
    assert named in error(chart, values)


def test_the_generated_key_secret_starts_the_service(chart, las_bin, tmp_path):
    """The Secret as the kubelet mounts it (symlinks into ..data, mode 0440) feeds
    --import-keys-from; the service starts and publishes a P-256 key."""
    secret = one(render(chart, ON), "Secret", "keys")
    mount = tmp_path / "keys"
    data = mount / "..2026_01_01"
    data.mkdir(parents=True)
    for k, v in secret["data"].items():
        (data / k).write_bytes(base64.b64decode(v))
        os.chmod(data / k, 0o440)
    os.symlink("..2026_01_01", mount / "..data")
    for k in secret["data"]:
        os.symlink(f"..data/{k}", mount / k)
    assert re.fullmatch(r"[0-9a-f]{64}", (mount / "nonce-key").read_text())
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [las_bin, "verifier", "serve", "--listen", "127.0.0.1:0", "--policy", str(policy),
         "--state-dir", str(state), "--import-keys-from", str(mount)],
        stderr=subprocess.PIPE, text=True)
    try:
        addr = None
        deadline = time.time() + 20
        while time.time() < deadline and addr is None:
            line = proc.stderr.readline()
            m = re.search(r"listening on http://(\S+)", line)
            addr = m and m.group(1)
        assert addr, "las verifier serve did not start"
        with urllib.request.urlopen(f"http://{addr}/.well-known/jwks.json", timeout=10) as r:
            keys = json.load(r)["keys"]
        assert [(k["kty"], k["crv"], k["alg"]) for k in keys] == [("EC", "P-256", "ES256")]
        assert oct(os.stat(state / "ear-signing-key.pem").st_mode & 0o777) == "0o600"
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def test_bad_values_fail_in_hardware_mode(chart):
    # The Gramine image runs only the enclave LAS: never the verifier's image.
    hw = {"mode": "hw", "useSGXDevPlugin": "intel", "image": "reg/las-gramine:1"}
    assert "verifier.image" in error(chart, {**hw, **ON})
    assert "verifier.image" in error(chart, {**hw, **deep(ON, image="reg/las-gramine:1")})
    docs = render(chart, {**hw, **deep(ON, image="reg/las:1")})
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/las:1"


def test_the_verifier_stands_on_its_own(chart):
    # The LAS's securityContext may be privileged (SGX devices without a plugin); the verifier's
    # never follows it.
    docs = render(chart, {**ON, "securityContext": {"privileged": True}, "priorityClassName": "x",
                          "podSecurityContext": {"runAsUser": 0, "runAsNonRoot": False}})
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    sc = pod["containers"][0]["securityContext"]
    assert sc == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "privileged": False,
                  "capabilities": {"drop": ["ALL"]}}
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert "priorityClassName" not in pod
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    labels = one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert pod["topologySpreadConstraints"] == [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                 "whenUnsatisfiable": "ScheduleAnyway",
                                                 "labelSelector": {"matchLabels": labels}}]
    for v in KUBE_VERSIONS:
        for d in docs:
            kubernetes_validate.validate(d, v, strict=True)
    own = render(chart, deep(ON, priorityClassName="verifier-high", tolerations=[{"key": "k", "operator": "Equal", "value": True, "effect": "NoSchedule"}],
                             affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                                 {"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}]}}))
    pod = one(own, "Deployment")["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "verifier-high"
    assert pod["tolerations"] == [{"key": "k", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]
    assert pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 1
    for d in own:
        kubernetes_validate.validate(d, "1.37.0", strict=True)


def test_pod_template_survives_a_chart_only_bump(chart):
    meta = one(render(chart, ON), "Deployment")["spec"]["template"]["metadata"]
    assert meta["labels"] == {"app.kubernetes.io/name": "las-verifier", "app.kubernetes.io/instance": "las",
                              "app.kubernetes.io/component": "verifier", "app.kubernetes.io/managed-by": "Helm"}
    assert not [v for v in meta["annotations"].values() if chart.metadata["version"] in v]


@pytest.mark.parametrize("verifier, pdb", [
    ({"replicas": 1}, None),
    ({"replicas": 2}, {"minAvailable": 1}),
    ({"replicas": 3, "minAvailable": 2}, {"minAvailable": 2}),
    ({"replicas": 1, "maxUnavailable": 1}, {"maxUnavailable": 1}),
    ({"replicas": 4, "maxUnavailable": 2}, {"maxUnavailable": 2}),
])
def test_a_pdb_never_blocks_every_drain(chart, verifier, pdb):
    docs = render(chart, deep(ON, **verifier))
    found = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    if pdb is None:
        assert not found
        return
    [budget] = found
    spec = {k: v for k, v in budget["spec"].items() if k != "selector"}
    assert spec == pdb
    replicas = verifier["replicas"]
    # At least one pod can always be evicted.
    assert spec.get("maxUnavailable", 0) >= 1 or spec["minAvailable"] < replicas
    for d in docs:
        kubernetes_validate.validate(d, "1.37.0", strict=True)


def test_notes_show_how_to_reach_the_service_and_warn_about_generated_keys(chart):
    notes = next(t for p, t in chart.render(copy.deepcopy(ON), name="las", namespace="apps").items() if p.endswith("NOTES.txt"))
    assert "http://las-verifier.apps.svc:18767" in notes
    assert "/.well-known/jwks.json" in notes
    assert "generated by this render" in notes and "verifier.existingKeySecret" in notes
    pinned = next(t for p, t in chart.render(deep(ON, existingKeySecret="my-keys"), name="las", namespace="apps").items()
                  if p.endswith("NOTES.txt"))
    assert "generated by this render" not in pinned



def test_readme_gitops_keys_start_the_service(repo, las_bin, tmp_path):
    """The key files the chart README's "Keys under GitOps" commands make (for a Secret made
    once, outside the chart) are what --import-keys-from accepts."""
    readme = (repo / "charts" / "las" / "README.md").read_text()
    section = readme.split("### Keys under GitOps", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("openssl ")]
    assert len(commands) == 2, block
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(commands)], cwd=keys, check=True, timeout=30)
    for name in ("ear-signing-key.pem", "nonce-key"):
        os.chmod(keys / name, 0o440)  # as the kubelet mounts a Secret with the chart's defaultMode
    assert re.fullmatch(r"[0-9a-f]{64}", (keys / "nonce-key").read_text())
    assert "existingKeySecret=las-verifier-keys" in block
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    proc = subprocess.Popen(
        [las_bin, "verifier", "serve", "--listen", "127.0.0.1:0", "--policy", str(policy),
         "--state-dir", str(tmp_path / "state"), "--import-keys-from", str(keys)],
        stderr=subprocess.PIPE, text=True)
    try:
        addr = None
        deadline = time.time() + 20
        while time.time() < deadline and addr is None:
            line = proc.stderr.readline()
            if not line:
                break
            m = re.search(r"listening on http://(\S+)", line)
            addr = m and m.group(1)
        assert addr, "las verifier serve did not start with the README's keys"
        with urllib.request.urlopen(f"http://{addr}/.well-known/jwks.json", timeout=10) as r:
            assert [k["crv"] for k in json.load(r)["keys"]] == ["P-256"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
