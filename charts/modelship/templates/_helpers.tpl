{{/* Names are defined once here; Kubernetes names stop at 63 characters. */}}

{{- define "modelship.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelship.fullname" -}}
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

{{/* The operator's resources: <fullname>-operator, still within 63 characters. */}}
{{- define "modelship.operator.fullname" -}}
{{- printf "%s-operator" (include "modelship.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/* The tracking server's resources: <fullname>-tracking, still within 63 characters. */}}
{{- define "modelship.tracking.fullname" -}}
{{- printf "%s-tracking" (include "modelship.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{- define "modelship.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelship.labels" -}}
helm.sh/chart: {{ include "modelship.chart" . }}
{{ include "modelship.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelship
{{- end }}

{{- define "modelship.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelship.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "modelship.tracking.labels" -}}
helm.sh/chart: {{ include "modelship.chart" . }}
{{ include "modelship.tracking.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelship
{{- end }}

{{- define "modelship.tracking.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelship.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: tracking-server
{{- end }}

{{/* The tracking URL the operator hands to trial pods: operator.trackingUrl, else the
chart's tracking Service when tracking.enabled, else empty. */}}
{{- define "modelship.trackingUrl" -}}
{{- if .Values.operator.trackingUrl }}
{{- .Values.operator.trackingUrl }}
{{- else if .Values.tracking.enabled }}
{{- printf "http://%s.%s:%d" (include "modelship.tracking.fullname" .) .Release.Namespace (int .Values.tracking.service.port) }}
{{- end }}
{{- end }}

{{- define "modelship.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelship.operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modelship.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Pod Security "restricted": the pod-level and container-level securityContext of every pod of the chart. */}}
{{- define "modelship.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "modelship.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* The tracking server's backend store URL from its Secret (tracking.backendStoreUriSecret), as an env entry; nothing without one. */}}
{{- define "modelship.tracking.backendStoreUriEnv" -}}
{{- with .Values.tracking.backendStoreUriSecret }}
{{- if .name -}}
- name: MODELSHIP_TRACKING_BACKEND_STORE_URI
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- end }}

{{/* The namespace the helm test's sample ModelVersion goes to: the release's when the operator watches it. */}}
{{- define "modelship.testNamespace" -}}
{{- if or (not .Values.operator.watchNamespaces) (has .Release.Namespace .Values.operator.watchNamespaces) }}
{{- .Release.Namespace }}
{{- else }}
{{- first .Values.operator.watchNamespaces }}
{{- end }}
{{- end }}

{{/* The operator's selectorLabels as a label selector: k=v,k=v. */}}
{{- define "modelship.selector" -}}
{{- $pairs := list }}
{{- range $k, $v := include "modelship.selectorLabels" . | fromYaml }}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* Labels of the helm test's objects: never selected by the operator's or the tracking server's selectors. */}}
{{- define "modelship.testLabels" -}}
helm.sh/chart: {{ include "modelship.chart" . }}
app.kubernetes.io/name: {{ include "modelship.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelship
{{- end }}

{{/* "true" when the namespace (list $ "name") exists, or when there is no cluster to ask
(helm template: lookup returns nothing, not even the namespaces every cluster has). */}}
{{- define "modelship.namespaceExists" -}}
{{- $root := index . 0 }}
{{- if or (not (lookup "v1" "Namespace" "" "")) (lookup "v1" "Namespace" "" (index . 1)) }}true{{ end }}
{{- end }}
