#!/usr/bin/env bash
# End-to-end tests of pytune against a real cluster (tests/e2e/README.md).
#
#   KUBECONFIG=~/.kube/config tests/e2e/run.sh
#
# Without KUBECONFIG it prints why it is skipped and exits 0. Environment:
#   PYTUNE_E2E_MODE   local (default): runs `pytune serve` on this machine and registers a url: webhook;
#                     chart: installs charts/pytune with helm (needs PYTUNE_E2E_IMAGE in the cluster).
#   PYTUNE_E2E_HOST   local mode: the address at which the API server reaches this machine
#                     (default 127.0.0.1; for kind, the Docker network's gateway, see the README).
#   PYTUNE_E2E_PORT   local mode: the webhook port (default 9443); PYTUNE_E2E_ADMIN_PORT the admin
#                     port on 127.0.0.1 (default 9080).
#   PYTUNE_BIN        local mode: the pytune binary (default target/release/pytune, built if missing).
#   PYTUNE_E2E_IMAGE  chart mode: repository:tag of a pytune image the nodes can pull.
#   PYTUNE_HELM       chart mode: the helm binary (default target/tools/bin/helm, else helm on PATH).
#   PYTUNE_E2E_KEEP   1: leave the namespaces and the webhook for inspection.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -z ${KUBECONFIG:-} ]]; then
    echo "e2e: skipped — KUBECONFIG is not set (point it at a test cluster, e.g. kind; see tests/e2e/README.md)"
    exit 0
fi

mode=${PYTUNE_E2E_MODE:-local}
host=${PYTUNE_E2E_HOST:-127.0.0.1}
port=${PYTUNE_E2E_PORT:-9443}
run_id=$(date +%s)-$$
ns_on=pytune-e2e-on-$run_id
ns_off=pytune-e2e-off-$run_id
ns_audit=pytune-e2e-audit-$run_id
ns_system=pytune-e2e-system-$run_id
webhook_name=pytune-e2e-$run_id
work=$(mktemp -d)
server_pid=""
passed=0
failed=0

log() { echo "e2e: $*" >&2; }
die() {
    log "$*"
    exit 1
}

case $mode in
local | chart) ;;
*) die "PYTUNE_E2E_MODE must be local or chart, not $mode" ;;
esac
command -v kubectl >/dev/null || die "kubectl is not on PATH"
kubectl version >/dev/null 2>&1 || die "the cluster in KUBECONFIG=$KUBECONFIG does not answer (kubectl version)"

cleanup() {
    local status=$?
    if [[ ${PYTUNE_E2E_KEEP:-0} == 1 ]]; then
        log "kept: namespaces $ns_on $ns_off $ns_audit, webhook $webhook_name, files in $work"
    else
        kubectl delete mutatingwebhookconfiguration "$webhook_name" --ignore-not-found >/dev/null 2>&1 || true
        if [[ $mode == chart ]]; then
            "${helm:-helm}" uninstall "$webhook_name" -n "$ns_system" >/dev/null 2>&1 || true
        fi
        kubectl delete namespace "$ns_on" "$ns_off" "$ns_audit" "$ns_system" \
            --ignore-not-found --wait=false >/dev/null 2>&1 || true
        rm -rf "$work"
    fi
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    exit "$status"
}
trap cleanup EXIT

# --- namespaces: opted in, not opted in, audit ---------------------------------------------------
kubectl create namespace "$ns_on" >/dev/null
kubectl create namespace "$ns_off" >/dev/null
kubectl create namespace "$ns_audit" >/dev/null
kubectl label namespace "$ns_on" pytune.io/enabled=true "pytune-e2e=$run_id" >/dev/null
kubectl label namespace "$ns_off" "pytune-e2e=$run_id" >/dev/null
kubectl label namespace "$ns_audit" pytune.io/mode=audit "pytune-e2e=$run_id" >/dev/null

# --- pytune and its webhook ----------------------------------------------------------------------
start_local() {
    local bin=${PYTUNE_BIN:-target/release/pytune}
    if [[ ! -x $bin ]]; then
        log "building $bin (cargo build --release)"
        cargo build --release --quiet --bin pytune
    fi
    local san="IP:$host" ip_re='^[0-9.]+$|:'
    [[ $host =~ $ip_re ]] || san="DNS:$host"
    certs/make-certs -a "$san" "$work/certs" >/dev/null 2>"$work/make-certs.log" ||
        die "certs/make-certs failed: $(cat "$work/make-certs.log")"
    # Learned defaults from a ConfigMap of this run, read with the kubeconfig's credentials.
    "$bin" serve --listen "$host:$port" --admin-listen "127.0.0.1:${PYTUNE_E2E_ADMIN_PORT:-9080}" \
        --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" \
        --learned-defaults "$ns_on/pytune-learned" >"$work/serve.log" 2>&1 &
    server_pid=$!
    local ca_bundle
    ca_bundle=$(cat "$work/certs/ca.bundle")
    # The chart's namespaces-scope selectors, narrowed to this run's namespaces so that nothing
    # else in the cluster is sent to a webhook on a developer machine. failurePolicy Fail: a
    # broken webhook shows as an error here instead of silently unchanged Pods.
    entry() { # name path expressions...
        cat <<YAML
  - name: $1
    admissionReviewVersions: ["v1"]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 5
    reinvocationPolicy: IfNeeded
    rules:
      - { operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: Namespaced }
    clientConfig:
      url: https://$host:$port$2
      caBundle: $ca_bundle
    objectSelector:
      matchLabels: { pytune.io/runtime: python }
    namespaceSelector:
      matchExpressions:
        - { key: pytune-e2e, operator: In, values: ["$run_id"] }
        - { key: pytune.io/enabled, operator: NotIn, values: ["false"] }
$3
YAML
    }
    {
        echo "apiVersion: admissionregistration.k8s.io/v1"
        echo "kind: MutatingWebhookConfiguration"
        echo "metadata: { name: $webhook_name }"
        echo "webhooks:"
        entry mutate.pytune.io /mutate '        - { key: pytune.io/enabled, operator: In, values: ["true"] }
        - { key: pytune.io/mode, operator: NotIn, values: ["audit"] }'
        entry audit.pytune.io /audit '        - { key: pytune.io/mode, operator: In, values: ["audit"] }'
    } >"$work/webhook.yaml"
    sleep 1
    kill -0 "$server_pid" 2>/dev/null || die "pytune serve exited: $(cat "$work/serve.log")"
    kubectl apply -f "$work/webhook.yaml" >/dev/null
}

start_chart() {
    [[ -n ${PYTUNE_E2E_IMAGE:-} ]] || die "chart mode needs PYTUNE_E2E_IMAGE=repository:tag (see tests/e2e/README.md)"
    helm=${PYTUNE_HELM:-target/tools/bin/helm}
    [[ -x $helm ]] || helm=$(command -v helm) || die "no helm: run scripts/install-helm or set PYTUNE_HELM"
    kubectl create namespace "$ns_system" >/dev/null
    "$helm" install "$webhook_name" charts/pytune -n "$ns_system" --wait --timeout 3m \
        --set image.repository="${PYTUNE_E2E_IMAGE%:*}" --set image.tag="${PYTUNE_E2E_IMAGE##*:}" \
        --set image.pullPolicy=IfNotPresent >"$work/helm.log" 2>&1 ||
        die "helm install failed: $(cat "$work/helm.log")"
    # The release name contains "pytune", so the chart names its objects (and the webhook) after it.
}


# --- helpers ---------------------------------------------------------------------------------------
# pod NAME [LABELED] [ANNOTATIONS-YAML] [ENV-YAML]: a Pod manifest on stdout.
pod() {
    local labels="" annotations="" env=""
    [[ ${2:-yes} == yes ]] && labels="  labels: { pytune.io/runtime: python }"
    [[ -n ${3:-} ]] && annotations="  annotations: { $3 }"
    [[ -n ${4:-} ]] && env="      env: [ $4 ]"
    cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $1
$labels
$annotations
spec:
  containers:
    - name: app
      image: python:3.12-slim
      command: ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]
      ports: [{ containerPort: 8000 }]
$env
YAML
}

check() { # description, then a command that succeeds when the check holds
    local what=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   $what"
    else
        failed=$((failed + 1))
        echo "FAIL $what"
    fi
}

get() { kubectl -n "$1" get pod "$2" -o "jsonpath=$3"; }
injected() { [[ -n $(get "$1" "$2" '{.metadata.annotations.pytune\.io/injected}') ]]; }
not_injected() { ! injected "$@"; }
env_of() { get "$1" "$2" "{.spec.containers[0].env[?(@.name==\"$3\")].value}"; }
has_env() { [[ -n $(env_of "$1" "$2" "$3") ]]; }
no_env() { ! has_env "$@"; }
env_is() { [[ $(env_of "$1" "$2" "$3") == "$4" ]]; }
has_memory_request() { [[ -n $(get "$1" "$2" '{.spec.containers[0].resources.requests.memory}') ]]; }
create() {
    pod "${@:2}" | kubectl -n "$1" create -f - 2>"$work/create-$2.err" >/dev/null ||
        die "creating Pod $2 in $1 failed: $(cat "$work/create-$2.err")"
}

# A Python Pod created before pytune is registered: `pytune audit --cluster` must report it missed.
create "$ns_on" early

if [[ $mode == local ]]; then start_local; else start_chart; fi

# The API server picks up a new webhook configuration within a second or two: wait for it.
deadline=$((SECONDS + 60))
until pod probe | kubectl -n "$ns_on" create --dry-run=server -o yaml -f - 2>/dev/null | grep -q 'pytune.io/injected'; do
    if ((SECONDS > deadline)); then
        [[ -f $work/serve.log ]] && cat "$work/serve.log" >&2
        die "pytune did not mutate a dry-run Pod within 60 s: is the webhook reachable from the API server? (PYTUNE_E2E_HOST=$host)"
    fi
    sleep 2
done

# --- the checks ------------------------------------------------------------------------------------
create "$ns_on" web
check "a Python Pod in an opted-in namespace records what pytune added" injected "$ns_on" web
check "it gets PYTHONUNBUFFERED" env_is "$ns_on" web PYTHONUNBUFFERED 1
check "it gets a memory request" has_memory_request "$ns_on" web
check "it gets WEB_CONCURRENCY" has_env "$ns_on" web WEB_CONCURRENCY

create "$ns_on" plain no
check "an unlabeled Pod is not changed" not_injected "$ns_on" plain
check "an unlabeled Pod gets no env" no_env "$ns_on" plain PYTHONUNBUFFERED

create "$ns_off" elsewhere
check "a Python Pod in a namespace that did not opt in is not changed" not_injected "$ns_off" elsewhere

pod dry | kubectl -n "$ns_on" apply --dry-run=server -o yaml -f - >"$work/dry.yaml" 2>"$work/dry.err"
check "kubectl apply --dry-run=server shows the annotation" grep -q 'pytune.io/injected' "$work/dry.yaml"
check "kubectl apply --dry-run=server shows PYTHONUNBUFFERED" grep -q 'PYTHONUNBUFFERED' "$work/dry.yaml"
check "kubectl apply --dry-run=server creates nothing" \
    bash -c "! kubectl -n '$ns_on' get pod dry >/dev/null 2>&1"

create "$ns_audit" audited
check "a Pod in an audit namespace is created with warnings" grep -q 'Warning: pytune audit' "$work/create-audited.err"
check "a Pod in an audit namespace is not changed" not_injected "$ns_audit" audited
check "a Pod in an audit namespace gets no env" no_env "$ns_audit" audited PYTHONUNBUFFERED

create "$ns_on" optout yes '"pytune.io/mode": "off"'
check "pytune.io/mode: off leaves the Pod alone" not_injected "$ns_on" optout
check "pytune.io/mode: off adds no env" no_env "$ns_on" optout PYTHONUNBUFFERED

create "$ns_on" skipenv yes '"pytune.io/skip": "env"'
check "pytune.io/skip: env adds no env" no_env "$ns_on" skipenv PYTHONUNBUFFERED
check "pytune.io/skip: env still adds resources" has_memory_request "$ns_on" skipenv

create "$ns_on" mine yes "" '{ name: PYTHONUNBUFFERED, value: "0" }'
check "a value the Pod sets is kept" env_is "$ns_on" mine PYTHONUNBUFFERED 0

# --- pytune audit --cluster: what pytune did and what it missed -----------------------------------
audit_bin=${PYTUNE_BIN:-target/release/pytune}
[[ -x $audit_bin ]] || cargo build --release --quiet || die "cannot build $audit_bin"
# class_of POD: the class `pytune audit --cluster` gives the Pod (missed, mutated, ...).
class_of() {
    "$audit_bin" audit --cluster -n "$ns_on" --output json 2>/dev/null |
        python3 -c 'import json, sys
for w in json.load(sys.stdin)["workloads"]:
    if w["workload"] == "Pod/" + sys.argv[1]:
        print(" ".join(w["pods"]))' "$1"
}
# --- a Secret pytune does not read: the count is a default the Secret's value overrides ----------
# One Secret holds WEB_CONCURRENCY, the other does not. The API server must accept the second,
# optional entry of the same name; where a node runs the Pods, the kubelet gives each container
# the Secret's value, or pytune's where the Secret has none (the container prints it, then fails
# to exec gunicorn, which the image lacks).
kubectl -n "$ns_on" create secret generic sized --from-literal=WEB_CONCURRENCY=7 >/dev/null
kubectl -n "$ns_on" create secret generic credentials --from-literal=DATABASE_URL=postgres://db >/dev/null
secret_pod() { # NAME SECRET
    cat <<YAML
apiVersion: v1
kind: Pod
metadata: { name: $1, labels: { pytune.io/runtime: python } }
spec:
  restartPolicy: Never
  containers:
    - name: app
      image: python:3.12-slim
      command: ["sh", "-c", "echo WEB_CONCURRENCY=\$WEB_CONCURRENCY; exec gunicorn --bind 0.0.0.0:8000 app:app"]
      ports: [{ containerPort: 8000 }]
      envFrom: [{ secretRef: { name: $2 } }]
YAML
}
secret_pod from-secret sized | kubectl -n "$ns_on" create -f - >/dev/null 2>"$work/create-from-secret.err" ||
    die "creating Pod from-secret failed: $(cat "$work/create-from-secret.err")"
secret_pod default-count credentials | kubectl -n "$ns_on" create -f - >/dev/null 2>"$work/create-default-count.err" ||
    die "creating Pod default-count failed: $(cat "$work/create-default-count.err")"
references() { get "$1" "$2" '{.spec.containers[0].env[?(@.name=="WEB_CONCURRENCY")].valueFrom.secretKeyRef.name}'; }
check "a count an unread Secret may hold is added with a reference to it" test "$(references "$ns_on" from-secret)" == sized
check "pytune's count comes first" has_env "$ns_on" from-secret WEB_CONCURRENCY
# printed WEB_CONCURRENCY of POD once its container ran; empty without a node to run it.
printed() {
    local deadline=$((SECONDS + 90)) line=""
    while [[ -z $line ]] && ((SECONDS < deadline)); do
        line=$(kubectl -n "$ns_on" logs "$1" 2>/dev/null | grep -m1 '^WEB_CONCURRENCY=' || true)
        [[ -z $line ]] && sleep 3
    done
    echo "${line#WEB_CONCURRENCY=}"
}
from_secret=$(printed from-secret)
if [[ -n $from_secret ]]; then
    check "the kubelet gives the Secret's count" test "$from_secret" == 7
    check "and pytune's where the Secret has none" \
        test "$(printed default-count)" == "$(env_of "$ns_on" default-count WEB_CONCURRENCY)"
else
    log "no node ran the Secret Pods within 90 s: the kubelet's side is not checked"
fi

check "audit --cluster reports the Pod created before pytune as missed" test "$(class_of early)" == missed
check "audit --cluster reports a Pod pytune changed as mutated" test "$(class_of web)" == mutated
kubectl -n "$ns_on" delete pod early --wait=true >/dev/null
create "$ns_on" early
check "recreated, the missed Pod is mutated" test "$(class_of early)" == mutated

# --- learned defaults (local mode): a Deployment's next Pod starts from its learned values -------
if [[ $mode == local ]]; then
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    document='{"version":1,"window":"7d","generatedAt":"'$now'","workloads":[{"namespace":"'$ns_on'","kind":"Deployment","name":"learned-web","containers":[{"name":"app","values":{"resources.requests.cpu":"180m","resources.requests.memory":"300Mi"},"reason":"e2e"}]}]}'
    kubectl -n "$ns_on" create configmap pytune-learned --from-literal="learned.json=$document" >/dev/null
    sleep 3 # the watch delivers it
    {
        cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: { name: learned-web }
spec:
  replicas: 1
  selector: { matchLabels: { app: learned-web } }
  template:
    metadata: { labels: { app: learned-web, pytune.io/runtime: python } }
    spec:
      containers:
        - name: app
          image: python:3.12-slim
          command: ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]
          ports: [{ containerPort: 8000 }]
YAML
    } | kubectl -n "$ns_on" create -f - >/dev/null
    learned_pod=""
    deadline=$((SECONDS + 60))
    while [[ -z $learned_pod ]] && ((SECONDS < deadline)); do
        sleep 2
        learned_pod=$(kubectl -n "$ns_on" get pods -l app=learned-web -o 'jsonpath={.items[0].metadata.name}' 2>/dev/null || true)
    done
    [[ -n $learned_pod ]] || die "the Deployment learned-web made no Pod within 60 s"
    check "a Deployment's new Pod gets its learned CPU request" \
        test "$(get "$ns_on" "$learned_pod" '{.spec.containers[0].resources.requests.cpu}')" == 180m
    check "its record names the learned values" \
        grep -q 'learned:' <<<"$(get "$ns_on" "$learned_pod" '{.metadata.annotations.pytune\.io/injected}')"
fi

if [[ $mode == chart ]]; then
    ca_of() { kubectl get mutatingwebhookconfiguration "$webhook_name" -o 'jsonpath={.webhooks[0].clientConfig.caBundle}'; }
    ca_before=$(ca_of)
    "$helm" upgrade "$webhook_name" charts/pytune -n "$ns_system" --reuse-values --wait --timeout 3m \
        >"$work/helm-upgrade.log" 2>&1 || die "helm upgrade failed: $(cat "$work/helm-upgrade.log")"
    check "helm upgrade keeps the chart's self-signed CA" test "$ca_before" == "$(ca_of)"
    create "$ns_on" after-upgrade
    check "pytune still mutates after the upgrade" injected "$ns_on" after-upgrade
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
