"""Gradual r x 1 group pruning inside the user's training loop (Zhu & Gupta's cubic schedule)."""
from dataclasses import dataclass
from typing import List, Optional

import torch
from torch.ao.pruning import CubicSL

from .layers import check_group, group_mask, kept_energy, select_layers
from .permute import choose_permutation
from .progress import Progress


def cubic_density(step, final_density, start_step, end_step, every=1, initial_density=1.0):
    """Zhu & Gupta's schedule (torch.ao.pruning.CubicSL's formula) as a density: initial_density
    up to start_step, then falling as a cubic to final_density at end_step, in steps of `every`
    (the value holds between mask updates)."""
    if step < start_step:
        return initial_density
    if end_step <= start_step:
        return final_density
    t = start_step + (min(step, end_step) - start_step) // every * every
    if step >= end_step:
        t = end_step
    sparsity = CubicSL.sparsity_compute_fn(s_0=1.0 - initial_density, s_f=1.0 - final_density, t=t,
                                           t_0=start_step, dt=every, n=(end_step - start_step) / every)
    return 1.0 - sparsity


@dataclass
class LayerReport:
    name: str
    kind: str
    group: int
    target: float
    density: float                       # nonzero fraction of the weight now
    size: int                            # weights in the layer
    kept: Optional[float] = None         # squared magnitude kept at the target, rows permuted
    kept_unpermuted: Optional[float] = None


@dataclass
class PruneReport:
    layers: List[LayerReport]

    @property
    def density(self):
        """Nonzero fraction over all pruned weights."""
        return sum(l.density * l.size for l in self.layers) / sum(l.size for l in self.layers)

    def summary(self):
        lines = [f"{'layer':<40} {'kind':<9} {'r':>2} {'density':>8}  kept |w|^2 (permuted / not)"]
        for l in self.layers:
            kept = "" if l.kept is None else f"{l.kept:.3f} / {l.kept_unpermuted:.3f}"
            lines.append(f"{l.name:<40} {l.kind:<9} {l.group:>2} {l.density:>8.3f}  {kept}")
        return "\n".join(lines)


class GradualPruner:
    """Prunes a model's 1x1 convolutions and linear layers in r x 1 groups of output channels
    while it trains: masks follow cubic_density from start_step to end_step (updated every
    `every` optimizer steps) and are re-applied after every optimizer step through a hook, so the
    weights themselves hold exact zeros at all times; finish() leaves plain weights that from_torch
    stores group-sparse with this r.

        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        pruner = GradualPruner(model, opt, density={"pointwise": 0.1, "linear": 0.1}, group=4,
                               end_step=2000, exclude=("first", "last"))
        for x, y in batches:
            loss = loss_fn(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()   # the pruner's hook runs here
            pruner.log(loss)                               # for the progress bar
        report = pruner.finish()

    density / exclude: see select_layers (per kind, per name pattern; "first"/"last").
    group: r in {1, 2, 4, 8}. permute: choose each layer's output-channel order first
    (choose_permutation) so that its groups keep more magnitude; from_torch stores it as out_perm.
    progress: draw the bar (step, density, loss) on stderr; total_steps sets its length."""

    def __init__(self, model, optimizer, density, group=4, *, end_step, start_step=0, every=None,
                 initial_density=1.0, exclude=(), permute=False, progress=True, total_steps=None):
        check_group(group)
        if not 0 <= start_step <= end_step:
            raise ValueError(f"need 0 <= start_step <= end_step, got {start_step} and {end_step}")
        if not 0.0 < initial_density <= 1.0:
            raise ValueError(f"initial_density must be in (0, 1], got {initial_density}")
        self.model, self.group = model, group
        self.start_step, self.end_step, self.initial_density = start_step, end_step, initial_density
        self.every = every or max(1, (end_step - start_step) // 20)
        self.layers = select_layers(model, density, exclude)
        self.kept = {}
        with torch.no_grad():
            for layer in self.layers:
                w = layer.matrix()
                if permute and group > 1:
                    layer.perm = choose_permutation(w, layer.density, group).to(w.device)
                    self.kept[layer.name] = (kept_energy(w, layer.density, group, layer.perm),
                                             kept_energy(w, layer.density, group))
        self.masks = {l.name: torch.ones_like(l.module.weight, dtype=torch.bool) for l in self.layers}
        self.step_count = 0
        self.loss = None
        self._bar = Progress(total_steps or end_step, "pruning") if progress else None
        self._hook = optimizer.register_step_post_hook(lambda *_: self.step())
        self._update_masks()

    def density_at(self, step, layer):
        return cubic_density(step, layer.density, self.start_step, self.end_step, self.every,
                             self.initial_density)

    @property
    def density(self):
        """The scheduled density now, over all pruned weights."""
        sizes = [l.module.weight.numel() for l in self.layers]
        return sum(self.density_at(self.step_count, l) * n for l, n in zip(self.layers, sizes)) / sum(sizes)

    def step(self):
        """Called after each optimizer step (by the hook): advances the schedule, updates the
        masks when due, and zeroes the pruned weights again."""
        self.step_count += 1
        due = (self.step_count >= self.start_step and (self.step_count - self.start_step) % self.every == 0
               or self.step_count == self.end_step)
        if due and self.step_count <= self.end_step:
            self._update_masks()
        else:
            self._apply()
        if self._bar:
            self._bar.update(self.step_count, density=round(self.density, 4), loss=self.loss)

    def log(self, loss):
        """Records the latest training loss for the progress bar."""
        self.loss = float(loss.detach()) if torch.is_tensor(loss) else float(loss)

    def finish(self):
        """Prunes to the final densities (at once if training stopped before end_step), removes
        the hook and returns the per-layer report."""
        self._hook.remove()
        if self.step_count < self.end_step:
            self.step_count = self.end_step
            self._update_masks()
        if self._bar:
            self._bar.update(max(self.step_count, self._bar.total), density=round(self.density, 4),
                             loss=self.loss)
            self._bar.close()
        return report(self.layers, self.group, self.kept)

    @torch.no_grad()
    def _update_masks(self):
        for layer in self.layers:
            w = layer.matrix()
            mask = group_mask(w, self.density_at(self.step_count, layer), self.group, layer.perm)
            self.masks[layer.name] = mask.reshape(layer.module.weight.shape)
        self._apply()

    @torch.no_grad()
    def _apply(self):
        for layer in self.layers:
            layer.module.weight.mul_(self.masks[layer.name])


def report(layers, group, kept=None):
    kept = kept or {}
    rows = []
    for l in layers:
        w = l.module.weight
        permuted, plain = kept.get(l.name, (None, None))
        rows.append(LayerReport(l.name, l.kind, group, l.density, float((w != 0).float().mean()), w.numel(),
                                permuted, plain))
    return PruneReport(rows)
