"""Channel rearrangement: an output-channel order whose r x 1 groups keep more of the weight.

Pruning keeps whole groups of r consecutive output channels at each input column, so channels
whose large weights sit in the same columns should share a group. The order found here is kept
by the pruner; from_torch then stores the rows in that order with the format's out_perm, so the
network and its neighbouring layers stay as they are."""
import numpy as np
import torch

from .layers import kept_energy

_PAIR_BLOCK = 1 << 22   # swap candidates x columns evaluated at once (float32: 16 MiB a temporary)


def choose_permutation(w2d, density, group, rounds=60, seed=0):
    """Output-channel order (LongTensor, physical row -> channel) for pruning the [OC, K] weight
    `w2d` to `density` in `group` x 1 groups: a greedy grouping of channels whose largest weights
    share columns, then swaps between random pairs of groups while they raise the kept squared
    magnitude. Never keeps less than the unpermuted order (which it returns then)."""
    w = w2d.detach().float().cpu().numpy()
    oc, k = w.shape
    identity = torch.arange(oc)
    if group == 1 or oc <= group:
        return identity
    sq = w.astype(np.float64) ** 2
    start = _greedy(sq, density, group) if oc <= 4096 else np.arange(oc)   # overlap is OC x OC
    refined = torch.as_tensor(_refine(sq, start, density, group, rounds, np.random.default_rng(seed)))
    return max((identity, torch.as_tensor(start), refined), key=lambda p: kept_energy(w2d, density, group, p))


def _greedy(sq, density, group):
    """Groups channels by overlap of the weights that unstructured pruning would keep: each group
    starts from the free channel with the most kept magnitude and adds the free channel that
    overlaps the group most. The short group (OC % r channels) comes last."""
    oc, k = sq.shape
    keep = max(1, round(density * sq.size))
    threshold = np.partition(sq.ravel(), -keep)[-keep]
    kept = np.sqrt(sq) * (sq >= threshold)
    overlap = kept @ kept.T
    free = np.ones(oc, dtype=bool)
    order = []
    for first in np.argsort(-kept.sum(axis=1), kind="stable"):
        if not free[first]:
            continue
        free[first] = False
        order.append(first)
        acc = overlap[first].copy()
        for _ in range(group - 1):
            if not free.any():
                break
            j = int(np.argmax(np.where(free, acc, -np.inf)))
            free[j] = False
            order.append(j)
            acc += overlap[j]
    return np.array(order, dtype=np.int64)


def _refine(sq, perm, density, group, rounds, rng):
    """Local search: pairs up groups at random each round and makes, in each pair, the channel
    swap that raises the kept magnitude most, judged by sum(max(e - tau, 0)) over the group norms
    e against the round's threshold tau (the sum of the k largest is the least of
    k tau + sum(max(e - tau, 0)) over tau, so this is exact to first order). Returns the best
    order seen. Padding rows (OC not a multiple of r) stay at the end, as the format stores them."""
    oc, k = sq.shape
    rows = -(-oc // group)
    padded = np.vstack([sq, np.zeros((rows * group - oc, k))]).astype(np.float32)
    phys = np.concatenate([perm, np.arange(oc, rows * group)])   # physical row -> channel
    keep = max(1, round(density * rows * k))
    best, best_value, idle = phys.copy(), -np.inf, 0
    for _ in range(rounds + 1):
        energy = padded[phys].reshape(rows, group, k).sum(axis=1)
        top = np.partition(energy.ravel(), -keep)[-keep:]
        value, tau = float(top.sum()), float(top.min())
        if value > best_value * (1 + 1e-7):
            best, best_value, idle = phys.copy(), value, 0
        else:
            idle += 1
            if idle == 3:
                break
        order = rng.permutation(rows)
        pairs = order[:rows // 2 * 2].reshape(-1, 2)
        step = max(1, _PAIR_BLOCK // (group * group * k))
        for chunk in range(0, len(pairs), step):
            _swap_pairs(padded, phys, energy, tau, pairs[chunk:chunk + step], group, oc)
    return best[:oc]


def _swap_pairs(padded, phys, energy, tau, pairs, group, oc):
    """Applies, for each pair of groups (g1, g2), the best improving swap of one channel of g1
    with one of g2."""
    g1, g2 = pairs[:, 0], pairs[:, 1]
    slots = np.arange(group)
    pos1 = g1[:, None] * group + slots            # [P, r] physical rows
    pos2 = g2[:, None] * group + slots
    x1, x2 = padded[phys[pos1]], padded[phys[pos2]]   # [P, r, K]
    e1, e2 = energy[g1], energy[g2]                    # [P, K]
    n1 = e1[:, None, None] - x1[:, :, None] + x2[:, None, :]   # [P, r, r, K]: swap slot i of g1 with j of g2
    n2 = e2[:, None, None] - x2[:, None, :] + x1[:, :, None]

    def kept(e):
        return np.maximum(e - tau, 0.0).sum(axis=-1)

    gain = kept(n1) + kept(n2) - (kept(e1) + kept(e2))[:, None, None]
    gain[np.broadcast_to((pos1 >= oc)[:, :, None] | (pos2 >= oc)[:, None, :], gain.shape)] = -np.inf
    flat = gain.reshape(len(pairs), -1)
    best = flat.argmax(axis=1)
    do = flat[np.arange(len(pairs)), best] > 1e-6 * max(float(tau), 1e-30)
    i, j = best // group, best % group
    a, b = pos1[do, i[do]], pos2[do, j[do]]
    phys[a], phys[b] = phys[b], phys[a].copy()
