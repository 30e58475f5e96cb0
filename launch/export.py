"""Export one run of a finished workdir as a compact deployable file (numpy-only ``sparse_orl.deploy`` loads it).

    python -m launch.export --workdir=runs/main --pruner=erk_random --seed=0 --out=policy.sorl

Choose the run by ``--run`` (its index in the workdir's summary) or by ``--pruner`` / ``--sparsity``
/ ``--seed``; any finished workdir works, with the narrow control's programs too.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from absl import app, logging

from launch import flags as flags_lib
from sparse_orl.fields import check_fields, option


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    workdir: Optional[str] = option(None, "A finished launch.train workdir.")
    out: Optional[str] = option(None, "Path of the compact file to write (e.g. policy.sorl).")
    run: Optional[int] = option(None, "The run's index in the workdir's summary (launch.evaluate lists them).",
                                low=0)
    pruner: Optional[str] = option(None, "The run's pruning method, as given to --pruner or as printed.")
    sparsity: Optional[float] = option(None, "The run's sparsity level.", low=0, high=1, high_open=True)
    seed: Optional[int] = option(None, "The run's seed.", low=0)
    include_q2: bool = option(False, "BCQ: also store the second Q-network (acting reads Q1 only).")
    value_dtype: str = option("float32", "Stored precision of the weights: float32 (lossless), float16 or "
                              "bfloat16.", choices=("float32", "float16", "bfloat16"))

    def __post_init__(self):
        check_fields(self)
        if not self.workdir:
            raise ValueError("--workdir is required")
        if not self.out:
            raise ValueError("--out is required (the file to write)")


OPTIONS = flags_lib.class_options(ExportOptions)
flags_lib.define(OPTIONS)


def main(argv):
    if not flags_lib.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        flags_lib.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    from sparse_orl.export import export_run
    from sparse_orl.store.final import select_run

    try:
        o = flags_lib.build(ExportOptions, OPTIONS)
        _, _, r = select_run(o.workdir, o.run, o.pruner, o.sparsity, o.seed)
        n = export_run(o.workdir, o.run, o.out, pruner=o.pruner, sparsity=o.sparsity, seed=o.seed,
                       include_q2=o.include_q2, value_dtype=o.value_dtype)
    except (ValueError, FileNotFoundError) as e:
        flags_lib.fail(str(e))
    print(f"wrote {o.out}: {r['pruner']} sparsity {r['sparsity']:g} seed {r['seed']}, {n:,} bytes")


if __name__ == "__main__":
    app.run(main, flags_parser=flags_lib.parse_flags)
