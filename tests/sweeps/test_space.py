"""sweeps.space: a trial's sampled values become a plain ``TrialConfig`` (ints stay ints, the
tasks come sorted, a finished trial's parameters rebuild the same configuration), task subsets
are enumerated as the rule says, and a grid needs finite values."""

from __future__ import annotations

import optuna

from sweeps.space import config_from_params, sample, task_subsets
from sweeps.spec import StudySpec
from tests.helpers import cli, small_study, write_study

SPACE = {
    "model.hidden_size": {"low": 8, "high": 64, "log": True},
    "training.lr": {"low": 0.001, "high": 0.1, "log": True},
    "training.schedule": {"choices": ["joint", "round_robin"]},
    "tasks": {"subsets": {"min_size": 2, "include": ["imdb"]}},
}


def _spec(**search) -> StudySpec:
    return StudySpec.model_validate(small_study("space", search={"space": SPACE, **search}))


def test_a_trial_draws_its_values_into_a_plain_config():
    spec = _spec()
    drawn = {
        "model.hidden_size": 24,
        "training.lr": 0.02,
        "training.schedule": "round_robin",
        "tasks": "imdb,yelp",
    }
    config = sample(optuna.trial.FixedTrial(drawn), spec)
    assert config.tasks == ["imdb", "yelp"]
    assert config.model.hidden_size == 24 and isinstance(config.model.hidden_size, int)
    assert config.training.lr == 0.02 and config.training.schedule == "round_robin"
    assert config.training.epochs == spec.training.epochs  # what is not searched stays fixed
    assert config.params["model.hidden_size"] == 24 and config.params["training.lr"] == 0.02
    one_seed = config.train_config(seed=7)
    assert one_seed.seed == 7 and one_seed.hidden_size == 24 and one_seed.schedule == "round_robin"
    # a finished trial's parameters rebuild the very same configuration
    again = config_from_params(spec, config.tasks, {k: v for k, v in drawn.items() if k != "tasks"})
    assert again == config


def test_task_subsets_follow_the_rule():
    spec = _spec()
    assert task_subsets(spec) == [("amazon", "imdb"), ("imdb", "yelp"), ("amazon", "imdb", "yelp")]
    rule = {"subsets": {"max_size": 2, "exclude": ["amazon"]}}
    capped = StudySpec.model_validate(small_study("space", search={"space": {"tasks": rule}}))
    assert task_subsets(capped) == [("imdb", "yelp")]
    unsearched = StudySpec.model_validate(small_study("space"))
    assert task_subsets(unsearched) == [("amazon", "imdb", "yelp")]


def test_grid_needs_finite_values(tmp_path):
    study = small_study(
        "grid", search={"sampler": "grid", "space": {"training.lr": {"low": 0.001, "high": 0.01}}}
    )
    result = cli("validate", str(write_study(tmp_path, study)), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "search.space.training.lr: the grid sampler needs a finite set of values" in result.stderr
    )
