"""Pruning at initialization: importance scores -> exact-sparsity masks -> reports."""
from sparse_orl.pruning.masks import (
    apply_masks,
    check_sparsity,
    is_prunable,
    keep_top_k,
    masks_from_scores,
    num_kept,
    ones_like_masks,
)
from sparse_orl.pruning.report import format_report, layer_report, masks_report
from sparse_orl.pruning.scores import (
    grasp_scores,
    hessian_gradient_product,
    magnitude_scores,
    random_scores,
    snip_scores,
)

__all__ = [
    "apply_masks", "check_sparsity", "is_prunable", "keep_top_k", "masks_from_scores",
    "num_kept", "ones_like_masks", "format_report", "layer_report", "masks_report",
    "grasp_scores", "hessian_gradient_product", "magnitude_scores", "random_scores", "snip_scores",
]
