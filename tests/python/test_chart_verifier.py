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
    assert c["args"] == ["verifier", "serve"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["LAS_VERIFIER_LISTEN"] == "0.0.0.0:18767"
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
