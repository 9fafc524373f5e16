"""Group sparsity: detection of the group size per weight, encoding, and one-shot pruning."""
import numpy as np

GROUP_SIZES = (8, 4, 2, 1)
# Zero fraction above which the sparse form is used, by group size (MNN's measured break-even).
SPARSE_THRESHOLDS = {1: 0.6, 2: 0.5, 4: 0.3, 8: 0.3}


def stored_elements(w2d, r):
    """Values a group-sparse form with group size r stores (occupied r x 1 groups times r)."""
    oc, k = w2d.shape
    padded = np.zeros(((oc + r - 1) // r * r, k), dtype=bool)
    padded[:oc] = w2d != 0
    return int(padded.reshape(-1, r, k).any(axis=1).sum()) * r


def choose_group_size(w2d, min_fill=0.9, thresholds=SPARSE_THRESHOLDS):
    """Largest r whose stored groups are >= min_fill nonzero; 0 when dense storage wins."""
    nnz = np.count_nonzero(w2d)
    if nnz == 0:
        return 1
    for r in GROUP_SIZES:
        stored = stored_elements(w2d, r)
        if nnz / stored >= min_fill:
            return r if 1.0 - stored / w2d.size >= thresholds[r] else 0
    return 1 if 1.0 - nnz / w2d.size >= thresholds[1] else 0


def choose_group_layout(w2d, min_fill=0.9, thresholds=SPARSE_THRESHOLDS):
    """(r, out_perm): choose_group_size's r, or a larger one over the rows reordered so that rows
    with the same zero pattern share groups (out_perm[physical row] = output channel; None keeps
    the order). Weights pruned in r x 1 groups of a channel permutation get their r back."""
    r = choose_group_size(w2d, min_fill, thresholds)
    if r == GROUP_SIZES[0] or w2d.shape[0] < 2:
        return r, None
    _, pattern = np.unique(np.packbits(w2d != 0, axis=1), axis=0, return_inverse=True)
    by_pattern = np.argsort(pattern.ravel(), kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(pattern.ravel()[by_pattern]) != 0])
    classes = np.split(by_pattern, starts[1:])
    for candidate in (g for g in GROUP_SIZES if g > r):
        # Whole groups of each pattern first; the rows left over (a short last group) at the end.
        full = [c[:len(c) // candidate * candidate] for c in classes]
        rest = [c[len(c) // candidate * candidate:] for c in classes]
        perm = np.concatenate(full + rest)
        if choose_group_size(w2d[perm], min_fill, thresholds) == candidate:
            return candidate, perm.astype(np.uint32)
    return r, None


def encode_group_sparse(w2d, r):
    """Group-CSR form of W[OC x K]: (row_ptr uint32, col_idx uint16|uint32, values [nnz, r])."""
    oc, k = w2d.shape
    rows = (oc + r - 1) // r
    padded = np.zeros((rows * r, k), dtype=w2d.dtype)
    padded[:oc] = w2d
    groups = padded.reshape(rows, r, k)
    mask = (groups != 0).any(axis=1)                       # [rows, K]
    row_ptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.uint32)
    g_idx, col = np.nonzero(mask)
    values = groups[g_idx, :, col]                         # [nnz, r]
    col_idx = col.astype(np.uint16 if k <= 65536 else np.uint32)
    return row_ptr, col_idx, np.ascontiguousarray(values)


def decode_group_sparse(row_ptr, col_idx, values, oc, k):
    """Dense W[OC x K] from its group-CSR form (for tests and inspection)."""
    r = values.shape[1] if values.ndim == 2 else 1
    rows = len(row_ptr) - 1
    w = np.zeros((rows * r, k), dtype=np.float32)
    for g in range(rows):
        for e in range(row_ptr[g], row_ptr[g + 1]):
            w[g * r:(g + 1) * r, col_idx[e]] = values[e]
    return w[:oc]


def prune_groups(module, density, group=4):
    """One-shot magnitude pruning, in place, of every 1x1 conv and linear weight into r x 1
    output-channel groups: per layer, keeps the `density` fraction of groups with the largest
    L2 norm. Returns {module path: kept density}. Accuracy drops fast at useful densities:
    sparselite.prune has the tools that keep it (gradual pruning, distillation, calibration)."""
    import torch

    from sparselite.prune.layers import group_mask

    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    if group not in GROUP_SIZES:
        raise ValueError(f"group must be one of {GROUP_SIZES}, got {group}")
    kept = {}
    with torch.no_grad():
        for path, mod in module.named_modules():
            is_pointwise = isinstance(mod, torch.nn.Conv2d) and mod.kernel_size == (1, 1) and mod.groups == 1
            if not (is_pointwise or isinstance(mod, torch.nn.Linear)):
                continue
            mask = group_mask(mod.weight.reshape(mod.weight.shape[0], -1), density, group)
            mod.weight.mul_(mask.reshape(mod.weight.shape).to(mod.weight.dtype))
            kept[path] = float(mask.float().mean())
    return kept
