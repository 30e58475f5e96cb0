"""One declaration per option: every option field is a flag, a keyword and a README row, and its range is
enforced at its bounds with one line naming the flag.

Unit level: no training, no subprocess.
"""
import importlib.util
import math
import os
import pathlib

import numpy as np
import pytest

from sparse_orl import algos as algos_lib
from sparse_orl.config import ExperimentConfig, LogConfig, PruneConfig, build_job
from sparse_orl.config.job import Selection
from sparse_orl.config.prune import PrunerOptions
from sparse_orl.fields import specs
from sparse_orl.sweep.config import ShardConfig, SweepConfig, build_sweep, sweep_options
from sparse_orl.trainer.devices import DeviceConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALGO_CLASSES = tuple(spec.config_cls for _, spec in sorted(algos_lib.ALGORITHMS.items()))
TRAIN_CLASSES = (Selection, ExperimentConfig, LogConfig, PruneConfig, PrunerOptions) + ALGO_CLASSES
HAS_WANDB = importlib.util.find_spec("wandb") is not None


def _flagged(classes):
    return [(cls, s) for cls in classes for s in specs(cls) if s.flagged]


def _id(p):
    cls, s = p
    return f"{cls.__name__}.{s.name}"


def _launchers():
    import launch.sweep
    import launch.train
    from launch import flags as flags_lib

    return launch.train, launch.sweep, flags_lib.FLAGS


# ---- a valid value away from the default, and the options that must come with it -----------
def _owner_algo(cls):
    return cls.algo if cls in ALGO_CLASSES else None


def _sample(cls, s):
    """(value, extra options it needs, (where it lands in the built configs, the value expected there))."""
    d = s.default
    if s.choices:
        v = next(c for c in s.choices if c != d)
    elif s.kind == "bool":
        v = not d if d is not None else True
    elif s.kind in ("int", "ints"):
        x = int(s.low if s.low is not None else 0) + 2
        v = (x, x + 1) if s.kind == "ints" else x
    elif s.kind in ("float", "floats"):
        lo = 0.0 if s.low is None else float(s.low)
        x = (lo + float(s.high)) / 2 if s.high is not None else lo + 1.5
        v = (x,) if s.kind == "floats" else x
    elif s.kind == "str":
        v = "some/thing"
    else:  # strs
        v = ("x",)
    extra = {}
    if cls in ALGO_CLASSES:
        extra["algo"] = cls.algo
    if cls is PruneConfig:
        extra["pruner"] = "snip"
        if s.name in ("warmup_rewind", "warmup_batch"):
            extra["warmup_steps"] = 1
        if s.name == "prune_networks":
            v = ("actor",)
    if cls is PrunerOptions:
        extra["pruner"] = PrunerOptions.owner(s.name)
    if s.name == "data_subset":
        extra["max_transitions"] = 50
    if cls is Selection and s.name == "pruner":
        v = ("random",)
    if cls is Selection and s.name == "algo":
        v = "td3bc"
    if cls is LogConfig and s.name == "wandb_mode":
        extra["wandb_project"] = "p"
    return v, extra


def _landed(cls, s, config, logs):
    """The value the built configs hold for option ``s`` of ``cls``."""
    if cls is Selection:
        return config.agent.algo if s.name == "algo" else tuple(p.pruner for p in config.prunes)
    if cls is ExperimentConfig:
        return getattr(config, s.name)
    if cls is LogConfig:
        return getattr(logs, s.name)
    if cls is PruneConfig:
        return getattr(config.prunes[0], s.name)
    if cls is PrunerOptions:
        return getattr(config.prunes[0], "score_batch" if s.name.endswith("_batch") else "rounds")
    return getattr(config.agent, s.name)


# ---- flags, keywords, README ----------------------------------------------------------------
@pytest.mark.parametrize("item", _flagged(TRAIN_CLASSES + (DeviceConfig,)), ids=_id)
def test_every_job_option_is_a_launch_train_flag(item):
    cls, s = item
    train, _, FLAGS = _launchers()
    names = {o.name for o in train.OPTIONS + train.DEVICE_OPTIONS}
    assert s.flag in names and s.flag in FLAGS, s.flag


@pytest.mark.parametrize("item", _flagged(TRAIN_CLASSES), ids=_id)
def test_every_job_option_is_a_keyword_that_lands_in_its_config(item, tmp_path):
    cls, s = item
    value, extra = _sample(cls, s)
    given = dict(dataset="d.hdf5", workdir=str(tmp_path)) | extra | {s.flag: value}
    if s.name in ("wandb_project", "wandb_mode") and not HAS_WANDB:
        with pytest.raises(ValueError, match=r"--wandb_project needs the wandb package"):
            build_job(given)
        return
    config, logs = build_job(given)
    assert _landed(cls, s, config, logs) == value


@pytest.mark.parametrize("item", _flagged((SweepConfig, ShardConfig, PruneConfig, PrunerOptions) + ALGO_CLASSES),
                         ids=_id)
def test_every_sweep_option_is_a_launch_sweep_flag_and_a_train_sweep_keyword(item, tmp_path):
    cls, s = item
    _, sweep, FLAGS = _launchers()
    assert s.flag in {o.name for o in sweep.OPTIONS} and s.flag in FLAGS
    assert s.flag in {o.name for o in sweep_options()}
    value, extra = _sample(cls, s)
    if cls in (SweepConfig, ShardConfig):
        if s.name == "algos":
            value = ("td3bc",)
        if s.name == "pruners":
            value = ("random",)
        if s.name == "shard_index":
            extra["num_shards"] = value + 1
        if s.name == "datasets":
            value = ("a.hdf5",)
    if extra.pop("algo", None):
        extra["algos"] = (cls.algo,)
    if "pruner" in extra:
        extra["pruners"] = (extra.pop("pruner"),)
    given = dict(datasets=("d.hdf5",), workdir=str(tmp_path)) | extra | {s.flag: value}
    sweep_cfg, shard = build_sweep(given)
    if cls is SweepConfig:
        got = getattr(sweep_cfg, s.name)
        assert got == (os.path.abspath(value) if s.name == "workdir" else value)
    elif cls is ShardConfig:
        assert getattr(shard, s.name) == value
    elif cls is PruneConfig:
        assert getattr(sweep_cfg.prunes[0], s.name) == value
    elif cls is PrunerOptions:
        assert getattr(sweep_cfg.prunes[0], "score_batch" if s.name.endswith("_batch") else "rounds") == value
    else:
        assert getattr(sweep_cfg.agents[0], s.name) == value


def test_device_options_are_launch_sweep_flags_too():
    _, sweep, FLAGS = _launchers()
    for s in specs(DeviceConfig):
        assert s.flag in {o.name for o in sweep.DEVICE_OPTIONS} and s.flag in FLAGS


def _readme_table():
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    import sys

    sys.path.insert(0, os.path.join(REPO, "docs"))
    try:
        import flag_table
    finally:
        sys.path.pop(0)
    a, b = readme.index(flag_table.BEGIN), readme.index(flag_table.END)
    return readme[a + len(flag_table.BEGIN):b].strip(), flag_table


def test_readme_flag_table_is_generated_from_the_options_and_lists_each_once():
    block, flag_table = _readme_table()
    assert block == flag_table.table().strip(), "README's flag table is stale: run python docs/flag_table.py --write"
    train, _, _ = _launchers()
    for o in train.OPTIONS + train.DEVICE_OPTIONS:
        assert block.count(f"| `--{o.name}` |") == 1, o.name
    rows = [l for l in block.splitlines() if l.startswith("| `--")]
    assert len(rows) == len(train.OPTIONS + train.DEVICE_OPTIONS)


# ---- ranges: each bound of each number ------------------------------------------------------
BOUND_CLASSES = TRAIN_CLASSES + (DeviceConfig, SweepConfig, ShardConfig)
CONTEXT = {  # options a field cannot be set without (cross-field checks of __post_init__)
    PruneConfig: lambda name: {"pruner": "snip"} | ({"warmup_steps": 1} if name == "warmup_batch" else {}),
    DeviceConfig: lambda name: {"distributed": True},
    ShardConfig: lambda name: {"num_shards": 2} if name == "shard_index" else {},
}


def _bounds():
    out = []
    for cls in BOUND_CLASSES:
        for s in specs(cls):
            for side in ("low", "high"):
                if getattr(s, side) is not None:
                    out.append(pytest.param(cls, s, side, id=f"{cls.__name__}.{s.name}.{side}"))
    return out


def _beyond(s, side):
    b = getattr(s, side)
    if s.kind in ("int", "ints"):
        return int(b) - 1 if side == "low" else int(b) + 1
    return math.nextafter(float(b), -math.inf if side == "low" else math.inf)


def _build(cls, s, x):
    kw = CONTEXT.get(cls, lambda _n: {})(s.name)
    value = (x,) if s.kind in ("ints", "floats") else x
    return cls(**kw, **{s.name: value})


@pytest.mark.parametrize("cls,s,side", _bounds())
def test_each_bound_is_accepted_or_refused_as_declared_and_beyond_it_is_one_line(cls, s, side):
    bound = getattr(s, side)
    bound = int(bound) if s.kind in ("int", "ints") else float(bound)
    is_open = s.low_open if side == "low" else s.high_open
    if is_open:
        with pytest.raises(ValueError) as e:
            _build(cls, s, bound)
        assert str(e.value).startswith(f"--{s.flag} must be ") and "\n" not in str(e.value), str(e.value)
    else:
        got = _build(cls, s, bound)
        assert getattr(got, s.name) == ((bound,) if s.kind in ("ints", "floats") else bound)
    with pytest.raises(ValueError) as e:
        _build(cls, s, _beyond(s, side))
    msg = str(e.value)
    assert msg.startswith(f"--{s.flag} must be ") and "\n" not in msg, msg
    assert s.range_text() in msg, msg


def test_every_class_with_numbers_has_some_bounds_tested():
    """The enumeration above sees every ranged option (a class left out of BOUND_CLASSES would be silent)."""
    seen = {p.values[0] for p in _bounds()}
    for cls in TRAIN_CLASSES + (DeviceConfig, SweepConfig, ShardConfig):
        if any(s.low is not None or s.high is not None for s in specs(cls)):
            assert cls in seen, cls


# ---- typed values from Python ---------------------------------------------------------------
def test_build_job_takes_numpy_scalars_arrays_and_paths(tmp_path):
    config, logs = build_job(dict(
        dataset=pathlib.Path(tmp_path) / "hopper.hdf5", workdir=pathlib.Path(tmp_path) / "wd",
        steps=np.int64(20), batch_size=np.int32(16), discount=np.float32(0.9), lr=np.float64(3e-4),
        seeds=np.array([0, 1]), sparsity=np.array([0.5, 0.9], np.float32), actor_hidden=np.array([8, 8]),
        normalize_obs=np.bool_(True), log_every_s=np.float32(2.5), max_transitions=np.uint16(50),
        width_multiplier=np.float32(1.5), pruner=np.array(["snip", "random"])))
    assert config.dataset == os.path.join(str(tmp_path), "hopper.hdf5") and config.workdir.endswith("wd")
    assert config.steps == 20 and type(config.steps) is int and config.batch_size == 16
    assert config.seeds == (0, 1) and all(type(x) is int for x in config.seeds)
    # a float32 value means the number it prints as, not its binary expansion (0.8999999761581421)
    assert config.sparsities == (0.5, 0.9) and config.agent.discount == 0.9 and config.width_multiplier == 1.5
    assert config.agent.lr == 3e-4 and config.agent.actor_hidden == (8, 8) and config.agent.normalize_obs is True
    assert config.max_transitions == 50 and logs.log_every_s == 2.5
    assert [p.pruner for p in config.prunes] == ["snip", "random"]
    for one in (np.float32(0.9), [np.float32(0.9)], np.array(0.9, np.float32)):  # a lone level, a list of them
        assert build_job(dict(dataset="d", workdir="w", sparsity=one))[0].sparsities == (0.9,)
    import json

    json.dumps(config.to_dict())  # plain Python values all the way down


def test_none_for_a_required_option_is_a_clean_error_naming_the_flag(tmp_path):
    base = dict(dataset="d.hdf5", workdir=str(tmp_path))
    for name, words in (("steps", "an integer >= 1"), ("discount", "a number in [0, 1]"), ("seeds", "a list of integers"),
                        ("sparsity", "a list of numbers"), ("normalize_obs", "True or False"),
                        ("allocation", "a string")):
        with pytest.raises(ValueError) as e:
            build_job(base | {name: None})
        assert str(e.value) == f"--{name} must be {words}, got None" or (
            str(e.value).startswith(f"--{name} must be ") and "None" in str(e.value)), str(e.value)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"^--dataset is required"):
        build_job(dict(workdir=str(tmp_path), dataset=None))


def test_a_misspelt_keyword_gets_did_you_mean(tmp_path):
    import sparse_orl

    with pytest.raises(ValueError, match=r"unknown option stpes \(did you mean steps\?\)"):
        build_job(dict(dataset="d", stpes=10))
    with pytest.raises(ValueError, match=r"unknown option sparsities \(did you mean sparsity\?\)"):
        sparse_orl.train(dataset="d", sparsities=[0.5], workdir=str(tmp_path), log=None)
    with pytest.raises(ValueError, match=r"unknown option snip_bacth \(did you mean snip_batch\?\)"):
        sparse_orl.train(dataset="d", snip_bacth=10, workdir=str(tmp_path), log=None)
    with pytest.raises(ValueError, match=r"unknown option max_transition \(did you mean max_transitions\?\)"):
        sparse_orl.train_sweep(tmp_path / "sw", datasets=["d"], max_transition=10, log=None)
    assert os.listdir(tmp_path) == []  # a refused call leaves nothing behind


def test_sparse_orl_train_stays_the_api_function_once_the_trainer_is_imported(tmp_path):
    """``sparse_orl.train`` is the API function also after a job imported the training core (a package named
    ``train`` would shadow it: importing a submodule binds its name on the parent package)."""
    import subprocess
    import sys

    code = ("import sparse_orl, sparse_orl.job, sparse_orl.trainer.runs\n"
            "from sparse_orl import train\n"
            "for f in (sparse_orl.train, train):\n"
            "    try:\n"
            "        f(dataset='d', stepz=1, log=None)\n"
            "    except ValueError as e:\n"
            "        print(e)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO))
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("unknown option stepz (did you mean steps?)") == 2, p.stdout
