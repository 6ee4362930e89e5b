{{/*
The chart name: the `app.kubernetes.io/name` label. Kept at `las` by default because the
platform-ID tooling (`las platform-ids`, the deployment page's get_platform_ids) selects pods by
`app.kubernetes.io/name=las,app.kubernetes.io/instance=<release>`.
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

{{- define "las.labels" -}}
helm.sh/chart: {{ include "las.chart" . }}
{{ include "las.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: attestation
app.kubernetes.io/managed-by: {{ .Release.Service }}
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
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled=true needs service.enabled=true: a ServiceMonitor scrapes the endpoints of the Service." }}
{{- end }}
{{- end }}
