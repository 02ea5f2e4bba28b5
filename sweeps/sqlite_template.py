"""A fresh SQLite MLflow store, copied from an empty one MLflow made once.

MLflow creates a new store by running every schema migration since its first release: a new
store in a fresh process took 3.3-4.5 s here, against 0.9-1.1 s as a copy (both with MLflow's
store code loading; an idle 2-core machine, 2026-12-07), and a second new store in one process
1.6-2.4 s against 0.05 s. Every new workdir paid that. The first time a version of MLflow
creates a store here, ``seed`` keeps an empty copy made by MLflow's own migrations, without
its Default experiment, in the user's cache (``$MTL_SWEEPS_CACHE``, else
``$XDG_CACHE_HOME/mtl-sweeps``, else ``~/.cache/mtl-sweeps``), named by MLflow's version; a
later new store starts as a copy of it, and MLflow then finds its tables current and adds the
Default experiment where it would have (its artifact folder relative to where it opens).

Anything that goes wrong here (a cache folder that cannot be written, a damaged copy) leaves
the store to MLflow, as before: the template only saves time, it never decides a schema.
MLflow still checks the copied schema's version when it opens the store.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import uuid
from pathlib import Path


def cache_folder() -> Path:
    """Where the templates live: ``$MTL_SWEEPS_CACHE``, ``$XDG_CACHE_HOME/mtl-sweeps`` or
    ``~/.cache/mtl-sweeps``."""
    if os.environ.get("MTL_SWEEPS_CACHE"):
        return Path(os.environ["MTL_SWEEPS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mtl-sweeps"


def template_path() -> Path:
    import mlflow  # (the caller has it loaded: it is about to open a store)

    return cache_folder() / f"mlflow-{mlflow.__version__}-empty.db"


def _copy(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API, written beside ``target`` and renamed
    into place: a reader never sees half a file."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with contextlib.closing(_read_only(source)) as src:
            with contextlib.closing(sqlite3.connect(partial)) as dst:
                src.backup(dst)
        with open(partial, "rb") as written:  # on disk before the rename: a crash leaves
            os.fsync(written.fileno())  # the old file or the whole new one
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection; the path as a file URI, so '?', '#' or '%' in it stay a path."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _latest_revision() -> str | None:
    """The schema revision this MLflow's migrations end at (None where MLflow does not say):
    two builds of one MLflow version (a development install) may differ in it."""
    try:
        # (mlflow: loaded by the caller, which is opening a store)
        from mlflow.store.db.utils import _get_latest_schema_revision

        return str(_get_latest_schema_revision())
    except Exception:  # noqa: BLE001 - a private function of MLflow's: its name may change
        return None


def _build(template: Path) -> None:
    """An empty store made by MLflow's own migrations, less the Default experiment MLflow
    adds on opening (its artifact folder names the folder it was opened from)."""
    # (mlflow: only a first store's open pays for it, and its caller has loaded it already)
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    template.parent.mkdir(parents=True, exist_ok=True)
    # made in a temporary folder of its own: the cache's path may hold characters ('?', '#')
    # that a sqlite:/// URI would read as something else
    with tempfile.TemporaryDirectory(prefix="mtl-sweeps-template-") as folder:
        fresh = Path(folder) / "mlflow.db"
        store = SqlAlchemyStore(f"sqlite:///{fresh}", default_artifact_root=folder)
        store.engine.dispose()
        with contextlib.closing(sqlite3.connect(fresh)) as db:
            with db:
                db.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
                db.execute("DELETE FROM experiments WHERE experiment_id = 0")
        _copy(fresh, template)


def _usable(template: Path) -> bool:
    """A template SQLite reads whole, at the schema revision this MLflow ends at, with no
    experiment."""
    try:
        with contextlib.closing(_read_only(template)) as db:
            (check,) = db.execute("PRAGMA quick_check").fetchone()
            (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
            (experiments,) = db.execute("SELECT count(*) FROM experiments").fetchone()
        latest = _latest_revision()
        current = bool(version) and (latest is None or version == latest)
        return check == "ok" and current and experiments == 0
    except (sqlite3.Error, TypeError, ValueError):
        return False


def seed(path: Path) -> bool:
    """Start a new SQLite MLflow store at ``path`` as a copy of the template (made first if
    there is none); True when it did. An existing, non-empty file is never touched. Call it
    under the file's creation lock (``sqlite_stores.first_open``)."""
    if path.exists() and path.stat().st_size > 0:
        return False
    try:
        template = template_path()
        if not _usable(template):
            _build(template)
            if not _usable(template):
                return False
        _copy(template, path)
        return True
    except Exception:  # noqa: BLE001 - any failure leaves the store to MLflow, as before
        return False  # (the copy is renamed into place whole, or not at all)
