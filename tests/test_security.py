"""Issue 7's security checks: loopback by default, safe YAML, masked secrets, no unpickling
of files the user did not ask for."""

from __future__ import annotations

import re

import typer.main

from sweeps.cli import app
from sweeps.masking import mask
from tests.helpers import ROOT, cli, small_study, write_study


def _option_default(command: str, option: str):
    click_app = typer.main.get_command(app)
    params = {p.name: p for p in click_app.commands[command].params}
    return params[option].default


def test_every_listening_command_binds_loopback_unless_told_otherwise():
    assert _option_default("ui", "host") == "127.0.0.1"
    assert _option_default("server", "host") == "127.0.0.1"
    from sweeps.server import server_command

    command = server_command("127.0.0.1", 5000, "/tmp/a")
    assert command[command.index("--host") + 1] == "127.0.0.1"
    cli = (ROOT / "sweeps" / "cli.py").read_text()  # the dashboard server has no host option
    assert 'serve_dashboard(spec.tracking, spec.name, folder, "127.0.0.1"' in cli
    for folder in ("sweeps", "dashboards", "mtl_core"):
        for path in (ROOT / folder).rglob("*.py"):
            assert "0.0.0.0" not in path.read_text(), path


def test_yaml_tags_that_run_code_are_refused(tmp_path):
    marker = tmp_path / "PWNED"
    path = write_study(tmp_path, small_study("safe"))
    text = path.read_text().replace(
        "name: safe", f"name: !!python/object/apply:os.system ['touch {marker}']"
    )
    path.write_text(text)
    result = cli("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_secrets_are_masked_in_every_form_they_take():
    assert mask("postgresql://bob:hunter2@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert mask("http://u:p@mlflow:5000/api") == "http://u:***@mlflow:5000/api"
    assert "hunter2" not in mask("dbname=x password=hunter2 host=db")
    text = "error: OperationalError connecting to postgresql+psycopg://a:b%21c@h/db failed"
    assert "b%21c" not in mask(text)
    # a password as ${VAR} writes it, unencoded: "/", "@" and ":" inside it are masked too
    assert mask("postgresql://u:pa/ss@w:rd@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert mask("'sqlite:///a.db' then http://v:p/w@k:1/,https://x:y@z") == (
        "'sqlite:///a.db' then http://v:***@k:1/,https://x:***@z"
    )
    assert mask("http://mlflow:5000 and file:///tmp/x") == "http://mlflow:5000 and file:///tmp/x"
    for leaked in ("--postgresql://u:s3cret@h/db", "3-http://u:s3cret@h/", "postgresql://u:a://s3cret@h/db",
                   "postgresql://u:s3cret?x#y@h/db", "(1.postgresql+psycopg2://u:s3cret@h/db)"):  # fmt: skip
        assert "s3cret" not in mask(leaked) and "u:***@h" in mask(leaked), leaked


def test_masking_is_linear_in_the_text():
    """A pattern over the text was quadratic on long runs of letters (a 10 MB header line never
    finished); the scan reads each character a bounded number of times."""
    texts = ("a" * 10**7, "a" * 10**7 + "://", "x://" + "a" * 10**7 + "@", "password=" * 10**6,
             "a://b:" * 10**6, "a://b:" * 10**6 + "@")  # fmt: skip
    for text in texts:
        assert len(mask(text)) <= len(text)  # returns at all: a quadratic scan would not


def test_a_password_with_slashes_and_ats_given_through_a_variable_is_never_printed(tmp_path):
    secret = "pa/ss@w:rd"
    study = small_study(
        "masked", storage="postgresql://alice:${MTL_TEST_SECRET}@127.0.0.1:1/nodb",
        search={"store_retry_s": 1},  # nothing listens on port 1: give up after 1 s
    )  # fmt: skip
    path = write_study(tmp_path, study)
    env = {"MTL_TEST_SECRET": secret}
    shown = cli("validate", str(path), cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "alice:***@127.0.0.1" in shown.stdout
    ran = cli("run", str(path), "--quiet", cwd=tmp_path, env=env)  # the retry warnings
    assert ran.returncode == 1 and "retrying" in ran.stderr
    for text in (shown.stdout, shown.stderr, ran.stdout, ran.stderr):
        assert "pa/ss" not in text and "w:rd" not in text


UNSAFE = [
    (r"\bpickle\.loads?\(", "pickle.load"),
    (r"\bjoblib\.load\(", "joblib.load"),
    (r"read_pickle\(", "pandas.read_pickle"),
    (r"allow_pickle\s*=\s*True", "np.load(allow_pickle=True)"),
    (r"\byaml\.load\(", "yaml.load (use safe_load)"),
    (r"\byaml\.unsafe_load\(", "yaml.unsafe_load"),
    (r"\bcloudpickle\b", "cloudpickle"),
]


def test_no_code_path_unpickles_files():
    """Models and data are read with formats that cannot run code: CSV/TSV/parquet/JSONL,
    ``np.load(allow_pickle=False)``; a ``torch.load`` would have to pass ``weights_only=True``."""
    found = []
    for folder in ("mtl_core", "sweeps", "dashboards"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            for pattern, what in UNSAFE:
                if re.search(pattern, text):
                    found.append(f"{path.relative_to(ROOT)}: {what}")
            for call in re.findall(r"torch\.load\([^)]*\)", text):
                if "weights_only=True" not in call:
                    found.append(f"{path.relative_to(ROOT)}: {call}")
            for call in re.findall(r"np\.load\([^)]*\)", text):
                if "allow_pickle=False" not in call:
                    found.append(f"{path.relative_to(ROOT)}: {call}")
    assert not found, found
