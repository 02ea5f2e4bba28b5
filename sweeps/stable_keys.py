"""Record keys that stay put as settings are added. A baseline, a tuned baseline and a pair
run are found again in MLflow by a hash of what they trained with; a setting added to the
study file later would change every hash, so a study begun before it would train all of them
again and count old and new runs of one configuration twice. At their neutral values (the
values that train exactly as before the setting existed) such settings are left out of the
keys; a study that sets them gets new keys, as it should.

Add a setting here when it joins ``ModelSettings``, ``TrainingSettings`` or the registry's
hyperparameters; ``tests/sweeps/test_baselines.py`` pins keys computed before these existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NEUTRAL_MODEL: dict[str, Any] = {
    "trunk_options": {},  # a user trunk's factory options: none for auto / mlp / conv
    "head_layers": 0,  # linear heads (head_hidden then means nothing: see model_key)
    "shared_experts": 2,  # cgc / ple's defaults: absent before, never read by the others
    "task_experts": 1,
    "ple_levels": 2,
    "dselect_k": 2,  # dselect_k's, likewise
    "dselect_gamma": 1.0,
}
NEUTRAL_TRAINING: dict[str, Any] = {
    "lr_schedule": "constant",
    "lr_warmup_epochs": 0,
    "lr_step_every": 10,
    "lr_gamma": 0.1,
    "grad_clip": 0.0,
    "class_weights": "none",
    "uncertainty_init": 0.0,  # the registry's hyperparameters added with them, at defaults
    "uncertainty_lr": 0.0,
    "fairgrad_alpha": 1.0,
    "excess_mtl_step": 1.0,
    "famo_lr": 0.025,
    "famo_decay": 0.01,
    "db_mtl_beta": 0.9,
    "db_mtl_sigma": 0.5,
    "moco_beta": 0.5,
    "moco_beta_sigma": 0.5,
    "moco_gamma": 0.1,
    "moco_gamma_sigma": 0.5,
    "moco_rho": 0.0,
}
_UNSET = object()


def _without(values: Mapping[str, Any], neutral: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if neutral.get(k, _UNSET) != v}


def model_key(values: Mapping[str, Any]) -> dict[str, Any]:
    """A model's settings for a key: the neutral ones left out (``head_hidden`` too when
    there are no towers)."""
    out = _without(values, NEUTRAL_MODEL)
    if "head_layers" not in out:
        out.pop("head_hidden", None)
    return out


def training_key(values: Mapping[str, Any]) -> dict[str, Any]:
    return _without(values, NEUTRAL_TRAINING)
