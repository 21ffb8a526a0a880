{{/* _helpers.tpl - names and labels shared by the templates. */}}
{{- define "akidb.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "akidb.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "akidb.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "akidb.adminSecret" -}}
{{- if .Values.bootstrapAdminKey.existingSecret -}}
{{ .Values.bootstrapAdminKey.existingSecret }}
{{- else -}}
{{ include "akidb.fullname" . }}-admin
{{- end -}}
{{- end -}}

{{- define "akidb.s3Secret" -}}
{{- if .Values.store.s3.existingSecret -}}
{{ .Values.store.s3.existingSecret }}
{{- else -}}
{{ include "akidb.fullname" . }}-s3
{{- end -}}
{{- end -}}
