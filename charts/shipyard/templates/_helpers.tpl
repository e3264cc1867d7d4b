{{/* Names, labels and the pod/container settings every Shipyard workload shares. */}}

{{- define "shipyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shipyard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "shipyard.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "shipyard.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of everything; `part-of: shipyard` is also what the NetworkPolicies admit. */}}
{{- define "shipyard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "shipyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shipyard
{{- end -}}

{{/* selectorLabels: (dict "root" $ "component" "ingest") */}}
{{- define "shipyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shipyard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* image: (dict "root" $ "image" .Values.operator.image) */}}
{{- define "shipyard.image" -}}
{{- printf "%s%s:%s" .root.Values.imageRegistry .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* Pod Security Standards "restricted": non-root, default seccomp profile. */}}
{{- define "shipyard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "shipyard.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* nodePlacement: (dict "root" $ "pool" "cpu"): nodeSelector and tolerations of a node pool. */}}
{{- define "shipyard.nodePlacement" -}}
{{- $pool := get .root.Values.nodePools .pool -}}
{{- if not $pool -}}
{{- fail (printf "nodePool %q is not defined under nodePools (have: %s)" .pool (keys .root.Values.nodePools | sortAlpha | join ", ")) -}}
{{- end -}}
{{- with $pool.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pool.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Environment shared by the operator and the services: storage, credentials, telemetry, auth. */}}
{{- define "shipyard.commonEnv" -}}
- name: SHIPYARD_STORAGE_ROOT
  value: {{ .Values.storage.root | quote }}
- name: SHIPYARD_S3_ENDPOINT_URL
  value: {{ .Values.storage.s3.endpoint | quote }}
- name: SHIPYARD_S3_REGION
  value: {{ .Values.storage.s3.region | quote }}
{{- with .Values.storage.s3.credentialsSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: AWS_ACCESS_KEY_ID}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: AWS_SECRET_ACCESS_KEY}
{{- end }}
- name: SHIPYARD_LOG_LEVEL
  value: {{ .Values.telemetry.logLevel | quote }}
- name: SHIPYARD_LOG_FORMAT
  value: {{ .Values.telemetry.logFormat | quote }}
- name: SHIPYARD_METRICS_PORT
  value: {{ .Values.telemetry.metricsPort | quote }}
{{- with .Values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.auth.tokenSecret }}
- name: SHIPYARD_AUTH_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.auth.tokenKey | quote }}}
{{- end }}
{{- end -}}

{{/* Writable scratch space under a read-only root filesystem. */}}
{{- define "shipyard.scratchVolumes" -}}
- name: tmp
  emptyDir: {}
- name: data
  emptyDir: {}
{{- end -}}

{{- define "shipyard.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /data
{{- end -}}
