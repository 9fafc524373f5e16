"""One-shot pruning without a training loop: by magnitude, or by layer-wise reconstruction on
calibration inputs (SparseGPT's OBS updates, with r x 1 group masks)."""
import torch

from .gradual import report
from .layers import (batchnorm_scales, check_group, group_mask, group_scores, keep_top, kept_energy, scaled,
                     select_layers)
from .permute import choose_permutation
from .progress import Progress


def magnitude_oneshot(model, density, group=4, *, exclude=(), permute=False, fold_batchnorm=False):
    """Zeroes, in place, all but the `density` fraction of r x 1 groups with the largest L2 norm in
    each selected layer (density/exclude as in GradualPruner). Quick, but at useful densities it
    needs fine-tuning afterwards. fold_batchnorm: judge a 1x1 conv's weights as the batch norm after
    it scales them (batchnorm_scales). Returns the PruneReport."""
    check_group(group)
    layers = select_layers(model, density, exclude)
    if fold_batchnorm:
        batchnorm_scales(model, layers)
    kept = {}
    with torch.no_grad():
        for layer in layers:
            w = scaled(layer)
            if permute and group > 1:
                layer.perm = choose_permutation(w, layer.density, group).to(w.device)
                kept[layer.name] = (kept_energy(w, layer.density, group, layer.perm),
                                    kept_energy(w, layer.density, group))
            layer.module.weight.mul_(group_mask(w, layer.density, group, layer.perm).to(w.dtype)
                                     .reshape(layer.module.weight.shape))
    return report(layers, group, kept)


def recalibrate_batchnorm(model, batches):
    """Re-estimates every batch norm's running mean and variance on `batches` (model inputs), as
    pruning shifts the statistics of the layers before them; the model is left in eval mode. A
    cheap step after one-shot pruning of a conv net."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    device = next(model.parameters()).device
    for m in norms:
        m.reset_running_stats()
        m.momentum = None          # a plain average over the batches
    model.train()
    try:
        with torch.no_grad():
            for batch in batches:
                _call(model, _to(batch, device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()


def match_batchnorm(model, reference, batches):
    """After pruning: moves each batch norm's running statistics so that its input's distribution on
    `batches` in the pruned `model` maps onto the one in the dense `reference` (same architecture),
    norm by norm in forward order. Unlike recalibrate_batchnorm it keeps the statistics the model was
    trained with, and corrects only the shift and scale pruning caused: a few unrepresentative
    calibration photos then cannot replace ImageNet's statistics with their own. `batches`: input tensors,
    concatenated for one forward pass."""
    x = _to(torch.cat(list(batches)), next(model.parameters()).device)
    kinds = torch.nn.modules.batchnorm._BatchNorm

    def statistics(a):   # per channel (dim 1)
        dims = [d for d in range(a.dim()) if d != 1]
        return a.mean(dims), a.var(dims)

    wanted = {}

    def record(name):
        return lambda m, args: wanted.__setitem__(name, statistics(args[0]))

    _run_hooked(reference, x, [m.register_forward_pre_hook(record(n)) for n, m in reference.named_modules()
                               if isinstance(m, kinds)])

    def correct(name):
        def hook(m, args):
            mean, var = statistics(args[0])
            ref_mean, ref_var = wanted[name]
            scale = ((var + m.eps) / (ref_var + m.eps)).sqrt()
            m.running_mean.copy_(mean - (ref_mean - m.running_mean) * scale)
            m.running_var.copy_((m.running_var + m.eps) * scale.square() - m.eps).clamp_(min=0)
        return hook

    # pre-hooks correct each norm before it runs, so later norms see the corrected earlier ones
    _run_hooked(model, x, [m.register_forward_pre_hook(correct(n)) for n, m in model.named_modules()
                           if isinstance(m, kinds) and n in wanted])


def _run_hooked(model, x, hooks):
    """One forward pass of x in eval mode without gradients, then the hooks removed."""
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()


def layer_sensitivity(model, batches, density, group=4, *, exclude=(), fold_batchnorm=False):
    """{layer name: KL divergence of the model's softmax output on `batches`} with only that layer
    magnitude-pruned to `density` (the model is left as it was, fold_batchnorm as in
    magnitude_oneshot): which layers tolerate one-shot pruning. `batches`: input tensors; one forward
    pass of them per layer."""
    x = _to(torch.cat(list(batches)), next(model.parameters()).device)
    model.eval()
    with torch.no_grad():
        reference = torch.log_softmax(model(x), -1)
    result = {}
    for layer in select_layers(model, density, exclude):
        weight = layer.module.weight.detach().clone()
        try:
            magnitude_oneshot(model, {layer.name: density}, group, fold_batchnorm=fold_batchnorm)
            with torch.no_grad():
                logp = torch.log_softmax(model(x), -1)
            result[layer.name] = float((reference.exp() * (reference - logp)).sum(-1).mean())
        finally:
            with torch.no_grad():
                layer.module.weight.copy_(weight)
    return result


class _Stop(Exception):
    """Raised by a hook once the layers being calibrated have seen their inputs."""


def _call(model, batch):
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def _to(batch, device):
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


def _columns(module, x):
    """The layer input as [samples, K] rows (a 1x1 conv reads every stride-th pixel)."""
    if isinstance(module, torch.nn.Conv2d):
        sh, sw = module.stride
        x = x[:, :, ::sh, ::sw]
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    return x.reshape(-1, x.shape[-1])


def _stages(model, layers, batch):
    """Layers grouped by the tensor they read (a transformer's query, key and value share one),
    in the order the forward pass reaches them."""
    order, seen = [], {}
    hooks = [l.module.register_forward_pre_hook(
        lambda m, args, layer=l: order.append((layer, id(args[0])))) for l in layers]
    try:
        with torch.no_grad():
            _call(model, batch)
    finally:
        for h in hooks:
            h.remove()
    stages = []
    for layer, key in order:
        if any(layer is l for stage in stages for l in stage):
            continue
        if key in seen:
            seen[key].append(layer)
        else:
            seen[key] = [layer]
            stages.append(seen[key])
    missing = [l.name for l in layers if not any(l is m for s in stages for m in s)]
    if missing:
        raise ValueError(f"the calibration forward pass does not reach {missing[:3]}: exclude them")
    return stages


def calibrated_oneshot(model, batches, density, group=4, *, exclude=(), permute=False, damp=0.01,
                       block=128, fold_batchnorm=False, progress=True):
    """Prunes in place, layer by layer in the order the forward pass reaches them, solving for the
    kept weights so that each layer's output on the calibration inputs changes least (SparseGPT:
    r x 1 group masks chosen by OBS saliency per block of `block` input columns, the remaining
    weights updated through the inverse Hessian of the layer input). Each layer sees the inputs
    that the already-pruned layers before it produce. `batches`: a list of model inputs (tensor,
    tuple, or dict of keyword arguments), a few hundred samples in all. damp: Hessian dampening,
    a fraction of its mean diagonal. fold_batchnorm: weigh each output channel's error by the batch
    norm after it (batchnorm_scales). Returns the PruneReport; the bar shows each layer's relative
    output error (loss)."""
    check_group(group)
    batches = list(batches)
    if not batches:
        raise ValueError("calibrated_oneshot needs calibration batches")
    layers = select_layers(model, density, exclude)
    if fold_batchnorm:
        batchnorm_scales(model, layers)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    stages = _stages(model, layers, _to(batches[0], device))
    bar = Progress(len(layers), "calibrating", unit="layers") if progress else None
    kept, done = {}, 0
    try:
        for stage in stages:
            hessians = _hessians(model, stage, batches, device)
            for layer in stage:
                w = scaled(layer)
                if permute and group > 1:
                    layer.perm = choose_permutation(w, layer.density, group).to(w.device)
                    kept[layer.name] = (kept_energy(w, layer.density, group, layer.perm),
                                        kept_energy(w, layer.density, group))
                error = _sparsegpt(layer, hessians[layer.name], group, damp, block)
                done += 1
                if bar:
                    bar.update(done, density=layer.density, loss=round(error, 5))
    finally:
        model.train(was_training)
        if bar:
            bar.close()
    return report(layers, group, kept)


def _hessians(model, stage, batches, device):
    """{layer name: X^T X / samples} of each stage layer's input over the calibration batches;
    each forward pass stops once all of them have fired."""
    sums = {l.name: None for l in stage}
    counts = {l.name: 0 for l in stage}
    fired = set()

    def hook(module, args, layer):
        x = _columns(module, args[0].detach()).double()   # float64: immune to TF32 matmuls
        h = x.T @ x
        sums[layer.name] = h if sums[layer.name] is None else sums[layer.name] + h
        counts[layer.name] += x.shape[0]
        fired.add(layer.name)
        if len(fired) == len(stage):
            raise _Stop

    hooks = [l.module.register_forward_pre_hook(lambda m, a, layer=l: hook(m, a, layer)) for l in stage]
    try:
        with torch.no_grad():
            for batch in batches:
                fired.clear()
                try:
                    _call(model, _to(batch, device))
                except _Stop:
                    pass
    finally:
        for h in hooks:
            h.remove()
    return {name: sums[name] / max(1, counts[name]) for name in sums}


@torch.no_grad()
def _sparsegpt(layer, hessian, group, damp, block):
    """Prunes one layer in place; returns its relative output error on the calibration inputs,
    trace(D H D^T) / trace(W H W^T) with D the weight change."""
    w2d = layer.matrix()
    oc, k = w2d.shape
    perm = layer.perm if layer.perm is not None else torch.arange(oc, device=w2d.device)
    pad = -oc % group
    # rows weighed by the batch norm after them: rows are solved independently, only the group
    # choice compares them, so scaling in and out again changes the mask and nothing else
    row_scale = (torch.ones(oc, device=w2d.device, dtype=torch.float64) if layer.scale is None
                 else layer.scale.to(w2d.device, torch.float64).clamp_min(1e-12))
    # float64 throughout: the inverse Hessian of a wide layer is ill-conditioned (and float32
    # matmuls may run as TF32 on GPUs)
    W = torch.nn.functional.pad((w2d.double() * row_scale[:, None])[perm], (0, 0, 0, pad))   # physical rows, padded
    original = W.clone()
    H = hessian.clone().to(W.device, torch.float64)
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += damp * torch.diagonal(H).mean() * torch.eye(k, device=H.device, dtype=H.dtype)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    for i1 in range(0, k, block):
        i2 = min(i1 + block, k)
        W1, Hinv1 = W[:, i1:i2].clone(), Hinv[i1:i2, i1:i2]
        saliency = W1.square() / torch.diagonal(Hinv1).square()[None, :]
        scores = group_scores(saliency.sqrt(), group)          # group sums of the saliency
        prune = (~keep_top(scores, layer.density)).repeat_interleave(group, dim=0)
        Q1, Err1 = torch.zeros_like(W1), torch.zeros_like(W1)
        for i in range(i2 - i1):
            w = W1[:, i]
            q = torch.where(prune[:, i], torch.zeros_like(w), w)
            err = (w - q) / Hinv1[i, i]
            W1[:, i:] -= err[:, None] * Hinv1[i, i:][None, :]
            Q1[:, i], Err1[:, i] = q, err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    result = torch.empty_like(w2d)
    result[perm] = (W[:oc] / row_scale[perm, None]).to(w2d.dtype)
    layer.module.weight.copy_(result.reshape(layer.module.weight.shape))
    delta = (W - original)[:oc]
    h = hessian.to(W.device, torch.float64)
    reference = float(((original[:oc] @ h) * original[:oc]).sum())
    return float(((delta @ h) * delta).sum()) / reference if reference > 0 else 0.0

