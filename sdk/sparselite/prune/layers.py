"""Which layers are pruned, to what density, and r x 1 group masks over their weights."""
import fnmatch
from dataclasses import dataclass
from typing import Optional

import torch

KINDS = ("pointwise", "linear")   # the weights from_torch stores group-sparse
GROUP_SIZES = (1, 2, 4, 8)


def layer_kind(module):
    """"pointwise" for a 1x1 convolution without groups or padding, "linear" for nn.Linear, else None."""
    if isinstance(module, torch.nn.Linear):
        return "linear"
    if (isinstance(module, torch.nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1
            and module.padding in ((0, 0), "valid")):
        return "pointwise"
    return None


@dataclass
class Layer:
    name: str
    module: torch.nn.Module
    kind: str
    density: float                        # the final target
    perm: Optional[torch.Tensor] = None   # rows grouped in this order (physical row -> output channel)
    scale: Optional[torch.Tensor] = None  # per output channel: how much the batch norm after it amplifies it

    def matrix(self):
        """The weight as [OC, K] (a view)."""
        return self.module.weight.reshape(self.module.weight.shape[0], -1)


def batchnorm_scales(model, layers):
    """Sets each 1x1 conv layer's `scale` to |gamma| / sqrt(running_var + eps) of the batch norm that
    directly follows it (the next module in module order, over as many channels): what a weight of that
    output channel is worth once the norm is folded in. Rows of one r x 1 group feed different norms,
    so comparing raw weights across them misjudges which group matters."""
    modules = list(model.named_modules())
    position = {name: i for i, (name, _) in enumerate(modules)}
    for layer in layers:
        if layer.kind != "pointwise":
            continue
        for _, m in modules[position[layer.name] + 1:]:
            if layer_kind(m) or isinstance(m, torch.nn.Conv2d):
                break
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.num_features == layer.module.out_channels:
                if m.running_var is not None:
                    gamma = m.weight.detach() if m.weight is not None else torch.ones_like(m.running_var)
                    layer.scale = (gamma.abs() / torch.sqrt(m.running_var + m.eps)).float()
                break
    return layers


def scaled(layer):
    """The layer's [OC, K] weights as pruning should judge them: rows times `scale` (a copy), or the view."""
    w = layer.matrix()
    return w if layer.scale is None else w.detach() * layer.scale.to(w.device, w.dtype)[:, None]


def check_group(group):
    if group not in GROUP_SIZES:
        raise ValueError(f"group must be one of {GROUP_SIZES}, got {group!r}")


def select_layers(model, density, exclude=()):
    """The layers to prune, in module order, each with its target density.

    density: one number for every 1x1 conv and linear layer, or a dict whose keys are layer kinds
        ("pointwise", "linear") or fnmatch patterns over module names ("encoder.layer.0.*"); a
        pattern wins over a kind; a layer that no key covers is not pruned.
    exclude: module names or patterns to leave dense; "first" and "last" name the first and last
        1x1-conv/linear layer in module order (a stem projection, the classifier)."""
    candidates = [(name, m, layer_kind(m)) for name, m in model.named_modules() if layer_kind(m)]
    if not candidates:
        raise ValueError("the model has no 1x1 convolution or linear layer to prune")
    if isinstance(exclude, str):
        exclude = (exclude,)
    named = {"first": candidates[0][0], "last": candidates[-1][0]}
    patterns = [named.get(e, e) for e in exclude]
    for p in patterns:
        if not any(fnmatch.fnmatchcase(name, p) for name, _, _ in candidates):
            raise ValueError(f"exclude {p!r} matches no 1x1 conv or linear layer")
    targets = density if isinstance(density, dict) else {kind: density for kind in KINDS}
    for key, value in targets.items():
        if not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
            raise ValueError(f"density for {key!r} must be in (0, 1], got {value!r}")
        if key not in KINDS and not any(fnmatch.fnmatchcase(name, key) for name, _, _ in candidates):
            raise ValueError(f"density key {key!r} is neither a layer kind {KINDS} nor a pattern that "
                             "matches a 1x1 conv or linear layer")
    layers = []
    for name, module, kind in candidates:
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        matches = [v for k, v in targets.items() if k not in KINDS and fnmatch.fnmatchcase(name, k)]
        target = matches[-1] if matches else targets.get(kind)
        if target is not None and target < 1.0:
            layers.append(Layer(name, module, kind, float(target)))
    if not layers:
        raise ValueError("no layer left to prune (check density and exclude)")
    return layers


def group_scores(w2d, group, perm=None):
    """[ceil(OC/r), K]: the squared L2 norm of each r x 1 group, rows taken in `perm` order."""
    rows = w2d if perm is None else w2d[perm]
    sq = rows.detach().float().square()
    pad = -sq.shape[0] % group
    if pad:
        sq = torch.nn.functional.pad(sq, (0, 0, 0, pad))
    return sq.reshape(-1, group, sq.shape[1]).sum(dim=1)


def keep_top(scores, density):
    """Bool like `scores` keeping the `density` fraction of highest scores (exactly that many; at
    least one)."""
    keep = max(1, round(density * scores.numel()))
    flat = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    flat[torch.topk(scores.flatten(), keep, sorted=False).indices] = True
    return flat.reshape(scores.shape)


def group_mask(w2d, density, group, perm=None):
    """Bool mask like w2d keeping the `density` fraction of r x 1 groups with the largest norm."""
    rows = keep_top(group_scores(w2d, group, perm), density).repeat_interleave(group, dim=0)[:w2d.shape[0]]
    if perm is None:
        return rows
    mask = torch.empty_like(rows)
    mask[perm] = rows   # physical row j holds channel perm[j]
    return mask


def kept_energy(w2d, density, group, perm=None):
    """Fraction of sum(w^2) that r x 1 group pruning to `density` keeps (rows in `perm` order)."""
    scores = group_scores(w2d, group, perm)
    keep = max(1, round(density * scores.numel()))
    total = float(scores.sum())
    return float(torch.topk(scores.flatten(), keep).values.sum()) / total if total > 0 else 1.0
