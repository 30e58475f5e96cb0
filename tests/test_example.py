"""examples/prune_your_own.py runs end to end on a tiny Minari dataset."""
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import REPO, TINY_ID, subprocess_env

EXAMPLE = pathlib.Path(REPO) / "examples" / "prune_your_own.py"
HOPPER_OBS, HOPPER_ACT = 11, 3


def test_example_imports_only_public_pieces():
    """The example lives outside the library: it may use only sparse_orl.pruning from it."""
    imports = re.findall(r"^(?:from|import) (\S+)", EXAMPLE.read_text(), re.M)
    assert {m.split(".")[0] for m in imports} <= {"argparse", "flax", "jax", "minari", "numpy", "optax", "sparse_orl"}
    assert {m for m in imports if m.startswith("sparse_orl")} == {"sparse_orl"}
    assert "from sparse_orl import pruning" in EXAMPLE.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("pruner", ["erk_random", "synflow"])
def test_example_trains_a_pruned_policy(pruner, tiny_minari_root, tmp_path):
    hidden, s = (16, 16), 0.9
    env = subprocess_env(MINARI_DATASETS_PATH=tiny_minari_root)
    cmd = [sys.executable, str(EXAMPLE), f"--dataset={TINY_ID}", f"--pruner={pruner}", f"--sparsity={s}",
           "--steps=40", "--batch_size=16", "--hidden=16,16"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    n = HOPPER_OBS * hidden[0] + hidden[0] * hidden[1] + hidden[1] * HOPPER_ACT
    assert f"kept {n - round(s * n)} of {n} kernel weights" in out.stdout, out.stdout
    assert "pruned weights nonzero after training: 0" in out.stdout
    assert re.search(r"final loss \d+\.\d+", out.stdout), out.stdout
