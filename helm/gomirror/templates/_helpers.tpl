{{/* Names and labels. */}}
{{- define "gomirror.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gomirror.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "gomirror.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gomirror.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gomirror.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gomirror.labels" -}}
helm.sh/chart: {{ include "gomirror.chart" . }}
{{ include "gomirror.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "gomirror.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gomirror.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gomirror.image" -}}
{{- $tag := .Values.image.tag -}}
{{- if not $tag -}}
{{- $tag = .Chart.AppVersion -}}
{{- if .Values.image.vcs -}}{{- $tag = printf "%s-vcs" $tag -}}{{- end -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The port of config.listen ("0.0.0.0:3000" -> 3000). */}}
{{- define "gomirror.port" -}}
{{- regexFind "[0-9]+$" (toString .Values.config.listen) | default "3000" -}}
{{- end -}}

{{/* Fewest replicas that run: 1 or more. */}}
{{- define "gomirror.minReplicas" -}}
{{- if .Values.autoscaling.enabled -}}{{- .Values.autoscaling.minReplicas | int -}}{{- else -}}{{- .Values.replicaCount | int -}}{{- end -}}
{{- end -}}

{{/* "true" when more than one replica can run. */}}
{{- define "gomirror.multi" -}}
{{- if or (gt (.Values.replicaCount | int) 1) (and .Values.autoscaling.enabled (gt (.Values.autoscaling.maxReplicas | int) 1)) -}}true{{- end -}}
{{- end -}}

{{- define "gomirror.fsStorage" -}}
{{- if hasPrefix "fs://" (toString .Values.config.storage) -}}true{{- end -}}
{{- end -}}

{{/* "true" when the go command is needed: private patterns (unless
     private_upstream, in config or extraEnv, sends them to another
     gomirror), or `direct` as an element of the upstream chain. */}}
{{- define "gomirror.vcsNeeded" -}}
{{- $direct := false -}}
{{- range (regexSplit "[,|]" (toString .Values.config.upstream) -1) -}}
{{- if eq (trim .) "direct" -}}{{- $direct = true -}}{{- end -}}
{{- end -}}
{{- $privUp := ne (toString .Values.config.private_upstream) "" -}}
{{- range .Values.extraEnv -}}
{{- if eq (toString .name) "GOMIRROR_PRIVATE_UPSTREAM" -}}{{- $privUp = true -}}{{- end -}}
{{- end -}}
{{- if or (and (ne (toString .Values.config.private) "") (not $privUp)) $direct -}}true{{- end -}}
{{- end -}}

{{/* Where secret files are mounted. */}}
{{- define "gomirror.secretDir" -}}/etc/gomirror/secrets{{- end -}}
{{- define "gomirror.configDir" -}}/etc/gomirror/config{{- end -}}

{{/*
The secret files the pod gets, as a list of
  {key: <file name under secretDir>, secret: <Secret name>, from: <key in that Secret>, sets: <gomirror key>, rollout: bool}
from the chart's own Secret (inline values) or the named existingSecrets.
*/}}
{{- define "gomirror.secretFiles" -}}
{{- $own := include "gomirror.fullname" . -}}
{{- $files := list -}}
{{- with .Values.s3 -}}
{{- if .existingSecret -}}
{{- $files = append $files (dict "key" "s3_access_key" "secret" .existingSecret "from" .existingSecretAccessKeyKey "sets" "s3_access_key_file" "rollout" true) -}}
{{- $files = append $files (dict "key" "s3_secret_key" "secret" .existingSecret "from" .existingSecretSecretKeyKey "sets" "s3_secret_key_file" "rollout" true) -}}
{{- else if or .accessKey .secretKey -}}
{{- $files = append $files (dict "key" "s3_access_key" "secret" $own "from" "s3_access_key" "sets" "s3_access_key_file" "rollout" true "value" .accessKey) -}}
{{- $files = append $files (dict "key" "s3_secret_key" "secret" $own "from" "s3_secret_key" "sets" "s3_secret_key_file" "rollout" true "value" .secretKey) -}}
{{- end -}}
{{- end -}}
{{- with .Values.redis -}}
{{- if .existingSecret -}}
{{- $files = append $files (dict "key" "redis_password" "secret" .existingSecret "from" .existingSecretPasswordKey "sets" "redis_password_file" "rollout" true) -}}
{{- else if .password -}}
{{- $files = append $files (dict "key" "redis_password" "secret" $own "from" "redis_password" "sets" "redis_password_file" "rollout" true "value" .password) -}}
{{- end -}}
{{- end -}}
{{- with .Values.admin -}}
{{- if .existingSecret -}}
{{- $files = append $files (dict "key" "admin_token" "secret" .existingSecret "from" .existingSecretTokenKey "sets" "admin_token_file" "rollout" true) -}}
{{- else if .token -}}
{{- $files = append $files (dict "key" "admin_token" "secret" $own "from" "admin_token" "sets" "admin_token_file" "rollout" true "value" .token) -}}
{{- end -}}
{{- end -}}
{{- $authSets := dict "htpasswd" "auth_htpasswd" "tokens" "auth_tokens" "groups" "auth_groups" "rules" "auth_rules" "auth_ldap_bind_password" "auth_ldap_bind_password_file" -}}
{{- with .Values.auth -}}
{{- if .existingSecret -}}
{{- range .existingSecretKeys -}}
{{- $files = append $files (dict "key" . "secret" $.Values.auth.existingSecret "from" . "sets" (get $authSets .) "rollout" (eq . "auth_ldap_bind_password")) -}}
{{- end -}}
{{- else -}}
{{- $inline := dict "htpasswd" .htpasswd "tokens" .tokens "groups" .groups "rules" .rules "auth_ldap_bind_password" .ldapBindPassword -}}
{{- range $k := list "htpasswd" "tokens" "groups" "rules" "auth_ldap_bind_password" -}}
{{- if get $inline $k -}}
{{- $files = append $files (dict "key" $k "secret" $own "from" $k "sets" (get $authSets $k) "rollout" (eq $k "auth_ldap_bind_password") "value" (get $inline $k)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $vcsSets := dict "netrc" "vcs_netrc" "gitconfig" "vcs_gitconfig" "ssh_key" "vcs_ssh_key" "known_hosts" "" -}}
{{- with .Values.vcs -}}
{{- if .existingSecret -}}
{{- range .existingSecretKeys -}}
{{- $files = append $files (dict "key" . "secret" $.Values.vcs.existingSecret "from" . "sets" (get $vcsSets .) "rollout" true) -}}
{{- end -}}
{{- else -}}
{{- $inline := dict "netrc" .netrc "gitconfig" .gitconfig "ssh_key" .sshKey "known_hosts" .knownHosts -}}
{{- range $k := list "netrc" "gitconfig" "ssh_key" "known_hosts" -}}
{{- if get $inline $k -}}
{{- $files = append $files (dict "key" $k "secret" $own "from" $k "sets" (get $vcsSets $k) "rollout" true "value" (get $inline $k)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* The version policy's rules: re-read on change, no rollout. */ -}}
{{- if .Values.policy.rules -}}
{{- $files = append $files (dict "key" "policy" "secret" $own "from" "policy" "sets" "policy" "rollout" false "value" .Values.policy.rules) -}}
{{- end -}}
{{- toYaml (dict "files" $files) -}}
{{- end -}}

{{/*
The effective configuration: .Values.config with the secret-file paths
filled in, as YAML (a map of gomirror keys). Fails on secrets in config,
credentials in URLs and conflicting paths.
*/}}
{{- define "gomirror.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $secretKeys := dict "s3_access_key" "s3.accessKey (or s3.existingSecret)" "s3_secret_key" "s3.secretKey (or s3.existingSecret)" "admin_token" "admin.token (or admin.existingSecret)" "redis_password" "redis.password (or redis.existingSecret)" "auth_ldap_bind_password" "auth.ldapBindPassword (or auth.existingSecret)" -}}
{{- range $k, $where := $secretKeys -}}
{{- if ne (toString (get $cfg $k | default "")) "" -}}
{{- fail (printf "config.%s is a secret and would land in the ConfigMap: set %s instead" $k $where) -}}
{{- end -}}
{{- $_ := unset $cfg $k -}}
{{- end -}}
{{- range $k := list "upstream" "vcs_http_proxy" "sumdb" "s3_endpoint" -}}
{{- if regexMatch "[a-zA-Z][a-zA-Z0-9+.-]*://[^/@|,]+@" (toString (get $cfg $k)) -}}
{{- fail (printf "config.%s holds credentials in a URL (user:password@), which would land in the ConfigMap: use upstreamFromSecret for an upstream with credentials, or drop them" $k) -}}
{{- end -}}
{{- end -}}
{{- if regexMatch "^redis(-sentinel)?://[^/]*@" (toString $cfg.meta) -}}
{{- fail "config.meta holds a password, which would land in the ConfigMap: set redis.password (or redis.existingSecret) and leave it out of the URL" -}}
{{- end -}}
{{- if .Values.upstreamFromSecret.name -}}
{{- /* GOMIRROR_UPSTREAM from the Secret overrides the file: leave the
       chain out so that nobody reads a wrong one here. */ -}}
{{- $_ := unset $cfg "upstream" -}}
{{- end -}}
{{- $sdir := include "gomirror.secretDir" . -}}
{{- range (fromYaml (include "gomirror.secretFiles" .)).files -}}
{{- if .sets -}}
{{- $want := printf "%s/%s" $sdir .key -}}
{{- $have := toString (get $cfg .sets | default "") -}}
{{- if and (ne $have "") (ne $have $want) -}}
{{- fail (printf "config.%s is set to %s, but the chart mounts %s there from a Secret: leave config.%s empty" .sets $have $want .sets) -}}
{{- end -}}
{{- $_ := set $cfg .sets $want -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The config file: key = "value" lines, sorted by key. */}}
{{- define "gomirror.configFile" -}}
# gomirror configuration, rendered by the Helm chart from .Values.config
# (gomirror --help lists the keys). Secrets are not here: *_file keys name
# files mounted from Secrets.
{{- if .Values.upstreamFromSecret.name }}
# upstream: from the environment (GOMIRROR_UPSTREAM, Secret {{ .Values.upstreamFromSecret.name }}).
{{- end }}
{{- $cfg := fromYaml (include "gomirror.config" .) }}
{{- range $k := keys $cfg | sortAlpha }}
{{- $v := get $cfg $k }}
{{- if kindIs "invalid" $v }}
{{- else if kindIs "bool" $v }}
{{ $k }} = {{ ternary "true" "false" $v }}
{{- else if or (kindIs "float64" $v) (kindIs "int64" $v) (kindIs "int" $v) }}
{{ $k }} = {{ int64 $v }}
{{- else }}
{{- $s := toString $v }}
{{- if or (contains "\n" $s) (contains "\r" $s) }}
{{- fail (printf "config.%s: a value cannot span lines" $k) }}
{{- end }}
{{ $k }} = "{{ $s }}"
{{- end }}
{{- end }}
{{ end -}}

{{/* Memory in MiB: hot cache + base (+ go commands). */}}
{{- define "gomirror.memoryMiB" -}}
{{- $m := add (int64 .Values.config.hot_cache_mb) (int64 .Values.resources.memoryBaseMiB) -}}
{{- if include "gomirror.vcsNeeded" . -}}
{{- $m = add $m (mul (int64 .Values.config.vcs_workers) (int64 .Values.resources.vcsWorkerMiB)) -}}
{{- end -}}
{{- $m -}}
{{- end -}}

{{- define "gomirror.gracePeriod" -}}
{{- $floor := add (int64 .Values.config.drain_delay) (int64 .Values.config.drain_timeout) -}}
{{- if .Values.terminationGracePeriodSeconds -}}
{{- if le (int64 .Values.terminationGracePeriodSeconds) $floor -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be above config.drain_delay + config.drain_timeout (%d), or Kubernetes kills gomirror mid-drain" (int64 .Values.terminationGracePeriodSeconds) $floor) -}}
{{- end -}}
{{- int64 .Values.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add $floor 10 -}}
{{- end -}}
{{- end -}}

{{/* "true" when access control is on (an identity source is configured). */}}
{{- define "gomirror.authOn" -}}
{{- $cfg := fromYaml (include "gomirror.config" .) -}}
{{- if or (ne (toString $cfg.auth_htpasswd) "") (ne (toString $cfg.auth_tokens) "") (ne (toString $cfg.auth_ldap_url) "") -}}true{{- end -}}
{{- end -}}

{{/* Checks that span values; rendered (as nothing) by the Deployment. */}}
{{- define "gomirror.validate" -}}
{{- $multi := include "gomirror.multi" . -}}
{{- if and $multi (eq (toString .Values.config.meta) "memory") -}}
{{- fail "more than one replica needs config.meta = redis://... or redis-sentinel://... (fetch locks, lists and counters are shared through Redis); with meta=memory run replicaCount: 1 and autoscaling off" -}}
{{- end -}}
{{- if and $multi (include "gomirror.fsStorage" .) (not (has "ReadWriteMany" .Values.persistence.accessModes)) -}}
{{- fail "more than one replica needs shared storage: config.storage = s3://bucket/prefix (or a ReadWriteMany volume in persistence.accessModes)" -}}
{{- end -}}
{{- if include "gomirror.fsStorage" . -}}
{{- $path := trimPrefix "fs://" (toString .Values.config.storage) -}}
{{- if not (hasPrefix (printf "%s/" (trimSuffix "/" .Values.persistence.mountPath)) $path) -}}
{{- fail (printf "config.storage (%s) must be an absolute path below persistence.mountPath (%s), where the data volume (a PersistentVolumeClaim, or an emptyDir with persistence.enabled false) is mounted; anything else is the read-only root file system" .Values.config.storage .Values.persistence.mountPath) -}}
{{- end -}}
{{- end -}}
{{- if and (include "gomirror.vcsNeeded" .) (not .Values.image.vcs) -}}
{{- fail "config.private (or `direct` in config.upstream) runs the go command, which the default image lacks: build deploy/Dockerfile with --build-arg VCS=true, push it with the -vcs tag and set image.vcs: true" -}}
{{- end -}}
{{- if and .Values.auth.existingSecret (not .Values.auth.existingSecretKeys) -}}
{{- fail "auth.existingSecret needs auth.existingSecretKeys: which of htpasswd, tokens, groups, rules, auth_ldap_bind_password it holds" -}}
{{- end -}}
{{- if and .Values.vcs.existingSecret (not .Values.vcs.existingSecretKeys) -}}
{{- fail "vcs.existingSecret needs vcs.existingSecretKeys: which of netrc, gitconfig, ssh_key, known_hosts it holds" -}}
{{- end -}}
{{- if and (not .Values.s3.existingSecret) (or .Values.s3.accessKey .Values.s3.secretKey) (not (and .Values.s3.accessKey .Values.s3.secretKey)) -}}
{{- fail "s3.accessKey and s3.secretKey go together" -}}
{{- end -}}
{{- if and .Values.gc.enabled (include "gomirror.fsStorage" .) (not (and .Values.persistence.enabled (has "ReadWriteMany" .Values.persistence.accessModes))) -}}
{{- fail "gc.enabled runs gomirror gc in a pod of its own, which cannot reach a ReadWriteOnce volume or an emptyDir the replica holds: use s3:// storage, a ReadWriteMany volume, or POST /admin/gc instead" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) -}}
{{- fail "autoscaling.maxReplicas must be at least autoscaling.minReplicas" -}}
{{- end -}}
{{- $_ := include "gomirror.gracePeriod" . -}}
{{- $__ := include "gomirror.config" . -}}
{{- end -}}
