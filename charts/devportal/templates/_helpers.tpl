{{/*
The image reference: repository@digest when a digest is given, else repository:tag (the tag
defaults to the chart's appVersion).
*/}}
{{- define "devportal.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}
