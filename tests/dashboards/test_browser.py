"""The dashboard of real studies in headless Chromium: it loads with no console output, every
figure renders, and a screenshot is saved (tests/dashboards/screenshots/, ignored by git)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from dashboards import build_dashboard
from sweeps.spec import load_spec
from tests.helpers import ROOT, browse, cli, small_study, write_study

SHOTS = ROOT / "tests" / "dashboards" / "screenshots"


def open_in_browser(page: Path, shot: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and every console line; also writes a screenshot."""
    flags = ("--enable-logging=stderr", "--v=0", "--window-size=1400,5000")
    dom = browse(page.as_uri(), *flags, "--dump-dom")
    browse(page.as_uri(), *flags, f"--screenshot={shot}")
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    return dom.stdout, console


def figures_rendered(dom: str) -> list[int]:
    """For each plotly figure on the page, how many SVG layers Plotly drew into it."""
    parts = dom.split('class="plotly-graph-div')[1:]
    return [part.split("</section>")[0].count('class="main-svg"') for part in parts]


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    full = small_study(
        "browser",
        training={"epochs": 2, "seeds": 2, "affinity_every": 5},
        search={"n_trials": 12, "sampler": "random", "pruner": "none", "space": {
            "model.hidden_size": {"low": 8, "high": 32, "log": True},
            "training.schedule": {"choices": ["joint", "round_robin"]},
            "training.weighting": {"choices": ["equal", "inverse_size"]}}},
    )  # fmt: skip
    path = write_study(folder, full)
    for command in (("run", str(path), "--quiet"), ("transfer", str(path))):
        result = cli(*command, cwd=folder)
        assert result.returncode == 0, result.stderr
    pareto = small_study("front", training={"epochs": 1}, search={
        "n_trials": 4, "sampler": "random", "objective": "per_task",
        "space": {"model.hidden_size": {"low": 4, "high": 32, "log": True}}})  # fmt: skip
    pareto["tasks"].pop("amazon")
    pareto["search"].pop("pruner")
    front = write_study(folder, pareto, "front.yaml")
    assert cli("run", str(front), "--quiet", cwd=folder).returncode == 0
    return folder, load_spec(path), load_spec(front)


def test_every_figure_of_a_real_study_renders_without_console_errors(studies):
    folder, spec, _ = studies
    page = build_dashboard(spec.tracking, spec.name, folder / "full.html")
    text = page.read_text()
    notes = re.findall(r"class='note'>([^<]*)", text)
    assert notes == ["Pareto front: not a multi-objective study (`search.objective: per_task`)."]
    SHOTS.mkdir(parents=True, exist_ok=True)
    dom, console = open_in_browser(page, SHOTS / "dashboard.png")
    assert console == [], console
    rendered = figures_rendered(dom)
    # Δ per task, transfer, affinity, schedule x weighting, hidden size, history,
    # importances, learning curves, seed spread
    assert len(rendered) == 9 and all(n >= 1 for n in rendered), rendered
    assert (SHOTS / "dashboard.png").stat().st_size > 10_000
    assert re.search(r"<table class=\"leaderboard\">", dom)  # the sortable leaderboard


def test_the_pareto_front_renders(studies):
    folder, _, spec = studies
    page = build_dashboard(spec.tracking, spec.name, folder / "front.html")
    dom, console = open_in_browser(page, SHOTS / "pareto.png")
    assert console == []
    assert "Pareto front across tasks" in dom and all(n >= 1 for n in figures_rendered(dom))


def test_the_browser_check_catches_a_broken_page(studies, tmp_path):
    folder, spec, _ = studies
    page = build_dashboard(spec.tracking, spec.name, tmp_path / "broken.html")
    page.write_text(
        page.read_text().replace("<body>", "<body><script>throw new Error('boom')</script>", 1)
    )
    _, console = open_in_browser(page, tmp_path / "broken.png")
    assert any("Uncaught Error: boom" in line for line in console)


def test_served_dashboard_follows_the_study(tmp_path):
    import http.client
    import sys
    import time
    import urllib.request

    from sweeps.server import stop_group
    from tests.helpers import free_port

    path = write_study(
        tmp_path, small_study("served", training={"epochs": 1}, search={"n_trials": 1})
    )
    assert cli("run", str(path), "--quiet", cwd=tmp_path).returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "dashboard", str(path), "--serve", "--port", str(port), "--refresh", "1"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/dashboard.html"

    def page() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def status(path: str, host: str | None = None, method: str = "GET") -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.putrequest(method, path, skip_host=True)
            connection.putheader("Host", host or f"127.0.0.1:{port}")
            connection.endheaders()
            return connection.getresponse().status
        finally:
            connection.close()

    try:
        assert "127.0.0.1" in proc.stdout.readline()
        first = page()
        assert "1 trials (1 complete)" in first and "http-equiv='refresh' content='1'" in first
        # the one page and nothing else: the workdir's databases stay on the disk
        assert (tmp_path / ".sweeps" / "optuna.db").exists()
        assert status("/") == status("/dashboard.html?x=1", f"localhost:{port}") == 200
        for where in ("/optuna.db", "/mlflow.db", "/artifacts/", "/../study.yaml", "/%2e%2e/"):
            assert status(where) == 404, where
        assert status("/dashboard.html", "evil.example:80") == 421  # DNS rebinding
        assert status("/dashboard.html", method="POST") == 501
        assert status("/dashboard.html", method="HEAD") == 200
        assert cli("run", str(path), "--trials", "2", "--quiet", cwd=tmp_path).returncode == 0
        deadline = time.monotonic() + 60
        while "2 trials (2 complete)" not in page():
            assert time.monotonic() < deadline, "the served page did not follow the study"
            time.sleep(0.5)
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        stop_group(proc)


def test_sorting_a_column_keeps_blank_cells_last_either_way(tmp_path):
    # a first click on a Δ column put the pruned trials' blank cells on top
    from dashboards.page import _SORT_JS

    rows = "".join(
        f"<tr><td>{n}</td><td>{v}</td></tr>"
        for n, v in [(0, "+1.00"), (1, ""), (2, "-3.50"), (3, "+0.20"), (4, "")]
    )
    script = (
        "window.onload = () => { const th = document.querySelector('th:nth-child(2)');"
        " sortTable(th); document.body.dataset.asc = order();"
        " sortTable(th); document.body.dataset.desc = order(); };"
        " function order() { return Array.from(document.querySelectorAll('tbody tr'))"
        ".map(r => r.cells[0].textContent).join(','); }"
    )
    page = tmp_path / "sort.html"
    page.write_text(
        f"<html><body><table><thead><tr><th>trial</th><th>Δ</th></tr></thead><tbody>{rows}"
        f"</tbody></table><script>{_SORT_JS}{script}</script></body></html>"
    )
    dom, console = open_in_browser(page, tmp_path / "sort.png")
    assert not console, console
    assert 'data-asc="2,3,0,1,4"' in dom and 'data-desc="0,3,2,1,4"' in dom, dom[-800:]
