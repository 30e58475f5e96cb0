"""Pruning at initialization: importance scores -> exact-sparsity masks -> reports."""
from sparse_orl.pruning.allocation import (
    ALLOCATIONS,
    allocate_masks,
    check_allocation,
    erk_counts,
    exclude_pruned,
    exponential_schedule,
    iterative_masks,
    kept_count,
    within_layer_rank,
)
from sparse_orl.pruning.driver import prune_at_init
from sparse_orl.pruning.masked_optimizer import MaskedState, masked
from sparse_orl.pruning.masks import (
    apply_masks,
    check_sparsity,
    default_prunable,
    is_prunable,
    keep_top_k,
    masks_from_scores,
    num_kept,
    ones_like_masks,
)
from sparse_orl.pruning.registry import PRUNERS, PrunerSpec, register_pruner, resolve_pruner
from sparse_orl.pruning.report import format_report, layer_report, masks_report
from sparse_orl.pruning.rescale import fan_in_rescale
from sparse_orl.pruning.scores import (
    grasp_scores,
    hessian_gradient_product,
    magnitude_scores,
    random_scores,
    snip_scores,
)
from sparse_orl.pruning.synflow import (
    chain_paths,
    check_paths_cover,
    mlp_paths,
    sequential_paths,
    synaptic_flow,
    synflow_scores,
)

__all__ = [
    "prune_at_init", "masked", "MaskedState", "default_prunable",
    "PRUNERS", "PrunerSpec", "register_pruner", "resolve_pruner", "chain_paths",
    "fan_in_rescale",
    "ALLOCATIONS", "allocate_masks", "check_allocation", "erk_counts", "exclude_pruned", "exponential_schedule",
    "iterative_masks", "kept_count", "within_layer_rank",
    "check_paths_cover", "mlp_paths", "sequential_paths", "synaptic_flow", "synflow_scores",
    "apply_masks", "check_sparsity", "is_prunable", "keep_top_k", "masks_from_scores",
    "num_kept", "ones_like_masks", "format_report", "layer_report", "masks_report",
    "grasp_scores", "hessian_gradient_product", "magnitude_scores", "random_scores", "snip_scores",
]
