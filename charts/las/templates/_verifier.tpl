{{/*
Labels of the verification service's objects. Its own `app.kubernetes.io/name`, so that the
platform-ID tooling, which selects `app.kubernetes.io/name=las` pods, never sees them.
*/}}
{{- define "las.verifierSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-verifier" (include "las.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "las.verifierLabels" -}}
helm.sh/chart: {{ include "las.chart" . }}
{{ include "las.verifierSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: verifier
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
