"""The statistics every table and figure uses, stated once.

* A run's score: the mean normalized score of its last evaluations (``store.summary.LAST_EVALS``).
* A cell (one configuration over seeds): the mean, the sample standard deviation (ddof = 1) and a
  95% bootstrap confidence interval of the mean (percentile method, 10,000 resamples of the seeds,
  a fixed seed: ``scipy.stats.bootstrap``).
* A difference between two cells: paired by seed when both have the same seeds (runs of one seed
  share their data subset, initial weights of the shared networks and evaluation episodes), with the
  95% Student-t interval of the mean per-seed difference (Welch's interval when the seeds differ);
  "B beats A" only where the interval of B − A excludes 0, otherwise "no difference detected (n = ...)".
  Not the bootstrap here: with n = 5 the percentile bootstrap of a mean uses normal quantiles and
  the plug-in std, so it is about 37% narrower than the t interval (1.96·sqrt(4/5) against
  t(0.975, 4) = 2.78) and would call differences that five seeds do not carry.
* Aggregates over tasks: the interquartile mean (IQM: the mean of the middle 50% of all run scores)
  with a stratified bootstrap interval (runs resampled within each task), rliable's convention
  (Agarwal et al. 2021).

Percentile intervals of a cell from five seeds are wide and still too narrow in coverage; they
describe the spread, and the tables say n. Verdicts rest on the differences' t intervals.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95
RESAMPLES = 10_000
SEED = 0


@dataclasses.dataclass(frozen=True)
class Cell:
    """A configuration's scores over seeds: n, mean, sample std, and the bootstrap interval of the mean."""

    n: int
    mean: float
    std: Optional[float]
    low: Optional[float]
    high: Optional[float]

    def text(self, digits: int = 1) -> str:
        """"72.4 ± 3.1 [69.0, 75.2]" (mean ± sample std [95% interval]); one seed: just the score."""
        if self.std is None:
            return f"{self.mean:.{digits}f} (n = 1)"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _interval(statistic, samples):
    """(low, high) of the percentile bootstrap interval; degenerate samples give the statistic itself."""
    samples = [np.asarray(s, np.float64) for s in samples]
    value = float(statistic(*samples))
    if all(np.ptp(s) == 0 for s in samples):
        return value, value
    res = stats.bootstrap(tuple(samples), statistic, vectorized=False, n_resamples=RESAMPLES,
                          confidence_level=LEVEL, method="percentile", random_state=np.random.default_rng(SEED))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def cell(scores: Sequence[float]) -> Cell:
    """:class:`Cell` of one configuration's run scores."""
    x = np.asarray(scores, np.float64)
    if x.size == 0:
        raise ValueError("a cell needs at least one score")
    if x.size == 1:
        return Cell(1, float(x[0]), None, None, None)
    low, high = _interval(np.mean, [x])
    return Cell(int(x.size), float(x.mean()), float(x.std(ddof=1)), low, high)


@dataclasses.dataclass(frozen=True)
class Difference:
    """B − A: the mean difference, its interval, whether the runs were paired by seed, and the verdict."""

    mean: float
    low: Optional[float]
    high: Optional[float]
    n_a: int
    n_b: int
    paired: bool

    @property
    def detected(self) -> bool:
        """Whether the interval excludes 0."""
        return self.low is not None and (self.low > 0 or self.high < 0)

    def verdict(self, better: str, worse: str) -> str:
        """"<better> ahead" / "<worse> ahead" where the interval excludes 0, else "no difference detected"."""
        n = f"n = {self.n_a}" if self.n_a == self.n_b else f"n = {self.n_a}, {self.n_b}"
        if self.low is None:
            return f"not testable ({n})"
        if not self.detected:
            return f"no difference detected ({n})"
        return f"{better if self.mean > 0 else worse} ahead ({n})"

    def text(self, digits: int = 1) -> str:
        if self.low is None:
            return f"{self.mean:+.{digits}f}"
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def _t_interval(mean: float, se: float, dof: float):
    """mean ± t(1 − (1 − LEVEL)/2, dof) · se; a zero standard error gives the mean itself."""
    if se == 0:
        return mean, mean
    half = float(stats.t.ppf(0.5 + LEVEL / 2, dof)) * se
    return mean - half, mean + half


def difference(a: Dict[int, float], b: Dict[int, float]) -> Difference:
    """B − A of two cells given as {seed: score} with its Student-t interval: the paired interval
    mean(d) ± t(n − 1)·sd(d)/sqrt(n) of the per-seed differences d when both hold the same seeds,
    else Welch's interval with the Welch–Satterthwaite degrees of freedom."""
    paired = set(a) == set(b) and len(a) > 1
    if paired:
        d = np.asarray([b[s] - a[s] for s in sorted(a)], np.float64)
        low, high = _t_interval(float(d.mean()), float(d.std(ddof=1)) / np.sqrt(d.size), d.size - 1)
        return Difference(float(d.mean()), float(low), float(high), len(a), len(b), True)
    xa, xb = (np.asarray(list(x.values()), np.float64) for x in (a, b))
    mean = float(xb.mean() - xa.mean())
    if len(xa) < 2 or len(xb) < 2:
        return Difference(mean, None, None, len(xa), len(xb), False)
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    se = float(np.sqrt(va + vb))
    dof = (va + vb) ** 2 / (va ** 2 / (xa.size - 1) + vb ** 2 / (xb.size - 1)) if se > 0 else 1.0
    low, high = _t_interval(mean, se, dof)
    return Difference(mean, float(low), float(high), len(xa), len(xb), False)


def iqm(x) -> float:
    """Interquartile mean: the mean of the middle 50% of the values (scipy's trimmed mean at 25%)."""
    return float(stats.trim_mean(np.asarray(x, np.float64), 0.25))


def iqm_cell(scores_by_task: Sequence[Sequence[float]]) -> Cell:
    """The IQM of every run score over tasks, with a bootstrap interval stratified by task (a task with
    one run stays fixed in every resample)."""
    tasks = [np.asarray(t, np.float64) for t in scores_by_task if len(t)]
    pooled = np.concatenate(tasks)
    varied = [t for t in tasks if t.size > 1]
    if pooled.size < 2 or not varied:
        return Cell(int(pooled.size), iqm(pooled), None, None, None)
    fixed = np.concatenate([t for t in tasks if t.size == 1] or [np.zeros(0)])
    low, high = _interval(lambda *ts: iqm(np.concatenate((fixed,) + ts)), varied)
    return Cell(int(pooled.size), iqm(pooled), float(pooled.std(ddof=1)), low, high)
