"""Torch ops that convert to one sparselite op each. Use them in a module you convert; they
run in torch too (the reference), and torch.export keeps them whole.

    from sparselite.converters.torch_ops import mean_pool, l2_normalize
    emb = l2_normalize(mean_pool(hidden, attention_mask))   # sentence embedding
"""
import torch


@torch.library.custom_op("sparselite::mean_pool", mutates_args=())
def mean_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x [B, T, C], mask [B, T] as weights -> [B, C]: sum_t mask x / max(sum_t mask, 1e-9)
    (sentence-transformers' mean pooling)."""
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp(min=1e-9)


@mean_pool.register_fake
def _(x, mask):
    return x.new_empty(x.shape[0], x.shape[2])


@torch.library.custom_op("sparselite::l2_normalize", mutates_args=())
def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """x / max(||x||, eps) over the last dimension (torch.nn.functional.normalize)."""
    return torch.nn.functional.normalize(x, p=2.0, dim=-1, eps=eps)


@l2_normalize.register_fake
def _(x, eps=1e-12):
    return torch.empty_like(x)
