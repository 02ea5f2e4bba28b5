"""deploy/kubernetes: checked without a cluster. Each overlay is rendered as kustomize would
(its resources, generated ConfigMaps and Secrets, image names, JSON patches), every resource
is validated against the Kubernetes 1.30 schemas (the `kubernetes-validate` package bundles
them; a broken copy must fail the same check), and what the schemas cannot see is read from
the rendered objects: the image, the worker's command, the environment the study file reads,
the threads, the grace period, and the ports that are open."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from sweeps.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "deploy" / "kubernetes"
VERSION = "1.30.0"
OVERLAYS = ["try-it", "team"]


def _render(folder: Path) -> list[dict]:
    """What ``kubectl kustomize folder`` gives for the features these files use."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    objects: list[dict] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        if path.is_dir():
            objects += _render(path)
        else:
            assert path.is_file(), f"{folder}: resource {entry} does not exist"
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for generator in spec.get(key, []):
            data = dict(item.split("=", 1) for item in generator.get("literals", []))
            for name in generator.get("files", []):
                assert (folder / name).is_file(), f"{folder}: generator file {name} is missing"
                data[name] = (folder / name).read_text()
            objects.append(
                {"apiVersion": "v1", "kind": kind, "metadata": {"name": generator["name"]},
                 "data" if kind == "ConfigMap" else "stringData": data}
            )  # fmt: skip
    for image in spec.get("images", []):
        for container in _containers(objects):
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image['newName']}:{image['newTag']}"
    for patch in spec.get("patches", []):
        target = patch["target"]
        (found,) = [
            o for o in objects if o["kind"] == target["kind"] and _name(o) == target["name"]
        ]
        for op in yaml.safe_load(patch["patch"]):
            assert op["op"] == "replace"
            *parents, last = op["path"].strip("/").split("/")
            node = found
            for part in parents:
                node = node[part]
            assert last in node, f"patch path {op['path']} is not in {target['name']}"
            node[last] = op["value"]
    return objects


def _name(obj: dict) -> str:
    return obj["metadata"]["name"]


def _pod_specs(objects: list[dict]) -> list[dict]:
    return [o["spec"]["template"]["spec"] for o in objects if o["kind"] in ("Deployment", "Job")]


def _containers(objects: list[dict]) -> list[dict]:
    return [c for pod in _pod_specs(objects) for c in pod["containers"]]


def _one(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and _name(o) == name]
    return found


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, _render(KUBE / "overlays" / request.param)


def test_every_resource_is_valid_against_the_kubernetes_schemas(rendered):
    _, objects = rendered
    assert {o["kind"] for o in objects} >= {"Deployment", "Service", "Job", "ConfigMap"}
    for obj in objects:
        kubernetes_validate.validate(obj, VERSION, strict=True)
    broken = copy.deepcopy(_one(objects, "Job", "mtl-workers"))
    broken["spec"]["paralelism"] = 4  # a typo the schema must catch: the check checks
    with pytest.raises(kubernetes_validate.ValidationError, match="paralelism"):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_the_workers_are_an_indexed_job_of_sweeps_worker_on_the_study(rendered):
    overlay, objects = rendered
    job = _one(objects, "Job", "mtl-workers")
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] == spec["completions"]
    assert spec["parallelism"] == (8 if overlay == "team" else 4)
    (worker,) = pod["containers"]
    assert worker["command"] == ["sweeps", "worker", "/study/study.yaml"]
    # the same image as docker compose builds (under the team's registry name in `team`)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = compose["x-image"]["image"].split(":")[0]
    assert worker["image"].split(":")[0].rsplit("/", 1)[-1] == image
    assert {c["image"] for c in _containers(objects) if c["name"] in ("worker", "mlflow")} == {
        worker["image"]
    }
    # torch's threads from the pod's own CPU limit
    env = {e["name"]: e for e in worker["env"]}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        field = env[name]["valueFrom"]["resourceFieldRef"]
        assert field == {"containerName": "worker", "resource": "limits.cpu", "divisor": "1"}
    assert worker["resources"]["limits"]["cpu"] == worker["resources"]["requests"]["cpu"]
    # SIGTERM is handled (the trial recorded, runs closed); eviction does not use up retries
    assert pod["terminationGracePeriodSeconds"] >= 60 and pod["restartPolicy"] == "Never"
    (rule,) = spec["podFailurePolicy"]["rules"]
    assert rule["action"] == "Ignore" and rule["onPodConditions"][0]["type"] == "DisruptionTarget"
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/study"]]["configMap"]["name"] == "mtl-study"
    assert "study.yaml" in _one(objects, "ConfigMap", "mtl-study")["data"]


def test_the_study_reads_only_what_the_worker_is_given_and_finds_the_servers(rendered, monkeypatch):
    """Every ${VAR} of the study file is in the worker's environment; with those values the
    study validates, its tracking URI is the MLflow Service and its database the one the
    overlay names."""
    overlay, objects = rendered
    text = _one(objects, "ConfigMap", "mtl-study")["data"]["study.yaml"]
    wanted = set(re.findall(r"\$\{(\w+)\}", text))
    (worker,) = _one(objects, "Job", "mtl-workers")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in worker["env"]}
    assert wanted == {"MTL_DB_PASSWORD", "MTL_DB_HOST"} and wanted <= set(env)
    stores = _one(objects, "ConfigMap", "mtl-stores")["data"]
    assert env["MTL_DB_HOST"]["valueFrom"]["configMapKeyRef"] == {
        "name": "mtl-stores",
        "key": "db_host",
    }
    assert env["MTL_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "mtl-db",
        "key": "password",
    }
    monkeypatch.setenv("MTL_DB_PASSWORD", "p/@ss:word")
    monkeypatch.setenv("MTL_DB_HOST", stores["db_host"])
    study = KUBE / "base" / "study.yaml"
    spec = load_spec(study)
    assert spec.tracking == "http://mlflow:5000"
    assert spec.optuna_storage.startswith(
        f"postgresql://mtl:p%2F%40ss%3Aword@{stores['db_host']}:5432/"
    )
    mlflow = _one(objects, "Service", "mlflow")
    assert mlflow["spec"]["ports"][0]["port"] == 5000
    if overlay == "try-it":  # the bundled database is the Service the study points at
        assert stores["db_host"] == _name(_one(objects, "Service", "postgres"))


def test_the_mlflow_server_keeps_its_passwords_out_of_its_command_line(rendered):
    _, objects = rendered
    (server,) = _one(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"]
    command = server["command"]
    assert command[:2] == ["mlflow", "server"]
    assert command[command.index("--workers") + 1] == "1"
    assert "mlflow" in command[command.index("--allowed-hosts") + 1].split(",")
    assert command[command.index("--artifacts-destination") + 1] == "$(MTL_ARTIFACTS)"
    assert not any("postgresql://" in part or "PASSWORD" in part for part in command)
    env = {e["name"]: e for e in server["env"]}
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == "false"
    # the password reaches libpq as PGPASSWORD, never inside the URI (where @ / : # % would
    # need percent-encoding), and the URI's host comes from a variable defined before it
    backend = env["MLFLOW_BACKEND_STORE_URI"]["value"]
    assert backend == "postgresql://mtl@$(MTL_DB_HOST):5432/mlflow"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mtl-db", "key": "password"}
    assert list(env).index("MTL_DB_HOST") < list(env).index("MLFLOW_BACKEND_STORE_URI")


def test_only_the_stores_ports_are_open_and_only_inside_the_cluster(rendered):
    overlay, objects = rendered
    services = {_name(o): o["spec"] for o in objects if o["kind"] == "Service"}
    expected = {"mlflow": [5000]} | (
        {"postgres": [5432], "minio": [9000]} if overlay == "try-it" else {}
    )
    assert {n: [p["port"] for p in s["ports"]] for n, s in services.items()} == expected
    assert all(s.get("type", "ClusterIP") == "ClusterIP" for s in services.values())
    assert not any("hostPort" in p for c in _containers(objects) for p in c.get("ports", []))
    labels = [o["spec"]["template"]["metadata"].get("labels", {}) for o in objects
              if o["kind"] == "Deployment"]  # fmt: skip
    for name, spec in services.items():  # each Service selects a pod that exists
        assert any(spec["selector"].items() <= pod.items() for pod in labels), name


def test_secrets_are_generated_only_to_try_it_and_every_reference_resolves(rendered):
    overlay, objects = rendered
    present = {(o["kind"], _name(o)) for o in objects}
    referenced = set()
    for container in _containers(objects):
        for e in container.get("env", []):
            ref = e.get("valueFrom", {})
            if "secretKeyRef" in ref:
                referenced.add(("Secret", ref["secretKeyRef"]["name"]))
            if "configMapKeyRef" in ref:
                referenced.add(("ConfigMap", ref["configMapKeyRef"]["name"]))
    missing = referenced - present
    if overlay == "try-it":
        assert not missing
    else:  # the team creates its Secrets itself (kubectl create secret): none in these files
        assert missing == {("Secret", "mtl-db"), ("Secret", "mtl-s3")}
        assert (
            "secretGenerator" not in (KUBE / "overlays" / "team" / "kustomization.yaml").read_text()
        )
    for path in KUBE.rglob("*.yaml"):  # no real-looking password anywhere
        for match in re.findall(r"password=(\S+)", path.read_text()):
            assert match == "try-it-only" or match.startswith("'..."), (path, match)
