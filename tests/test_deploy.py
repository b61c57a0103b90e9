"""Packaging and Kubernetes, checked without a cluster: one Dockerfile that builds every
service, and both kustomize overlays rendered by `kubectl kustomize` and read object by object."""

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from recovery.common.settings import Settings, unknown_variables

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
OVERLAYS = ("dev", "prod")

Manifest = dict[str, Any]


def services() -> dict[str, str]:
    """Every service folder under services/, with the Python package its main module is in."""
    found: dict[str, str] = {}
    for pyproject in sorted((REPO / "services").glob("*/pyproject.toml")):
        mains = sorted(pyproject.parent.glob("src/recovery/*/main.py"))
        assert len(mains) == 1, f"{pyproject.parent} should hold one recovery.<package>.main"
        found[pyproject.parent.name] = f"recovery.{mains[0].parent.name}"
    return found


SERVICES = services()


def test_the_services_are_the_five_of_the_architecture_with_their_packages() -> None:
    assert SERVICES == {
        "goals": "recovery.goals",
        "crisis-plans": "recovery.crisis_plans",
        "risk": "recovery.risk",
        "training": "recovery.training",
        "workforce": "recovery.workforce",
    }


# --- the image -------------------------------------------------------------------------------


def dockerfile_stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.MULTILINE)[1:]


def test_no_service_keeps_its_own_copy_of_the_dockerfile() -> None:
    assert sorted((REPO / "services").glob("*/Dockerfile")) == []
    assert sorted((REPO / "services").glob("*/*.dockerfile")) == []


def test_every_service_builds_from_the_one_dockerfile_with_its_own_package() -> None:
    completed = subprocess.run(
        ["bash", str(REPO / "deploy" / "docker" / "build.sh")], cwd=REPO,
        env={**os.environ, "DRY_RUN": "1"}, capture_output=True, text=True, check=True,
        timeout=30)
    builds: dict[str, tuple[str, str]] = {}
    for line in completed.stdout.splitlines():
        arguments = dict(re.findall(r"--build-arg (\w+)=(\S+)", line))
        assert "-f deploy/docker/Dockerfile" in line
        builds[arguments["SERVICE"]] = (arguments["PACKAGE"], arguments["SOURCE"])
    expected = {service: (package, f"services/{service}")
                for service, package in SERVICES.items()}
    if (REPO / "gateway" / "pyproject.toml").exists():
        expected["gateway"] = ("recovery.gateway", "gateway")
    assert builds == expected
    for service, (package, source) in builds.items():
        pyproject = tomllib.loads((REPO / source / "pyproject.toml").read_text())
        # The Dockerfile installs the distribution recovery-${SERVICE}.
        assert pyproject["project"]["name"] == f"recovery-{service}"
        assert (REPO / source / "src" / Path(*package.split(".")) / "main.py").is_file()


def test_the_dockerfile_installs_only_the_kit_and_the_named_service() -> None:
    build, final = dockerfile_stages()
    assert re.search(r"^ARG SERVICE=goals$", build, re.MULTILINE)
    assert re.search(r"^ARG PACKAGE=recovery\.\$\{SERVICE\}$", build, re.MULTILINE)
    assert re.search(r"^ARG SOURCE=services/\$\{SERVICE\}$", build, re.MULTILINE)
    copies = re.findall(r"^COPY (\S+) ", build, re.MULTILINE)
    assert copies == ["requirements/lock.txt", "libs/common", "${SOURCE}"]
    assert "-c requirements/lock.txt --wheel-dir /wheels ./libs/common \"./${SOURCE}\"" in build
    assert "--no-index --find-links /wheels \"recovery-${SERVICE}\"" in build
    assert "import sys, ${PACKAGE}.main as m; sys.exit(m.SERVICE != '${SERVICE}')" in build
    assert "UVICORN_APP=${PACKAGE}.main:create_app" in final
    assert "RECOVERY_SERVICE=${SERVICE}" in final


def test_the_final_image_is_slim_non_root_and_has_no_build_tools() -> None:
    build, final = dockerfile_stages()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE.read_text(), re.MULTILINE)
    assert final.startswith("${PYTHON_IMAGE}\n")
    for tool in ("apt-get", "build-essential", "gcc", "pip install", "hatchling"):
        assert tool not in final, tool
    user = re.search(r"^USER (\d+):(\d+)$", final, re.MULTILINE)
    assert user is not None and int(user.group(1)) >= 10000 and int(user.group(2)) >= 10000
    assert "COPY --from=build /opt/venv /opt/venv" in final
    # Nothing compiled in the build stage either: binary wheels only.
    assert "apt-get" not in build
    assert build.count("--only-binary=:all:") == 2


def test_deploy_sets_only_variables_some_part_reads() -> None:
    """A stale or misspelt name would only be warned about at start-up; here it fails."""
    files = [path for path in (REPO / "deploy").rglob("*") if path.is_file()]
    names = {name for path in files
             for name in re.findall(r"\bRECOVERY_[A-Z0-9_]*[A-Z0-9]\b", path.read_text())}
    assert "RECOVERY_DATABASE_URL" in names
    assert unknown_variables(dict.fromkeys(names, "")) == []


# --- Kubernetes ------------------------------------------------------------------------------


@dataclass
class Rendered:
    overlay: str
    objects: list[Manifest]

    def of_kind(self, kind: str) -> dict[str, Manifest]:
        return {o["metadata"]["name"]: o for o in self.objects if o["kind"] == kind}

    def one(self, kind: str, name: str) -> Manifest:
        found = self.of_kind(kind)
        assert name in found, f"{self.overlay}: no {kind} {name}"
        return found[name]


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is needed in CI to render deploy/k8s")
        pytest.skip("kubectl is not installed, so the kustomize overlays cannot be rendered")
    return path


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> Iterator[Rendered]:
    overlay: str = request.param
    completed = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)], capture_output=True,
        text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    objects = [o for o in yaml.safe_load_all(completed.stdout) if o]
    yield Rendered(overlay, objects)


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {e["name"]: e for e in container.get("env", [])}


def test_nothing_is_left_unfilled_and_names_are_unique(rendered: Rendered) -> None:
    text = yaml.safe_dump_all(rendered.objects)
    assert "SERVICE" not in text.replace("RECOVERY_SERVICE", "")
    assert "PACKAGE" not in text
    ids = [(o["kind"], o["metadata"]["name"]) for o in rendered.objects]
    assert len(ids) == len(set(ids))
    namespace = {"dev": "recovery-dev", "prod": "recovery"}[rendered.overlay]
    for manifest in rendered.objects:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == namespace, manifest["metadata"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_each_kind_of_object(rendered: Rendered, service: str) -> None:
    for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget",
                 "HorizontalPodAutoscaler", "NetworkPolicy"):
        rendered.one(kind, service)
    rendered.one("ConfigMap", f"{service}-config")
    rendered.one("Job", f"{service}-migrate")
    database = rendered.one("Cluster", f"{service}-db")
    assert database["apiVersion"] == "postgresql.cnpg.io/v1"
    assert database["spec"]["instances"] == {"dev": 1, "prod": 3}[rendered.overlay]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_runs_its_own_image_and_migrations(rendered: Rendered,
                                                         service: str) -> None:
    deployment = rendered.one("Deployment", service)
    job = rendered.one("Job", f"{service}-migrate")
    (api,) = pod_spec(deployment)["containers"]
    (migrate,) = pod_spec(job)["containers"]
    image = f"registry.example.org/recovery/{service}:"
    assert api["image"].startswith(image) and migrate["image"] == api["image"]
    assert migrate["command"] == ["python", "-m", "recovery.common.migrate",
                                  f"{SERVICES[service]}.main"]
    assert api["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    config = rendered.one("ConfigMap", f"{service}-config")["data"]
    assert config["RECOVERY_SERVICE"] == service
    assert config["RECOVERY_ENVIRONMENT"] == "production"
    assert config["RECOVERY_NATS_URL"] == "nats://nats:4222"
    assert config["RECOVERY_JWT_ISSUER"].startswith("https://")
    assert config["RECOVERY_JWKS_URL"].startswith("https://")
    for container in (api, migrate):
        assert container["envFrom"] == [{"configMapRef": {"name": f"{service}-config"}}]
        env = env_of(container)
        # Secrets only by reference, and never in the environment: the database's own
        # secret is mounted read-only, and the service reads its password into the URL.
        assert not any("valueFrom" in variable for variable in env.values())
        assert env["DB_HOST"]["value"] == f"{service}-db-rw"
        assert env["RECOVERY_DATABASE_URL"]["value"] == (
            "postgresql+asyncpg://app@$(DB_HOST):5432/app")
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        folder = mounts["database-credentials"]["mountPath"]
        assert mounts["database-credentials"]["readOnly"] is True
        assert env["RECOVERY_DATABASE_PASSWORD_FILE"]["value"] == f"{folder}/password"
    for pod in (pod_spec(deployment), pod_spec(job)):
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["database-credentials"]["secret"] == {
            "secretName": f"{service}-db-app", "items": [{"key": "password", "path": "password"}],
            "defaultMode": 0o440}
        # The file is the pod group's to read.
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_is_probed_sized_scaled_and_kept_available(rendered: Rendered,
                                                                 service: str) -> None:
    deployment = rendered.one("Deployment", service)
    (api,) = pod_spec(deployment)["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": service, "app.kubernetes.io/component": "api"}
    assert selector.items() <= pod_labels.items()
    service_object = rendered.one("Service", service)["spec"]
    assert service_object["selector"] == selector
    assert service_object["ports"][0]["targetPort"] == "http"
    assert rendered.one("PodDisruptionBudget", service)["spec"]["selector"]["matchLabels"] \
        == selector
    hpa = rendered.one("HorizontalPodAutoscaler", service)["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": service}
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    assert pod_spec(deployment)["serviceAccountName"] == service
    assert pod_spec(rendered.one("Job", f"{service}-migrate"))["serviceAccountName"] == service


def workloads(rendered: Rendered) -> Iterator[tuple[str, Manifest]]:
    for kind in ("Deployment", "Job", "StatefulSet"):
        for name, manifest in rendered.of_kind(kind).items():
            yield f"{kind}/{name}", manifest


def test_every_container_runs_restricted_with_a_read_only_root(rendered: Rendered) -> None:
    seen = 0
    for name, workload in workloads(rendered):
        spec = pod_spec(workload)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] >= 10000 and pod["runAsGroup"] >= 10000, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            seen += 1
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["privileged"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            resources = container["resources"]
            assert set(resources["requests"]) == {"cpu", "memory"}, name
            assert set(resources["limits"]) == {"cpu", "memory"}, name
            if not name.startswith("StatefulSet/"):
                # The container's writable /tmp, not a temporary file of this test.
                (tmp,) = [m for m in container["volumeMounts"]
                          if m["mountPath"] == "/tmp"]  # noqa: S108
                assert "emptyDir" in volumes[tmp["name"]], name
    assert seen == 2 * len(SERVICES) + 1 + 1  # each service and its Job, NATS, the gateway


def test_no_secret_is_written_into_the_manifests(rendered: Rendered) -> None:
    assert rendered.of_kind("Secret") == {}
    for name, workload in workloads(rendered):
        for container in pod_spec(workload)["containers"]:
            for variable in container.get("env", []):
                # A secret's value never stands in the manifest; a file that holds it may.
                if re.search(r"PASSWORD|SECRET|TOKEN", variable["name"]) and not (
                        variable["name"].endswith("_FILE")):
                    assert "valueFrom" in variable, (name, variable["name"])
                assert not re.search(r"://[^/@\s]*:[^/@\s]*@", variable.get("value", "")), (
                    name, variable["name"])


def test_nats_is_a_jetstream_cluster_on_file_storage(rendered: Rendered) -> None:
    nats = rendered.one("StatefulSet", "nats")
    assert nats["spec"]["replicas"] == {"dev": 1, "prod": 3}[rendered.overlay]
    # Every service's stream is kept by every NATS server: no more copies than servers.
    for service in SERVICES:
        config = rendered.one("ConfigMap", f"{service}-config")["data"]
        assert config["RECOVERY_STREAM_REPLICAS"] == str(nats["spec"]["replicas"]), service
    # and the gateway's bucket of FHIR subscriptions
    gateway = rendered.one("ConfigMap", "gateway-config")["data"]
    assert gateway["RECOVERY_STREAM_REPLICAS"] == str(nats["spec"]["replicas"])
    (claim,) = nats["spec"]["volumeClaimTemplates"]
    (data,) = [m for m in pod_spec(nats)["containers"][0]["volumeMounts"]
               if m["name"] == claim["metadata"]["name"]]
    config_maps = [c for n, c in rendered.of_kind("ConfigMap").items()
                   if n.startswith("nats-config")]
    assert len(config_maps) == 1
    config = config_maps[0]["data"]["nats.conf"]
    assert re.search(rf"store_dir: {data['mountPath']}\n", config)
    if rendered.overlay == "prod":
        assert re.search(r"^\s*sync_interval: always$", config, re.MULTILINE)
        assert config.count("nats://nats-") == 3


#: The Kubernetes release the manifests are validated against (the oldest one supported).
KUBERNETES_VERSION = "1.30"


def test_every_object_is_valid_against_the_kubernetes_schemas_strictly(
        rendered: Rendered) -> None:
    import kubernetes_validate as validator

    for manifest in rendered.objects:
        if manifest["apiVersion"] == "postgresql.cnpg.io/v1":
            continue  # CloudNativePG's own resource: the operator validates it
        # Unknown fields, wrong types and missing required fields all raise here.
        validator.validate(manifest, KUBERNETES_VERSION, strict=True)


def checkov() -> str:
    """The checkov `make test` installs (var/tools/checkov), or one on the PATH."""
    installed = REPO / "var" / "tools" / "checkov" / "bin" / "checkov"
    path = str(installed) if installed.exists() else shutil.which("checkov")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("checkov is needed in CI: `make test` installs it into var/tools")
        pytest.skip("checkov is not installed (`make test` installs it into var/tools/checkov)")
    return path


def test_every_object_passes_checkov(rendered: Rendered, tmp_path: Path) -> None:
    manifests = tmp_path / f"{rendered.overlay}.yaml"
    manifests.write_text(yaml.safe_dump_all(rendered.objects))
    completed = subprocess.run(
        [checkov(), "--config-file", str(REPO / "deploy" / "checkov.yaml"),
         "--file", str(manifests), "--output", "json", "--quiet"],
        capture_output=True, text=True, timeout=300)
    report = json.loads(completed.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(c["check_id"], c["check_name"], c["resource"])
              for c in report.get("results", {}).get("failed_checks", [])]
    assert failed == [], failed
    assert report["summary"]["parsing_errors"] == 0
    # Every workload was read (a file checkov could not parse would pass with no checks).
    assert report["summary"]["resource_count"] >= len(list(workloads(rendered)))
    assert report["summary"]["passed"] > 0


# --- network policies: deny by default, then only the architecture's paths ---------------------

Peer = tuple[str, str]  # ("pods", "<label>=<value>"), ("namespace", name), ("cidr", block)
Rule = tuple[str, str, Peer, str]  # (selected pods, direction, peer, "TCP/5432")


def selector_text(selector: Manifest) -> str:
    labels = selector.get("matchLabels", {})
    assert set(selector) <= {"matchLabels"}, selector
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def peer_of(peer: Manifest) -> Peer:
    if "ipBlock" in peer:
        assert set(peer) == {"ipBlock"}
        return ("cidr", peer["ipBlock"]["cidr"])
    if "namespaceSelector" in peer:
        namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        pods = selector_text(peer.get("podSelector", {}))
        return ("namespace", f"{namespace}/{pods}" if pods else namespace)
    assert set(peer) == {"podSelector"}, peer
    return ("pods", selector_text(peer["podSelector"]))


def policy_rules(rendered: Rendered) -> set[Rule]:
    """Every (pods, direction, peer, port) a NetworkPolicy of the overlay lets through."""
    rules: set[Rule] = set()
    for name, policy in rendered.of_kind("NetworkPolicy").items():
        spec = policy["spec"]
        selected = selector_text(spec["podSelector"])
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction, []):
                # A rule without peers or ports would let everything through.
                assert rule.get(peers_key) and rule.get("ports"), (name, rule)
                for peer in rule[peers_key]:
                    for port in rule["ports"]:
                        rules.add((selected, direction, peer_of(peer),
                                   f"{port['protocol']}/{port['port']}"))
    return rules


GATEWAY = "app.kubernetes.io/component=api,app.kubernetes.io/name=gateway"


def allowed_rules() -> set[Rule]:
    """The architecture's paths: gateway -> each service, each service -> its database and
    NATS, DNS; and what those need to work: the JWKS over HTTPS, Prometheus scraping, the
    migration Job, NATS and PostgreSQL talking to their own peers, and the CloudNativePG
    operator managing each database (which calls the Kubernetes API)."""
    anywhere: Peer = ("cidr", "0.0.0.0/0")
    nats = "app.kubernetes.io/name=nats"
    rules: set[Rule] = {
        ("", "egress", ("namespace", "kube-system/k8s-app=kube-dns"), "UDP/53"),
        ("", "egress", ("namespace", "kube-system/k8s-app=kube-dns"), "TCP/53"),
        (nats, "ingress", ("pods", "recovery-platform/nats-client=true"), "TCP/4222"),
        (nats, "ingress", ("pods", nats), "TCP/6222"),
        (nats, "egress", ("pods", nats), "TCP/6222"),
        (nats, "ingress", ("namespace", "monitoring"), "TCP/8222"),
        (GATEWAY, "ingress", ("namespace", "ingress-nginx"), "TCP/8080"),
        (GATEWAY, "ingress", ("namespace", "monitoring"), "TCP/8080"),
        (GATEWAY, "egress", ("pods", nats), "TCP/4222"),
        (GATEWAY, "egress", anywhere, "TCP/443"),
    }
    for service in SERVICES:
        api = f"app.kubernetes.io/component=api,app.kubernetes.io/name={service}"
        migrate = f"app.kubernetes.io/name={service}-migrate"
        database = f"cnpg.io/cluster={service}-db"
        rules |= {
            (GATEWAY, "egress", ("pods", api), "TCP/8080"),
            (api, "ingress", ("pods", "app.kubernetes.io/name=gateway"), "TCP/8080"),
            (api, "ingress", ("namespace", "monitoring"), "TCP/8080"),
            (api, "egress", ("pods", nats), "TCP/4222"),
            (api, "egress", ("pods", database), "TCP/5432"),
            (api, "egress", anywhere, "TCP/443"),
            (migrate, "egress", ("pods", database), "TCP/5432"),
            (database, "ingress", ("pods", api), "TCP/5432"),
            (database, "ingress", ("pods", migrate), "TCP/5432"),
            (database, "ingress", ("pods", database), "TCP/5432"),
            (database, "egress", ("pods", database), "TCP/5432"),
            (database, "ingress", ("namespace", "cnpg-system"), "TCP/5432"),
            (database, "ingress", ("namespace", "cnpg-system"), "TCP/8000"),
            (database, "egress", anywhere, "TCP/443"),
            (database, "egress", anywhere, "TCP/6443"),
        }
    return rules


def test_all_traffic_is_denied_unless_a_policy_allows_it(rendered: Rendered) -> None:
    deny = rendered.one("NetworkPolicy", "default-deny-all")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_network_policies_allow_exactly_the_architecture_paths(rendered: Rendered) -> None:
    assert policy_rules(rendered) == allowed_rules()


def test_a_service_cannot_reach_another_services_database(rendered: Rendered) -> None:
    rules = policy_rules(rendered)
    for service in SERVICES:
        for other in set(SERVICES) - {service}:
            api = f"app.kubernetes.io/component=api,app.kubernetes.io/name={service}"
            assert (api, "egress", ("pods", f"cnpg.io/cluster={other}-db"), "TCP/5432") \
                not in rules
            assert (f"cnpg.io/cluster={other}-db", "ingress", ("pods", api), "TCP/5432") \
                not in rules


def test_the_gateway_runs_its_image_against_the_five_services_with_no_database(
        rendered: Rendered) -> None:
    deployment = rendered.one("Deployment", "gateway")
    (container,) = pod_spec(deployment)["containers"]
    assert container["image"].split(":")[0].endswith("/recovery/gateway")
    config = rendered.one("ConfigMap", "gateway-config")["data"]
    assert config["RECOVERY_ENVIRONMENT"] == "production"
    for service in SERVICES:
        url = config[f"RECOVERY_{service.upper().replace('-', '_')}_URL"]
        assert rendered.one("Service", url.removeprefix("http://"))  # a Service of the base
    # Partial answers: a service down must not take the gateway out of the rotation.
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "gateway-migrate" not in rendered.of_kind("Job")
    assert not any(name.startswith("gateway-db") for name in rendered.of_kind("Cluster"))
    assert {kind: name in rendered.of_kind(kind) for kind, name in (
        ("Service", "gateway"), ("PodDisruptionBudget", "gateway"),
        ("HorizontalPodAutoscaler", "gateway"), ("NetworkPolicy", "gateway"),
        ("ServiceAccount", "gateway"))} == dict.fromkeys(
        ("Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy",
         "ServiceAccount"), True)


def test_only_graphql_and_fhir_are_published_and_only_over_tls(rendered: Rendered) -> None:
    ingresses = rendered.of_kind("Ingress")
    assert list(ingresses) == ["gateway"]
    spec = ingresses["gateway"]["spec"]
    (rule,) = spec["rules"]
    assert [t["hosts"] for t in spec["tls"]] == [[rule["host"]]]
    paths = {(p["path"], p["pathType"]): p["backend"]["service"]
             for p in rule["http"]["paths"]}
    assert paths == {("/graphql", "Exact"): {"name": "gateway", "port": {"name": "http"}},
                     ("/fhir", "Prefix"): {"name": "gateway", "port": {"name": "http"}}}
    service = rendered.one("Service", "gateway")
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_only_service_pods_are_nats_clients(rendered: Rendered) -> None:
    clients = {name for name, workload in workloads(rendered)
               if workload["spec"]["template"]["metadata"]["labels"]
               .get("recovery-platform/nats-client") == "true"}
    assert clients == {f"Deployment/{service}" for service in (*SERVICES, "gateway")}


def test_every_file_under_deploy_k8s_is_part_of_a_kustomization() -> None:
    used: set[Path] = set()
    kustomizations = sorted(K8S.rglob("kustomization.yaml"))
    for path in kustomizations:
        document = yaml.safe_load(path.read_text())
        assert document["kind"] in {"Kustomization", "Component"}, path
        names = [*document.get("resources", []), *document.get("transformers", []),
                 *(p["path"] for p in document.get("patches", []) if "path" in p),
                 *(r["path"] for r in document.get("replacements", []) if "path" in r)]
        for generator in document.get("configMapGenerator", []):
            names += [f.split("=", 1)[-1] for f in generator.get("files", [])]
        used |= {(path.parent / name).resolve() for name in names}
    for path in sorted(K8S.rglob("*")):
        if path.is_file() and path.name != "kustomization.yaml":
            assert path.resolve() in used, f"{path.relative_to(REPO)} is used by nothing"


def test_every_replica_of_a_service_can_open_all_its_database_connections() -> None:
    """At the autoscaler's most replicas, each opening every connection its engines may
    (``Settings.database_connections_at_most``), a service's PostgreSQL still has
    connections left for its migration Job and the superuser's reserve."""
    manifests = list(yaml.safe_load_all(
        (K8S / "components" / "service" / "workload.yaml").read_text()))
    config = next(m for m in manifests if m["kind"] == "ConfigMap")
    autoscaler = next(m for m in manifests if m["kind"] == "HorizontalPodAutoscaler")
    database = yaml.safe_load((K8S / "components" / "service" / "database.yaml").read_text())
    pool_size = int(config["data"]["RECOVERY_DATABASE_POOL_SIZE"])
    per_pod = Settings(database_pool_size=pool_size).database_connections_at_most
    allowed = int(database["spec"]["postgresql"]["parameters"]["max_connections"])
    reserved = 3 + per_pod  # PostgreSQL's superuser reserve, and the migration Job
    assert autoscaler["spec"]["maxReplicas"] * per_pod + reserved <= allowed
