"""Pruning that keeps accuracy: r x 1 group-sparse weights that from_torch stores group-sparse.

    from sparselite import prune
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    pruner = prune.GradualPruner(model, opt, density={"pointwise": 0.1, "linear": 0.1}, group=4,
                                 end_step=2000, exclude=("first", "last"), permute=True)
    ... the usual training loop, or prune.distill(model, teacher, batches, opt, steps=..., pruner=pruner)
    pruner.finish()

GradualPruner: Zhu & Gupta's cubic schedule inside your training loop. distill: train against a
dense teacher on unlabeled data. choose_permutation: output-channel order whose groups keep more
magnitude (stored as the format's out_perm). calibrated_oneshot: no training loop, layer-wise
reconstruction on calibration inputs (SparseGPT-style); magnitude_oneshot: the quick baseline;
recalibrate_batchnorm: batch-norm statistics again after one-shot pruning; match_batchnorm:
corrects them towards the dense model's instead; layer_sensitivity: which layers tolerate pruning.
Needs torch (the `torch` extra); `import sparselite` alone does not import it.
"""
try:
    import torch  # noqa: F401
except ImportError as exc:   # pragma: no cover - depends on the install
    raise ImportError("sparselite.prune needs PyTorch: pip install torch") from exc

from .distill import distill, distill_loss, model_output
from .gradual import GradualPruner, LayerReport, PruneReport, cubic_density
from .layers import KINDS, group_mask, kept_energy, layer_kind, select_layers
from .oneshot import calibrated_oneshot, layer_sensitivity, magnitude_oneshot, match_batchnorm, recalibrate_batchnorm
from .permute import choose_permutation

__all__ = ["GradualPruner", "cubic_density", "distill", "distill_loss", "model_output", "magnitude_oneshot",
           "calibrated_oneshot", "recalibrate_batchnorm", "match_batchnorm", "layer_sensitivity",
           "choose_permutation", "kept_energy", "group_mask", "select_layers",
           "layer_kind", "KINDS", "PruneReport", "LayerReport"]
