{{/* Names and labels. */}}
{{- define "pytune.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pytune.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pytune.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pytune.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pytune.labels" -}}
{{ include "pytune.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "pytune.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pytune.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding tls.crt and tls.key. */}}
{{- define "pytune.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "existingSecret" -}}
{{- .Values.certificates.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "pytune.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Whether the server calls the Kubernetes API at all (and so needs its token). */}}
{{- define "pytune.callsTheApi" -}}
{{- or .Values.resolveConfigMaps .Values.resolveSecrets .Values.learnedDefaults.enabled -}}
{{- end -}}

{{/* The ConfigMap of learned defaults, in the release namespace. */}}
{{- define "pytune.learnedConfigMapName" -}}
{{- default (printf "%s-learned" (include "pytune.fullname" .)) .Values.learnedDefaults.configMapName -}}
{{- end -}}

{{- define "pytune.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* "1.31" from the kubernetesVersion value, else from the cluster (GKE minors look like "31+"). */}}
{{- define "pytune.kubernetesVersion" -}}
{{- if .Values.kubernetesVersion -}}
{{- .Values.kubernetesVersion -}}
{{- else -}}
{{- printf "%s.%s" (regexReplaceAll "[^0-9]" .Capabilities.KubeVersion.Major "") (regexReplaceAll "[^0-9]" .Capabilities.KubeVersion.Minor "") -}}
{{- end -}}
{{- end -}}

{{/*
The policy file: policy/default.yaml as it is when nothing is overridden, else the default with the
selector and the policy value deep-merged over it (maps merge, lists and scalars replace).
*/}}
{{- define "pytune.policy" -}}
{{- $text := .Files.Get "files/default-policy.yaml" -}}
{{- $default := fromYaml $text -}}
{{- $selector := dict "label" .Values.selector.label "value" (toString .Values.selector.value) -}}
{{- if and (empty .Values.policy) (eq (toJson $selector) (toJson $default.selector)) -}}
{{- $text -}}
{{- else -}}
{{- $merged := mergeOverwrite (deepCopy $default) (deepCopy .Values.policy) (dict "selector" $selector) -}}
# pytune policy: the default policy (policy/default.yaml) with this release's values merged over it.
{{ toYaml $merged }}
{{- end -}}
{{- end -}}

{{/* Namespace expressions every webhook entry carries. */}}
{{- define "pytune.namespaceExclusions" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values:
    {{- $names := concat (list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace) .Values.webhook.excludeNamespaces | uniq }}
    {{- range $names }}
    - {{ . | quote }}
    {{- end }}
- key: pytune.io/enabled
  operator: NotIn
  values: ["false"]
{{- end -}}

{{/* One webhook entry: (dict "root" $ "name" "..." "path" "/mutate" "audit" bool "caBundle" "..."). */}}
{{- define "pytune.webhookEntry" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
- name: {{ .name }}
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: {{ $v.webhook.failurePolicy }}
  timeoutSeconds: {{ $v.webhook.timeoutSeconds }}
  reinvocationPolicy: {{ $v.webhook.reinvocationPolicy }}
  matchPolicy: Equivalent
  rules:
    - operations: ["CREATE"]
      apiGroups: [""]
      apiVersions: ["v1"]
      resources: ["pods"]
      scope: Namespaced
  clientConfig:
    service:
      name: {{ include "pytune.fullname" $root }}
      namespace: {{ $root.Release.Namespace }}
      path: {{ .path }}
      port: {{ $v.service.port }}
    {{- if .caBundle }}
    caBundle: {{ .caBundle }}
    {{- end }}
  objectSelector:
    matchLabels:
      {{ $v.selector.label }}: {{ $v.selector.value | toString | quote }}
  namespaceSelector:
    matchExpressions:
      {{- include "pytune.namespaceExclusions" $root | nindent 6 }}
      {{- if .audit }}
      - key: pytune.io/mode
        operator: In
        values: ["audit"]
      {{- else }}
      {{- if eq $v.scope "namespaces" }}
      - key: pytune.io/enabled
        operator: In
        values: ["true"]
      {{- end }}
      {{- if $v.webhook.audit }}
      - key: pytune.io/mode
        operator: NotIn
        values: ["audit"]
      {{- end }}
      {{- end }}
{{- end -}}
