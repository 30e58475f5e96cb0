"""D4RL reference returns and the normalized score computed from them."""
from __future__ import annotations

import re
from typing import Optional, Tuple, Union

import numpy as np

# (REF_MIN = random policy, REF_MAX = expert policy) from D4RL `d4rl/infos.py`; the same
# constants serve the v0/v1/v2 datasets of each MuJoCo family.
D4RL_REF_SCORES = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
}


def env_family(env_id_or_name: Optional[str]) -> Optional[str]:
    """Return the MuJoCo family ("halfcheetah", "hopper", "walker2d") named in a string, or None.

    Accepts Gymnasium ids ("HalfCheetah-v5"), Minari ids ("sb3/hopper/medium-v0") and D4RL
    file names ("walker2d-medium-v2.hdf5"); matching is case-insensitive on word-ish tokens.
    """
    if not env_id_or_name:
        return None
    # Split on path separators, dashes, dots and underscores so "hopper-medium" matches but
    # a family name merely embedded in another word does not.
    tokens = re.split(r"[/\\\-._\s]+", str(env_id_or_name).lower())
    for family in D4RL_REF_SCORES:
        if family in tokens:
            return family
    return None


def d4rl_reference(env_id_or_name: Optional[str]) -> Optional[Tuple[float, float]]:
    """Return the D4RL ``(ref_min, ref_max)`` returns for the env family in the name, or None."""
    family = env_family(env_id_or_name)
    return None if family is None else D4RL_REF_SCORES[family]


def normalized_score(
    returns: Union[float, np.ndarray], ref_min: float, ref_max: float
) -> Union[float, np.ndarray]:
    """Return ``100 * (R - ref_min) / (ref_max - ref_min)`` (D4RL's score ×100).

    A float in gives a float out; an array in gives an array out.
    """
    if ref_max == ref_min:
        raise ValueError(f"reference scores must differ (ref_min == ref_max == {ref_min})")
    score = 100.0 * (np.asarray(returns, dtype=np.float64) - ref_min) / (ref_max - ref_min)
    return float(score) if np.ndim(score) == 0 else score
