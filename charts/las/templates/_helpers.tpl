{{/*
The chart name: the `app.kubernetes.io/name` label (`nameOverride` changes it). The platform-ID
tooling does NOT select on it: `las platform-ids` selects
`app.kubernetes.io/component=las,app.kubernetes.io/instance=<release>` (see "las.podLabels"),
which holds for every release name and nameOverride.
*/}}
{{- define "las.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the chart's objects: the release name, plus the chart name unless the release
name already contains it (`helm install las` gives plain `las`).
*/}}
{{- define "las.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "las.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select the LAS pods; they never change over upgrades. */}}
{{- define "las.selectorLabels" -}}
app.kubernetes.io/name: {{ include "las.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The labels of the LAS pods (the DaemonSet's pod template). Only labels that stay the same as
long as the pods need not change: no `helm.sh/chart` and no version, so that a chart-only
version bump does not restart every LAS (each restart is a gap in attestation on its node).
`app.kubernetes.io/component: las` marks the LAS pods for every release name and
nameOverride: `las platform-ids` selects it together with the instance label.
*/}}
{{- define "las.podLabels" -}}
{{ include "las.selectorLabels" . }}
app.kubernetes.io/component: las
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The selector `las platform-ids --instance <release>` uses (and NOTES print). */}}
{{- define "las.podSelector" -}}
app.kubernetes.io/component=las,app.kubernetes.io/instance={{ .Release.Name }}
{{- end }}

{{/* The labels of the chart's other objects: the pod labels plus chart and version. */}}
{{- define "las.labels" -}}
helm.sh/chart: {{ include "las.chart" . }}
{{ include "las.podLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/*
Whether the LAS container runs privileged: `useSGXDevPlugin=privileged` (no device plugin: the
SGX device nodes come from the host), or `securityContext.privileged=true`.
*/}}
{{- define "las.privileged" -}}
{{- if or (eq .Values.useSGXDevPlugin "privileged") ((.Values.securityContext).privileged) }}true{{ end }}
{{- end }}

{{/*
The LAS container's securityContext. Privileged: without `allowPrivilegeEscalation: false` and
without `capabilities` (the API server rejects `allowPrivilegeEscalation: false` beside
`privileged: true`; a privileged container has every capability anyway).
*/}}
{{- define "las.containerSecurityContext" -}}
{{- $c := deepCopy (.Values.securityContext | default dict) }}
{{- if include "las.privileged" . }}
{{- $_ := set $c "privileged" true }}
{{- $_ := unset $c "allowPrivilegeEscalation" }}
{{- $_ := unset $c "capabilities" }}
{{- end }}
{{- with $c }}{{ toYaml . }}{{ end }}
{{- end }}

{{/*
The address the LAS listens on: every address of the pod (or, with hostNetwork, of the node),
IPv4 and IPv6 alike: `[::]` accepts IPv4 connections too (IPv4-mapped) on Linux, where
net.ipv6.bindv6only is 0 (the default, also in pod network namespaces).
*/}}
{{- define "las.listen" -}}
{{- printf "[::]:%d" (.Values.service.port | int) }}
{{- end }}

{{/*
The uid and gid the LAS runs as: the container's securityContext wins over the pod's, as in
Kubernetes; 10001 is the user of the image docker/ builds. The state-dir init container hands
the state directory to this user.
*/}}
{{- define "las.runAsUser" -}}
{{- $c := .Values.securityContext | default dict }}
{{- $p := .Values.podSecurityContext | default dict }}
{{- if hasKey $c "runAsUser" }}{{ $c.runAsUser | int64 }}
{{- else if hasKey $p "runAsUser" }}{{ $p.runAsUser | int64 }}
{{- else }}10001
{{- end }}
{{- end }}

{{- define "las.runAsGroup" -}}
{{- $c := .Values.securityContext | default dict }}
{{- $p := .Values.podSecurityContext | default dict }}
{{- if hasKey $c "runAsGroup" }}{{ $c.runAsGroup | int64 }}
{{- else if hasKey $p "runAsGroup" }}{{ $p.runAsGroup | int64 }}
{{- else }}10001
{{- end }}
{{- end }}

{{/*
The SGX device resources of each `useSGXDevPlugin` value, as a YAML map for the container's
limits (extended resources are not overcommitted: the request equals the limit).
*/}}
{{- define "las.sgxResources" -}}
{{- $plugin := .Values.useSGXDevPlugin }}
{{- if eq $plugin "intel" }}
sgx.intel.com/enclave: 1
sgx.intel.com/provision: 1
{{- with .Values.sgxEpcMem }}
sgx.intel.com/epc: {{ printf "%dMi" (int64 .) | quote }}
{{- end }}
{{- else if or (eq $plugin "scone") (eq $plugin "enabled") }}
sgx.k8s.io/sgx: 1
{{- else if eq $plugin "privileged" }}
{{- /* No device plugin: the devices are hostPath volumes of a privileged container. */}}
{{- else if eq $plugin "azure" }}
kubernetes.azure.com/sgx_epc_mem_in_MiB: {{ required "useSGXDevPlugin=azure needs sgxEpcMem (EPC memory in MiB), e.g. --set sgxEpcMem=10" .Values.sgxEpcMem | int64 }}
{{- end }}
{{- end }}

{{/*
Checks that values.schema.json cannot express with a clear message. Included by the DaemonSet.
*/}}
{{- define "las.validate" -}}
{{- if and (not .Values.state.hostPath) (ne .Values.mode "hw") (not .Values.state.allowEphemeral) }}
{{- fail (printf "state.hostPath is empty: in mode %q the platform secret would live in an emptyDir, and every pod restart would change the node's platform ID. Keep state.hostPath (default /var/lib/las), or set state.allowEphemeral=true if a changing platform ID is really what you want." .Values.mode) }}
{{- end }}
{{- if and (eq .Values.mode "hw") (eq .Values.useSGXDevPlugin "disabled") }}
{{- fail "mode=hw needs SGX devices, but useSGXDevPlugin=disabled gives the pod none. Set useSGXDevPlugin to your cluster's SGX device plugin (intel, scone, azure), or to privileged where no device plugin runs (a privileged pod with the host's sgxDevices, e.g. /dev/sgx_enclave and /dev/sgx_provision, or /dev/isgx)." }}
{{- end }}
{{- if and (eq .Values.mode "auto") (ne .Values.useSGXDevPlugin "disabled") }}
{{- fail (printf "mode=auto with useSGXDevPlugin=%s: the LAS would see an SGX device outside an enclave, where `auto` refuses to start rather than simulate. Choose mode=hw with the Gramine image (gramine/Dockerfile, docs/hardware.md) for hardware SGX, or mode=sim to simulate on purpose." .Values.useSGXDevPlugin) }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled=true needs service.enabled=true: a ServiceMonitor scrapes the endpoints of the Service." }}
{{- end }}
{{- if and (ne .Values.useSGXDevPlugin "disabled") (not (include "las.sgxNodeSelector" .)) }}
{{- $named := false }}
{{- range $k, $_ := .Values.nodeSelector | default dict }}{{ if ne $k "kubernetes.io/os" }}{{ $named = true }}{{ end }}{{ end }}
{{- if (.Values.affinity | default dict).nodeAffinity }}{{ $named = true }}{{ end }}
{{- if not $named }}
{{- fail (printf "useSGXDevPlugin=%s with an empty sgxNodeSelector and no nodeSelector or nodeAffinity naming the SGX nodes: the LAS pods would land on every node, stay Pending where no SGX device exists and stall every rollout. Leave sgxNodeSelector null (intel.feature.node.kubernetes.io/sgx: \"true\"), or set the labels of your SGX nodes in sgxNodeSelector, nodeSelector or affinity.nodeAffinity." .Values.useSGXDevPlugin) }}
{{- end }}
{{- end }}
{{- if and .Values.networkPolicy.enabled .Values.hostNetwork }}
{{- fail "networkPolicy.enabled=true with hostNetwork=true: NetworkPolicies do not apply to pods on the node's network, so the policy would promise a protection it does not give. Turn one of them off (a node firewall must guard the port of hostNetwork pods)." }}
{{- end }}
{{- if and (eq .Values.mode "hw") .Values.tests.image (eq .Values.tests.image .Values.image) }}
{{- fail "mode=hw: tests.image is the Gramine LAS image (image), which runs only the enclave LAS and has no las CLI. Set tests.image to this project's las image (scripts/build-image)." }}
{{- end }}
{{- end }}

{{/*
The image of the `helm test` hook, or nothing when no hook renders: tests.enabled, a LAS the
hook can reach (on the node's IP or through the Service), and an image with `las`. In mode hw
`image` is the Gramine image, which runs only the enclave LAS: the hook then needs tests.image
(this project's las image, which carries /usr/local/bin/las). NOTES print `helm test` only then.
*/}}
{{- define "las.testImage" -}}
{{- $image := .Values.tests.image | default (ternary "" .Values.image (eq .Values.mode "hw")) }}
{{- if and .Values.tests.enabled (or .Values.service.hostPort .Values.hostNetwork .Values.service.enabled) }}{{ $image }}{{ end }}
{{- end }}

{{/* The SGX nodes' labels: `sgxNodeSelector`, or Intel's NFD label where it is null. */}}
{{- define "las.sgxNodeSelector" -}}
{{- if kindIs "invalid" .Values.sgxNodeSelector }}intel.feature.node.kubernetes.io/sgx: "true"
{{- else }}{{ with .Values.sgxNodeSelector }}{{ toYaml . }}{{ end }}
{{- end }}
{{- end }}

{{/*
The nodeSelector of the LAS pods (and of the test hook, which must land where a LAS runs):
`nodeSelector`, plus `sgxNodeSelector` whenever the pods get SGX devices, since a pod that
requests a device no node offers stays Pending and stalls a DaemonSet rollout.
*/}}
{{- define "las.nodeSelector" -}}
{{- $sel := deepCopy (.Values.nodeSelector | default dict) }}
{{- if ne .Values.useSGXDevPlugin "disabled" }}
{{- $sel = merge $sel (include "las.sgxNodeSelector" . | fromYaml) }}
{{- end }}
{{- with $sel }}{{ toYaml . }}{{ end }}
{{- end }}

{{/*
Tolerations as Kubernetes wants them: each `value` a string (`--set tolerations[0].value=true`
gives a boolean). Argument: a list.
*/}}
{{- define "las.tolerationList" -}}
{{- range . }}
- {{- range $k, $v := . }}
  {{- if not (kindIs "invalid" $v) }}
  {{ $k }}: {{ if eq $k "tolerationSeconds" }}{{ $v | int64 }}{{ else }}{{ $v | toString | quote }}{{ end }}
  {{- end }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
The pods' tolerations: the optional SGX toleration, then `tolerations`, each `value` passed as
the string Kubernetes requires (`--set tolerations[0].value=true` gives a boolean).
*/}}
{{- define "las.tolerations" -}}
{{- $all := list }}
{{- if .Values.sgxToleration.enabled }}
{{- $all = append $all (dict "key" .Values.sgxToleration.key "operator" "Exists" "effect" "NoSchedule") }}
{{- end }}
{{- range .Values.tolerations }}
{{- $t := deepCopy . }}
{{- if hasKey $t "value" }}
{{- $_ := set $t "value" (toString $t.value) }}
{{- end }}
{{- $all = append $all $t }}
{{- end }}
{{- with $all }}
tolerations:
{{- include "las.tolerationList" . | nindent 2 }}
{{- end }}
{{- end }}
