{{/*
Labels of the verification service's objects. Its own `app.kubernetes.io/name`, so that the
platform-ID tooling, which selects `app.kubernetes.io/name=las` pods, never sees them.
*/}}
{{- define "las.verifierSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-verifier" (include "las.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The name of the verification service's objects. */}}
{{- define "las.verifierName" -}}
{{- printf "%s-verifier" (include "las.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The labels of the service's pods: only labels that stay the same over a chart-only version
bump (no `helm.sh/chart`, no version), so that such a bump does not restart the service.
*/}}
{{- define "las.verifierPodLabels" -}}
{{ include "las.verifierSelectorLabels" . }}
app.kubernetes.io/component: verifier
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "las.verifierLabels" -}}
helm.sh/chart: {{ include "las.chart" . }}
{{ include "las.verifierPodLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
