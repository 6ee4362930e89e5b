"""The Helm chart charts/las, rendered by the real Helm library (helm-python-sdk, offline).

Every rendered object of a matrix of values must pass `kubernetes-validate --strict` for the
oldest and newest Kubernetes the chart supports, and the tests check what the objects say
(kind, selector labels, image, ports, SGX device resources, state hostPath, probes, security
context), the NOTES, the values schema's error messages, lint, and the docs.
"""
from __future__ import annotations

import copy
import os
import json
import re
import tomllib

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

KUBE_VERSIONS = ["1.29.0", "1.37.0"]
LAS_PORT = 18766
SGX_PREFIXES = ("sgx.intel.com/", "sgx.k8s.io/", "kubernetes.azure.com/")
LOG_PIPELINE = "grep 'public key' | tail -n 1 | awk '{print $8}'"

# The values matrix: each case is rendered, validated and checked for the common properties.
CASES = {
    "default": {},
    "plugin-disabled": {"useSGXDevPlugin": "disabled"},
    # With SGX devices `auto` refuses to start outside an enclave: hardware mode (or sim).
    "plugin-intel": {"mode": "hw", "useSGXDevPlugin": "intel"},
    "plugin-intel-epc": {"mode": "hw", "useSGXDevPlugin": "intel", "sgxEpcMem": 64},
    "plugin-scone": {"mode": "hw", "useSGXDevPlugin": "scone"},
    "plugin-enabled": {"mode": "hw", "useSGXDevPlugin": "enabled"},
    "plugin-azure": {"mode": "hw", "useSGXDevPlugin": "azure", "sgxEpcMem": 10},
    "plugin-intel-sim": {"mode": "sim", "useSGXDevPlugin": "intel"},
    # No device plugin: privileged, the host's device nodes (SCONE's `disabled` on hardware).
    "privileged-hw": {"mode": "hw", "useSGXDevPlugin": "privileged"},
    "privileged-hw-isgx": {"mode": "hw", "useSGXDevPlugin": "privileged", "sgxDevices": ["/dev/isgx"]},
    # SCONE's advice where no device plugin runs.
    "securitycontext-privileged": {"securityContext": {"privileged": True}},
    "hostnetwork": {"hostNetwork": True},
    "hostnetwork-custom-port": {"hostNetwork": True, "service": {"port": 18800, "hostPort": False}},
    "podmonitor": {"metrics": {"podMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
    "sgx-toleration": {"sgxToleration": {"enabled": True}},
    # `--set tolerations[0].value=true` as SCONE's README writes it: a boolean.
    "toleration-bool-value": {"tolerations": [{"key": "sgx", "operator": "Equal", "value": True, "effect": "NoSchedule"}]},
    "name-override": {"nameOverride": "attest"},
    "tests-off": {"tests": {"enabled": False}},
    "service-off": {"service": {"enabled": False}},
    "service-nodeport": {"service": {"type": "NodePort", "internalTrafficPolicy": "Cluster"}},
    "hostport-off": {"service": {"hostPort": False}},
    "custom-image": {"image": "registry.example.com/sconecuratedimages/las:scone5.9"},
    "mode-sim": {"mode": "sim"},
    "servicemonitor": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
    "hw-intel-aesmd": {
        "mode": "hw",
        "useSGXDevPlugin": "intel",
        "externalAesmd": {"enabled": True},
        "state": {"hostPath": ""},
    },
    "ephemeral": {"state": {"hostPath": "", "allowEphemeral": True}},
    "networkpolicy": {"networkPolicy": {"enabled": True}},
    "networkpolicy-narrow": {
        "networkPolicy": {
            "enabled": True,
            "las": {"from": [{"namespaceSelector": {"matchLabels": {"sgx-apps": "true"}}},
                             {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]},
            "verifier": {"from": [{"podSelector": {}}],
                         "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]}]},
        },
        "verifier": {"enabled": True, "policy": "x"},
    },
    # Hardware mode with the verifier and the hook from the las image beside the Gramine one.
    "hw-verifier-hook": {
        "mode": "hw",
        "useSGXDevPlugin": "intel",
        "image": "reg/las-gramine:1",
        "tests": {"image": "reg/las:1"},
        "networkPolicy": {"enabled": True},
        "verifier": {"enabled": True, "policy": "x", "image": "reg/las:1", "replicas": 1,
                     "securityContext": {"readOnlyRootFilesystem": True, "runAsNonRoot": True,
                                         "seccompProfile": {"type": "RuntimeDefault"}}},
    },
    # The hardware pods on the SGX nodes of another labelling, or by affinity alone.
    "sgx-nodes-by-affinity": {
        "mode": "hw",
        "useSGXDevPlugin": "scone",
        "sgxNodeSelector": {},
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "sgx.k8s.io/sgx", "operator": "Exists"}]}]}}},
    },
    "everything-else": {
        "imagePullPolicy": "Always",
        "imagePullSecrets": [{"name": "regcred"}],
        "nodeSelector": {"intel.feature.node.kubernetes.io/sgx": "true"},
        "tolerations": [{"key": "sgx", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}
                    ]
                }
            }
        },
        "priorityClassName": "system-node-critical",
        "podAnnotations": {"example.com/team": "security"},
        "podLabels": {"example.com/tier": "node"},
        "updateStrategy": {"type": "OnDelete"},
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
        "extraEnv": [{"name": "LAS_SIM_CPUSVN", "value": "0" * 32}],
        "logFormat": "json",
        "service": {"port": 18800, "annotations": {"example.com/a": "b"}},
    },
}

# A strict schema for the subset of the prometheus-operator ServiceMonitor (monitoring.coreos.com/v1)
# the chart emits: kubernetes-validate ships no CRD schemas. Field names as in the operator's CRD.
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                        },
                    },
                },
            },
        },
    },
}

# The PodMonitor: the same shape with `podMetricsEndpoints` (field names as in the CRD).
POD_MONITOR_SCHEMA = copy.deepcopy(SERVICE_MONITOR_SCHEMA)
POD_MONITOR_SCHEMA["properties"]["kind"] = {"const": "PodMonitor"}
POD_MONITOR_SCHEMA["required"] = ["apiVersion", "kind", "metadata", "spec"]
_pm_spec = POD_MONITOR_SCHEMA["properties"]["spec"]
_pm_spec["properties"]["podMetricsEndpoints"] = _pm_spec["properties"].pop("endpoints")
_pm_spec["required"] = ["selector", "podMetricsEndpoints"]
MONITOR_SCHEMAS = {"ServiceMonitor": SERVICE_MONITOR_SCHEMA, "PodMonitor": POD_MONITOR_SCHEMA}


class Rendered:
    """The objects and NOTES of one rendering, with helpers to find the LAS parts."""

    def __init__(self, manifests: dict[str, str]):
        self.notes = ""
        self.objects: list[dict] = []
        # `helm test` hooks: not installed with the release (helm keeps them apart too).
        self.hooks: list[dict] = []
        for path, text in manifests.items():
            if path.endswith("NOTES.txt"):
                self.notes = text
                continue
            for doc in yaml.safe_load_all(text):
                if not doc:
                    continue
                if "helm.sh/hook" in (doc.get("metadata", {}).get("annotations") or {}):
                    self.hooks.append(doc)
                else:
                    self.objects.append(doc)

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)

    def one(self, kind: str) -> dict:
        found = [o for o in self.objects if o["kind"] == kind]
        assert len(found) == 1, f"expected one {kind}, got {self.kinds()}"
        return found[0]

    def maybe(self, kind: str) -> dict | None:
        found = [o for o in self.objects if o["kind"] == kind]
        return found[0] if found else None

    @property
    def pod(self) -> dict:
        return self.one("DaemonSet")["spec"]["template"]["spec"]

    @property
    def las(self) -> dict:
        return next(c for c in self.pod["containers"] if c["name"] == "las")

    @property
    def init(self) -> dict | None:
        return next((c for c in self.pod.get("initContainers", []) if c["name"] == "prepare-state"), None)

    def env(self) -> dict[str, str]:
        return {e["name"]: e.get("value") for e in self.las.get("env", [])}

    def volume(self, name: str) -> dict:
        return next(v for v in self.pod["volumes"] if v["name"] == name)


@pytest.fixture(scope="session")
def chart_dir(repo):
    return repo / "charts" / "las"


@pytest.fixture(scope="session")
def chart(chart_dir):
    with helm.Chart.load(chart_dir) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart):
    def _render(values=None, name="las", namespace="default") -> Rendered:
        return Rendered(chart.render(copy.deepcopy(values or {}), name=name, namespace=namespace))

    return _render


def render_error(chart, values, name="las") -> str:
    with pytest.raises(helm.HelmError) as info:
        chart.render(values, name=name, namespace="default")
    return str(info.value)


# --- every object is valid Kubernetes -----------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_object_passes_strict_kubernetes_validation(render, case, kube_version):
    rendered = render(CASES[case])
    assert rendered.maybe("DaemonSet"), f"{case}: no DaemonSet in {rendered.kinds()}"
    for obj in rendered.objects:
        where = f"{case}: {obj['kind']}/{obj['metadata']['name']} on Kubernetes {kube_version}"
        if obj["kind"] in MONITOR_SCHEMAS:
            errors = [e.message for e in jsonschema.Draft7Validator(MONITOR_SCHEMAS[obj["kind"]]).iter_errors(obj)]
            assert not errors, f"{where}: {errors}"
            continue
        problem = None
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as err:
            problem = f"at {'/'.join(str(p) for p in err.path) or '(top)'}: {err.message}"
        assert problem is None, f"{where}: {problem}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_case_keeps_the_security_context(render, case):
    rendered = render(CASES[case])
    pod_ctx = rendered.pod["securityContext"]
    las_ctx = rendered.las["securityContext"]
    assert pod_ctx["runAsNonRoot"] is True and pod_ctx["runAsUser"] == 10001
    assert pod_ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert las_ctx["readOnlyRootFilesystem"] is True
    values = CASES[case]
    if values.get("useSGXDevPlugin") == "privileged" or values.get("securityContext", {}).get("privileged"):
        # The API server rejects allowPrivilegeEscalation=false beside privileged=true.
        assert las_ctx["privileged"] is True
        assert "allowPrivilegeEscalation" not in las_ctx and "capabilities" not in las_ctx
    else:
        assert las_ctx["allowPrivilegeEscalation"] is False
        assert las_ctx["privileged"] is False
        assert las_ctx["capabilities"] == {"drop": ["ALL"]}
    assert rendered.pod["automountServiceAccountToken"] is False
    assert rendered.pod.get("hostNetwork", False) is bool(values.get("hostNetwork"))
    assert "hostPID" not in rendered.pod
    init = rendered.init
    if init is not None:
        # The only root process of the pod: exits at once, three capabilities, nothing else.
        ctx = init["securityContext"]
        assert ctx["runAsUser"] == 0 and ctx["runAsNonRoot"] is False
        assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FOWNER", "DAC_READ_SEARCH"]}


# --- the default install ------------------------------------------------------------------


def test_default_install_is_one_daemonset_and_a_service(render, chart):
    rendered = render()
    assert rendered.kinds() == ["DaemonSet", "Service"]
    ds = rendered.one("DaemonSet")
    assert ds["apiVersion"] == "apps/v1"
    assert ds["metadata"]["name"] == "las" and ds["metadata"]["namespace"] == "default"
    # With release `las`, the deployment page's get_platform_ids selects exactly these.
    selector = {"app.kubernetes.io/name": "las", "app.kubernetes.io/instance": "las"}
    assert ds["spec"]["selector"]["matchLabels"] == selector
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    # Pod labels: the selector, the LAS marker `las platform-ids` selects, nothing that
    # changes with the chart version.
    assert pod_labels == {**selector, "app.kubernetes.io/component": "las", "app.kubernetes.io/managed-by": "Helm"}
    labels = ds["metadata"]["labels"]
    assert labels["helm.sh/chart"] == f"las-{chart.metadata['version']}"
    assert labels["app.kubernetes.io/version"] == chart.metadata["appVersion"]
    assert labels["app.kubernetes.io/managed-by"] == "Helm"
    assert rendered.pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert "tolerations" not in rendered.pod
    # A node agent: not the first pod to be preempted or evicted.
    assert rendered.pod["priorityClassName"] == "system-node-critical"
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}


def test_default_container(render):
    rendered = render()
    las = rendered.las
    assert las["image"] == "las:0.1.0" and las["imagePullPolicy"] == "IfNotPresent"
    # The program is named, never left to the image's entrypoint.
    assert las["command"] == ["/usr/local/bin/lasd"] and las["args"] == ["serve"]
    assert las["ports"] == [{"name": "las", "containerPort": LAS_PORT, "hostPort": LAS_PORT, "protocol": "TCP"}]
    assert rendered.env() == {
        "LAS_LISTEN": f"[::]:{LAS_PORT}",
        "LAS_STATE_DIR": "/var/lib/las",
        "LAS_MODE": "auto",
        "LAS_LOG_FORMAT": "text",
    }
    assert las["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "las"}
    assert las["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "las"}
    assert las["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "las"}
    # The probes name the port, so they follow service.port.
    assert las["ports"][0]["name"] == "las"
    resources = las["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"} and set(resources["limits"]) == {"memory"}
    annotations = rendered.one("DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(LAS_PORT),
        "prometheus.io/path": "/metrics",
    }


def test_default_state_is_a_host_path_prepared_for_the_non_root_las(render):
    rendered = render()
    assert rendered.volume("state") == {
        "name": "state",
        "hostPath": {"path": "/var/lib/las", "type": "DirectoryOrCreate"},
    }
    assert {"name": "state", "mountPath": "/var/lib/las", "subPath": "state"} in rendered.las["volumeMounts"]
    init = rendered.init
    assert init is not None, "no init container prepares the hostPath for the non-root LAS"
    assert init["image"] == rendered.las["image"]
    assert init["command"] == ["/usr/local/bin/las-prepare-state", "/host-state/state", "10001", "10001"]
    assert init["volumeMounts"] == [{"name": "state", "mountPath": "/host-state"}]


def test_default_service(render):
    svc = render().one("Service")
    assert svc["metadata"]["name"] == "las"
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["internalTrafficPolicy"] == "Local"
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "las", "app.kubernetes.io/instance": "las"}
    assert svc["spec"]["ports"] == [{"name": "las", "port": LAS_PORT, "targetPort": "las", "protocol": "TCP"}]


def test_default_use_sgx_dev_plugin_requests_no_device(render, chart):
    # Works on any cluster: a device resource that no node offers would leave the pods Pending.
    assert chart.values["useSGXDevPlugin"] == "disabled"
    limits = render().las["resources"]["limits"]
    assert not [k for k in limits if k.startswith(SGX_PREFIXES)]


# --- the matrix, property by property -----------------------------------------------------


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"useSGXDevPlugin": "disabled"}, {}),
        ({"useSGXDevPlugin": "intel"}, {"sgx.intel.com/enclave": 1, "sgx.intel.com/provision": 1}),
        (
            {"useSGXDevPlugin": "intel", "sgxEpcMem": 64},
            {"sgx.intel.com/enclave": 1, "sgx.intel.com/provision": 1, "sgx.intel.com/epc": "64Mi"},
        ),
        ({"useSGXDevPlugin": "scone"}, {"sgx.k8s.io/sgx": 1}),
        ({"useSGXDevPlugin": "enabled"}, {"sgx.k8s.io/sgx": 1}),
        ({"useSGXDevPlugin": "azure", "sgxEpcMem": 10}, {"kubernetes.azure.com/sgx_epc_mem_in_MiB": 10}),
        # sgxEpcMem means nothing to the scone plugin.
        ({"useSGXDevPlugin": "scone", "sgxEpcMem": 10}, {"sgx.k8s.io/sgx": 1}),
    ],
    ids=["disabled", "intel", "intel-epc", "scone", "enabled", "azure", "scone-ignores-epc"],
)
def test_device_resources_of_each_plugin(render, values, expected):
    las = render({"mode": "hw" if values["useSGXDevPlugin"] != "disabled" else "auto", **values}).las
    limits = las["resources"]["limits"]
    assert {k: v for k, v in limits.items() if k.startswith(SGX_PREFIXES)} == expected
    assert limits["memory"] == "128Mi", "the device limits replaced the memory limit"
    assert not [k for k in las["resources"]["requests"] if k.startswith(SGX_PREFIXES)]


def test_device_limits_win_over_user_limits(render):
    las = render({"mode": "hw", "useSGXDevPlugin": "scone", "resources": {"limits": {"sgx.k8s.io/sgx": 5, "memory": "1Gi"}}}).las
    assert las["resources"]["limits"] == {"sgx.k8s.io/sgx": 1, "memory": "1Gi"}


def test_service_disabled_keeps_the_host_port(render):
    rendered = render({"service": {"enabled": False}})
    assert rendered.kinds() == ["DaemonSet"]
    assert rendered.las["ports"][0]["hostPort"] == LAS_PORT
    assert "status.hostIP" in rendered.notes


def test_host_port_off(render):
    rendered = render({"service": {"hostPort": False}})
    assert rendered.las["ports"] == [{"name": "las", "containerPort": LAS_PORT, "protocol": "TCP"}]
    assert rendered.one("Service")["spec"]["internalTrafficPolicy"] == "Local"
    # Applications then go through the node-local Service.
    assert f"las.default.svc:{LAS_PORT}" in rendered.notes
    assert "status.hostIP" not in rendered.notes


def test_host_port_off_and_no_service_warns(render):
    notes = render({"service": {"hostPort": False, "enabled": False}}).notes
    assert "applications cannot reach the LAS" in notes


def test_custom_port_is_used_everywhere(render):
    rendered = render({"service": {"port": 18800}})
    assert rendered.las["ports"][0] == {"name": "las", "containerPort": 18800, "hostPort": 18800, "protocol": "TCP"}
    assert rendered.env()["LAS_LISTEN"] == "[::]:18800"
    assert rendered.one("Service")["spec"]["ports"][0]["port"] == 18800
    annotations = rendered.one("DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "18800"
    assert "$(NODE_IP):18800" in rendered.notes


@pytest.mark.parametrize(
    "image",
    [
        "registry.example.com/sconecuratedimages/las:scone5.9",
        "localhost:5000/las@sha256:" + "ab" * 32,
        "las",
    ],
)
def test_custom_image_as_one_string(render, image):
    # `--set image=$SCONE_LAS_IMAGE`, parsed the way helm's --set parses it.
    rendered = render(helm.parse_set_string(f"image={image}"))
    assert rendered.las["image"] == image
    assert rendered.init["image"] == image


def test_mode(render):
    assert render({"mode": "sim"}).env()["LAS_MODE"] == "sim"
    hw = render({"mode": "hw", "useSGXDevPlugin": "intel"})
    assert hw.env()["LAS_MODE"] == "hw"
    assert "simulates SGX" not in hw.notes
    assert "simulates SGX" in render({"mode": "sim", "useSGXDevPlugin": "intel"}).notes


def test_service_monitor(render):
    rendered = render({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}})
    assert rendered.kinds() == ["DaemonSet", "Service", "ServiceMonitor"]
    monitor, svc = rendered.one("ServiceMonitor"), rendered.one("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= svc["metadata"]["labels"].items(), "the ServiceMonitor does not select the Service"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["default"]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == svc["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "30s" and endpoint["scrapeTimeout"] == "10s"


def test_metrics_annotations_can_be_turned_off(render):
    rendered = render({"metrics": {"podAnnotations": False}, "podAnnotations": {"a": "b"}})
    assert rendered.one("DaemonSet")["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}
    assert "annotations" not in render({"metrics": {"podAnnotations": False}}).one("DaemonSet")["spec"]["template"]["metadata"]


def test_everything_else_reaches_the_pod(render):
    values = CASES["everything-else"]
    rendered = render(values)
    ds, pod, las = rendered.one("DaemonSet"), rendered.pod, rendered.las
    assert las["imagePullPolicy"] == "Always" and rendered.init["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    # Helm merges the user's nodeSelector into the default one.
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", **values["nodeSelector"]}
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"]
    assert pod["priorityClassName"] == "system-node-critical"
    assert ds["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert ds["spec"]["template"]["metadata"]["annotations"]["example.com/team"] == "security"
    assert ds["spec"]["template"]["metadata"]["labels"]["example.com/tier"] == "node"
    assert {"name": "extra", "emptyDir": {}} in pod["volumes"]
    assert {"name": "extra", "mountPath": "/extra"} in las["volumeMounts"]
    assert rendered.env()["LAS_SIM_CPUSVN"] == "0" * 32
    assert rendered.env()["LAS_LOG_FORMAT"] == "json"
    assert '"platform_id"' in rendered.notes and "awk" not in rendered.notes
    assert rendered.one("Service")["metadata"]["annotations"] == {"example.com/a": "b"}


def test_external_aesmd_mounts_the_socket_directory(render):
    rendered = render({"mode": "hw", "useSGXDevPlugin": "intel", "externalAesmd": {"enabled": True}})
    assert rendered.volume("aesmd") == {"name": "aesmd", "hostPath": {"path": "/var/run/aesmd", "type": "Directory"}}
    assert {"name": "aesmd", "mountPath": "/var/run/aesmd"} in rendered.las["volumeMounts"]
    assert not [v for v in render().pod["volumes"] if v["name"] == "aesmd"]


def test_security_context_follows_a_custom_user(render):
    rendered = render({"securityContext": {"runAsUser": 20000, "runAsGroup": 20001, "readOnlyRootFilesystem": True,
                                           "allowPrivilegeEscalation": False, "privileged": False,
                                           "capabilities": {"drop": ["ALL"]}}})
    assert rendered.init["command"][2:] == ["20000", "20001"]


# --- the platform identity must survive restarts ------------------------------------------


def test_custom_host_path(render):
    rendered = render({"state": {"hostPath": "/srv/las"}})
    assert rendered.volume("state")["hostPath"] == {"path": "/srv/las", "type": "DirectoryOrCreate"}
    assert "/srv/las/state" in rendered.notes


def test_empty_host_path_is_refused_unless_acknowledged(chart, render):
    for mode in ("auto", "sim"):
        message = render_error(chart, {"mode": mode, "state": {"hostPath": ""}})
        assert "state.hostPath" in message and "platform ID" in message and "state.allowEphemeral" in message
    rendered = render({"state": {"hostPath": "", "allowEphemeral": True}})
    assert rendered.volume("state") == {"name": "state", "emptyDir": {}}
    assert rendered.init is None
    assert {"name": "state", "mountPath": "/var/lib/las"} in rendered.las["volumeMounts"]
    assert "NEW platform ID" in rendered.notes


def test_hardware_mode_needs_no_host_path(render):
    rendered = render({"mode": "hw", "useSGXDevPlugin": "intel", "state": {"hostPath": ""}})
    assert rendered.volume("state") == {"name": "state", "emptyDir": {}}
    assert rendered.init is None
    # Not even with the default hostPath: nothing of the identity lives on the node, and no
    # root init container runs.
    rendered = render({"mode": "hw", "useSGXDevPlugin": "intel"})
    assert rendered.volume("state") == {"name": "state", "emptyDir": {}}
    assert rendered.init is None
    assert not [v for v in rendered.pod["volumes"] if "hostPath" in v and v["name"] == "state"]
    assert "/var/lib/las/state" not in rendered.notes
    assert "without state.hostPath" in rendered.notes


def test_hardware_mode_runs_the_gramine_image_with_devices_and_the_aesm_socket(render):
    # gramine/Dockerfile's entrypoint is `gramine-sgx las`; its arguments are measured.
    hw = render({"mode": "hw", "useSGXDevPlugin": "intel", "sgxEpcMem": 64, "image": "reg/las-sgx:1"})
    assert hw.las["command"] == ["gramine-sgx", "las"] and "args" not in hw.las
    assert hw.las["workingDir"] == "/las"
    assert hw.las["image"] == "reg/las-sgx:1"
    limits = hw.las["resources"]["limits"]
    assert limits["sgx.intel.com/enclave"] == 1 and limits["sgx.intel.com/provision"] == 1
    assert limits["sgx.intel.com/epc"] == "64Mi"
    # DCAP quotes need the node's AESM, whether or not externalAesmd.enabled says so.
    assert hw.volume("aesmd") == {"name": "aesmd", "hostPath": {"path": "/var/run/aesmd", "type": "Directory"}}
    assert {"name": "aesmd", "mountPath": "/var/run/aesmd"} in hw.las["volumeMounts"]
    assert hw.las["ports"][0]["containerPort"] == 18766
    # Other modes keep `las serve` and the node state.
    sim = render({"mode": "sim"})
    assert sim.las["args"] == ["serve"]
    assert sim.volume("state")["hostPath"]["path"] == "/var/lib/las"


def test_prepare_can_be_turned_off(render):
    rendered = render({"state": {"prepare": False}})
    assert rendered.init is None
    assert rendered.volume("state")["hostPath"]["path"] == "/var/lib/las"


# --- bad values fail at install time, naming the value ------------------------------------


@pytest.mark.parametrize(
    "set_expression, named",
    [
        ("useSGXDevPlugin=foo", "/useSGXDevPlugin"),
        ("image=", "/image"),
        ("service.port=abc", "/service/port"),
        ("service.port=70000", "/service/port"),
        ("useSGXDevPlugin=azure", "sgxEpcMem"),
        ("useSGXDevPlugin=azure,sgxEpcMem=0", "/sgxEpcMem"),
        ("mode=hardware", "/mode"),
        ("mode=hw", "/useSGXDevPlugin"),
        ("servce.port=1", "servce"),
        ("service.hostport=false", "hostport"),
        ("state.hostPath=var/lib/las", "/state/hostPath"),
        ("service.type=Headless", "/service/type"),
        ("service.hostPort=yes", "/service/hostPort"),
        ("metrics.serviceMonitor.interval=30", "/metrics/serviceMonitor/interval"),
        ("imagePullPolicy=sometimes", "/imagePullPolicy"),
        ("logFormat=xml", "/logFormat"),
        # Typed Kubernetes shapes: a typo is refused, not rendered silently.
        ("securityContext.readOnlyRootFilesytem=true", "readOnlyRootFilesytem"),
        ("podSecurityContext.runAsUSer=1", "runAsUSer"),
        ("podSecurityContext.seccompProfile.type=Default", "/podSecurityContext/seccompProfile/type"),
        ("affinity.nodeAfinity.x=1", "nodeAfinity"),
        ("updateStrategy.rollingUpdate.maxUnavailabe=1", "maxUnavailabe"),
        ("updateStrategy.rollingUpdate.maxUnavailable=ten", "/updateStrategy/rollingUpdate/maxUnavailable"),
        ("extraEnv[0].name=A,extraEnv[0].vaule=b", "vaule"),
        ("resources.limits.memory=lots", "/resources/limits/memory"),
        ("resources.requests.cpu=-1", "/resources/requests/cpu"),
        ("networkPolicy.enabeld=true", "enabeld"),
        ("networkPolicy.las.from[0].namespaceSelecter.x=y", "namespaceSelecter"),
    ],
)
def test_bad_values_fail_naming_the_value(chart, set_expression, named):
    # The values exactly as `helm install las charts/las --set EXPR` builds them.
    message = render_error(chart, helm.parse_set_string(set_expression))
    assert named in message, message


@pytest.mark.parametrize("quantity", ["20m", "128Mi", "1", "1.5", "0.5Gi", "1e3", "2k"])
def test_schema_accepts_kubernetes_quantities(chart, quantity):
    rendered = Rendered(chart.render({"resources": {"requests": {"cpu": quantity, "memory": quantity}}}, name="las", namespace="default"))
    assert rendered.las["resources"]["requests"]["cpu"] == quantity


# --- production knobs ---------------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["intel", "scone", "enabled", "privileged"])
def test_pods_with_sgx_devices_select_sgx_nodes(render, plugin):
    # A pod that requests a device no node offers stays Pending and stalls the rollout.
    rendered = render({"mode": "hw", "useSGXDevPlugin": plugin})
    assert rendered.pod["nodeSelector"] == {"kubernetes.io/os": "linux", "intel.feature.node.kubernetes.io/sgx": "true"}
    assert render({"mode": "sim", "useSGXDevPlugin": plugin}).pod["nodeSelector"]["intel.feature.node.kubernetes.io/sgx"] == "true"
    # Overridable with the cluster's own label.
    other = render({"mode": "hw", "useSGXDevPlugin": plugin, "sgxNodeSelector": {"sgx.intel.com/capable": "true"}})
    assert other.pod["nodeSelector"] == {"kubernetes.io/os": "linux", "sgx.intel.com/capable": "true"}
    # The test hook lands where a LAS runs.
    hook = render({"mode": "hw", "useSGXDevPlugin": plugin, "tests": {"image": "reg/las:1"}, "affinity": {"podAffinity": {}}}).hooks[0]
    assert hook["spec"]["nodeSelector"] == rendered.pod["nodeSelector"]
    assert hook["spec"]["affinity"] == {"podAffinity": {}}


def test_sgx_pods_without_any_sgx_node_selection_are_refused(chart, render):
    message = render_error(chart, {"mode": "hw", "useSGXDevPlugin": "intel", "sgxNodeSelector": {}})
    assert "sgxNodeSelector" in message and "Pending" in message
    # Naming the SGX nodes another way is enough.
    named = render({"mode": "hw", "useSGXDevPlugin": "intel", "sgxNodeSelector": {}, "nodeSelector": {"sgx": "yes"}})
    assert named.pod["nodeSelector"] == {"kubernetes.io/os": "linux", "sgx": "yes"}
    # Without devices, nothing changes: any Linux node.
    assert render({"sgxNodeSelector": {}}).pod["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_hardware_mode_never_runs_the_hook_in_the_gramine_image(chart):
    message = render_error(chart, {"mode": "hw", "useSGXDevPlugin": "intel", "image": "reg/las-gramine:1",
                                   "tests": {"image": "reg/las-gramine:1"}})
    assert "tests.image" in message and "Gramine" in message


def test_priority_class_can_be_overridden_or_dropped(render):
    assert render({"priorityClassName": "las-critical"}).pod["priorityClassName"] == "las-critical"
    assert "priorityClassName" not in render({"priorityClassName": ""}).pod


def test_network_policy(render, chart):
    assert not [o for o in render().objects if o["kind"] == "NetworkPolicy"]
    rendered = render({"networkPolicy": {"enabled": True}})
    policies = {o["metadata"]["name"]: o for o in rendered.objects if o["kind"] == "NetworkPolicy"}
    assert set(policies) == {"las", "las-test"}
    # The helm test pod accepts nothing; it only asks the LAS.
    test_policy = policies["las-test"]["spec"]
    selected = test_policy["podSelector"]["matchLabels"]
    assert selected == {"app.kubernetes.io/instance": "las", "app.kubernetes.io/component": "test"}
    assert selected.items() <= rendered.hooks[0]["metadata"]["labels"].items()
    assert test_policy["policyTypes"] == ["Ingress"] and test_policy["ingress"] == []
    # It selects no LAS pod.
    assert not selected.items() <= rendered.one("DaemonSet")["spec"]["template"]["metadata"]["labels"].items()
    np = policies["las"]
    ds = rendered.one("DaemonSet")
    assert np["spec"]["podSelector"] == {"matchLabels": ds["spec"]["selector"]["matchLabels"]}
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    # Only the LAS port, from pods of the cluster; no egress at all.
    assert np["spec"]["ingress"] == [{"ports": [{"port": LAS_PORT, "protocol": "TCP"}], "from": [{"namespaceSelector": {}}]}]
    assert np["spec"]["egress"] == []
    both = render(CASES["networkpolicy-narrow"])
    policies = {o["metadata"]["name"]: o for o in both.objects if o["kind"] == "NetworkPolicy"}
    assert set(policies) == {"las", "las-test", "las-verifier"}
    verifier = policies["las-verifier"]["spec"]
    deployment = both.one("Deployment")
    assert verifier["podSelector"] == {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}
    assert verifier["ingress"] == [{"ports": [{"port": 18767, "protocol": "TCP"}], "from": [{"podSelector": {}}]}]
    assert verifier["egress"] == CASES["networkpolicy-narrow"]["networkPolicy"]["verifier"]["egress"]
    assert policies["las"]["spec"]["ingress"][0]["from"] == CASES["networkpolicy-narrow"]["networkPolicy"]["las"]["from"]
    # A policy cannot hold pods on the node's network: refused rather than promised.
    message = render_error(chart, {"networkPolicy": {"enabled": True}, "hostNetwork": True})
    assert "networkPolicy.enabled" in message and "hostNetwork" in message


def test_notes_show_pinning_by_digest_and_helm_test_only_with_a_hook(render):
    notes = render().notes
    assert "@sha256:" in notes and "scripts/package-chart --image" in notes
    assert "helm test las" in notes
    pinned = render({"image": "reg.example.com/las@sha256:" + "a" * 64}).notes
    assert "pinned by tag" not in pinned
    hw = render({"mode": "hw", "useSGXDevPlugin": "intel"})
    assert hw.hooks == [] and "helm test" not in hw.notes
    assert "helm test las" in render({"mode": "hw", "useSGXDevPlugin": "intel", "tests": {"image": "reg/las:1"}}).notes


def test_service_monitor_without_service_fails(chart):
    message = render_error(chart, {"service": {"enabled": False}, "metrics": {"serviceMonitor": {"enabled": True}}})
    assert "metrics.serviceMonitor.enabled" in message and "service.enabled" in message


def test_schema_accepts_the_defaults_and_every_case(chart):
    chart.validate_schema(chart.values)
    for values in CASES.values():
        chart.validate_schema(chart.merge_values(copy.deepcopy(values)))


# --- lint, dry run, show values -----------------------------------------------------------


@pytest.mark.parametrize("kube_version", [None, "v1.29.0"])
def test_helm_lint_passes(chart_dir, kube_version):
    report = helm.lint(chart_dir, strict=True, kube_version=kube_version)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


def test_helm_lint_reports_bad_values(chart_dir):
    report = helm.lint(chart_dir, {"useSGXDevPlugin": "foo"}, strict=True)
    assert any("/useSGXDevPlugin" in e for e in report["errors"]), report


def test_install_dry_run_lists_what_will_be_created(chart_dir, tmp_path):
    # `helm install las charts/las --dry-run`: the client-side dry run needs a kubeconfig but
    # never contacts its (unreachable) server.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "none", "user": {"token": "unused"}}],
        "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
        "current-context": "none",
    }))
    with helm.Config(kubeconfig_path=kubeconfig, namespace="default") as cfg:
        release = cfg.install(str(chart_dir), "las", {}, dry_run="client")
        objects = [d for d in yaml.safe_load_all(release["manifest"]) if d]
        assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == [("DaemonSet", "las"), ("Service", "las")]
        assert release["namespace"] == "default" and release["app_version"] == "0.1.0"
        with pytest.raises(helm.HelmError) as info:
            cfg.install(str(chart_dir), "las", helm.parse_set_string("useSGXDevPlugin=foo"), dry_run="client")
        assert "/useSGXDevPlugin" in str(info.value)


def test_show_values_prints_the_documented_values_file(chart_dir):
    assert helm.show(str(chart_dir), output_format="values").strip() == (chart_dir / "values.yaml").read_text().strip()


# --- names, NOTES and docs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "release, fullname",
    [("las", "las"), ("my-las", "my-las"), ("prod", "prod-las")],
)
def test_object_names_and_instance_label(render, release, fullname):
    rendered = render(name=release, namespace="sgx")
    ds = rendered.one("DaemonSet")
    assert ds["metadata"]["name"] == fullname and ds["metadata"]["namespace"] == "sgx"
    assert ds["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "las",
        "app.kubernetes.io/instance": release,
    }
    notes = rendered.notes
    assert f"las platform-ids --namespace sgx --instance {release}" in notes
    assert f"app.kubernetes.io/component=las,app.kubernetes.io/instance={release}" in notes
    assert f"kubectl rollout status daemonset/{fullname} --namespace sgx" in notes


def test_notes_tell_how_to_check_list_ids_and_connect(render):
    notes = render().notes
    for needle in [
        "helm status las --namespace default",
        "kubectl rollout status daemonset/las --namespace default",
        "las platform-ids --namespace default --instance las",
        "platforms: [ ID1, ID2]",
        LOG_PIPELINE,
        "fieldPath: status.hostIP",
        "name: SCONE_LAS_ADDR",
        '"$(NODE_IP):18766"',
        "same node keeps its platform ID",
        "microcode",
        "las platform-ids --namespace default --instance las --qe-id",
        "platforms: [ INTEL_QE_ID:…, INTEL_QE_ID:…]",
        "grep 'Intel QE ID' | tail -n 1 | awk '{print \"INTEL_QE_ID:\" $NF}'",
        "las platform-ids --namespace default --instance las --check policy.yaml",
    ]:
        assert needle in notes, f"NOTES.txt lacks {needle!r}:\n{notes}"


def _leaf_keys(values: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in {"resources", "podSecurityContext", "securityContext", "updateStrategy", "nodeSelector", "sgxNodeSelector"}:
            keys.extend(_leaf_keys(value, f"{path}."))
        else:
            keys.append(path)
    return keys


def test_every_value_is_documented_where_it_is_declared(chart_dir):
    # helm-docs style: a `# --` comment right above each leaf key (its continuation lines
    # start with `#`).
    lines = (chart_dir / "values.yaml").read_text().splitlines()
    values = yaml.safe_load("\n".join(lines))
    undocumented = []
    for dotted in _leaf_keys(values):
        index = -1
        for depth, key in enumerate(dotted.split(".")):  # the key inside its parent's block
            pattern = re.compile(rf"^{'  ' * depth}{re.escape(key)}:")
            index = next(i for i in range(index + 1, len(lines)) if pattern.match(lines[i]))
        j = index - 1
        while j >= 0 and lines[j].strip().startswith("#") and not lines[j].strip().startswith("# --"):
            j -= 1
        if j < 0 or not lines[j].strip().startswith("# --"):
            undocumented.append(dotted)
    assert not undocumented, f"values without a `# --` comment: {undocumented}"


def test_schema_covers_every_value(chart_dir):
    schema = json.loads((chart_dir / "values.schema.json").read_text())
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    missing = []
    for dotted in _leaf_keys(values):
        node = schema
        for part in dotted.split("."):
            node = node.get("properties", {}).get(part)
            if node is None:
                missing.append(dotted)
                break
    assert not missing, f"values.schema.json does not declare {missing}"


def test_readme_documents_every_value_and_the_commands(chart_dir):
    readme = (chart_dir / "README.md").read_text()
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    table_keys = set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))
    missing = [k for k in _leaf_keys(values) if k not in table_keys]
    assert not missing, f"README.md's values table lacks {missing}"
    for needle in [
        "helm install las charts/las",
        "--set image=$SCONE_LAS_IMAGE",
        "helm upgrade las charts/las",
        "helm uninstall las",
        "helm show values charts/las",
        "helm install las charts/las --dry-run",
        "las platform-ids",
        LOG_PIPELINE,
        "status.hostIP",
        "microcode",
        "scripts/build-image",
    ]:
        assert needle in readme, f"README.md lacks {needle!r}"


def test_versions_agree_with_the_workspace(repo, chart):
    # The default image is the one scripts/build-image tags: las:<version of the las crate>.
    cargo = tomllib.loads((repo / "Cargo.toml").read_text())
    version = cargo["workspace"]["package"]["version"]
    assert chart.metadata["appVersion"] == version
    assert chart.values["image"] == f"las:{version}"


# --- the labels the Rust tests' fake API server serves ------------------------------------

# Releases and values the Rust tests (crates/las/tests/fakes) serve pods for.
FIXTURE_RENDERINGS = [("las", {}), ("las-prod", {}), ("prod", {}), ("prod", {"nameOverride": "attest"})]
FIXTURE = "crates/las/tests/fixtures/chart-pod-labels.json"


def rendered_pod_labels(render) -> dict:
    renderings = []
    for release, values in FIXTURE_RENDERINGS:
        ds = render(values, name=release).one("DaemonSet")
        renderings.append({"release": release, "values": values, "labels": ds["spec"]["template"]["metadata"]["labels"]})
    return {
        "comment": "Pod template labels of charts/las as rendered; written by tests/python/test_chart.py "
        "(LAS_WRITE_FIXTURES=1), which fails when they no longer match the chart.",
        "renderings": renderings,
    }


def test_rust_fake_api_server_serves_the_rendered_pod_labels(render, repo):
    want = rendered_pod_labels(render)
    path = repo / FIXTURE
    if os.environ.get("LAS_WRITE_FIXTURES") == "1":
        path.write_text(json.dumps(want, indent=2, sort_keys=True) + "\n")
    assert json.loads(path.read_text()) == want, (
        f"{FIXTURE} no longer holds the labels the chart renders: regenerate it with "
        "LAS_WRITE_FIXTURES=1 .venv/bin/python -m pytest tests/python/test_chart.py -k rust_fake"
    )
