"""sparselite.prune: gradual group pruning, distillation, channel rearrangement, calibrated one-shot;
what they leave converts to .slite with the intended r (and out_perm) and runs as torch does."""
import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sparselite
from sparselite import _schema as S
from sparselite import prune
from sparselite.converters import from_torch
from sparselite.converters.sparsity import choose_group_layout


def test_import_sparselite_does_not_import_torch():
    code = "import sys, sparselite, sparselite.converters; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cubic_density_is_zhu_gupta():
    final, start, end, every = 0.1, 100, 1100, 50
    for step in range(0, 1300, 7):
        t = min(max(step, start), end)
        t = end if step >= end else start + (t - start) // every * every
        expected = final + (1.0 - final) * (1 - (t - start) / (end - start)) ** 3 if step >= start else 1.0
        assert prune.cubic_density(step, final, start, end, every) == pytest.approx(expected, abs=1e-12)
    densities = [prune.cubic_density(s, final, start, end, every) for s in range(1300)]
    assert densities[start] == 1.0 and densities[end] == pytest.approx(final)
    assert all(a >= b for a, b in zip(densities, densities[1:]))
    assert len(set(densities[start:end + 1])) == (end - start) // every + 1   # changes only every `every`


class Net(nn.Module):
    """1x1 convs (one with an output count no r divides), batch norm, a depthwise conv, linears."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 12, 3, padding=1)
        self.expand = nn.Conv2d(12, 37, 1)
        self.bn = nn.BatchNorm2d(37)
        self.depthwise = nn.Conv2d(37, 37, 3, padding=1, groups=37)
        self.project = nn.Conv2d(37, 40, 1)
        self.hidden = nn.Linear(40, 37)
        self.head = nn.Linear(37, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.expand(F.relu(self.stem(x)))))
        x = F.relu(self.project(F.relu(self.depthwise(x))))
        return self.head(F.relu(self.hidden(x.mean(dim=(2, 3)))))


def _out_perms(converted):
    """{op name: whether its weight is stored with out_perm} for the sparse weights of a .slite."""
    model = S.Model.GetRootAs(converted.to_bytes(), 0)
    stored = {}
    for i in range(model.TensorsLength()):
        t = model.Tensors(i)
        if t.Sparsity() is not None:
            stored[t.Name().decode()] = t.Sparsity().OutPerm() != 0
    return stored


@pytest.mark.parametrize("group", [1, 2, 4, 8])
@pytest.mark.parametrize("permute", [False, True])
def test_gradual_pruner_converts_with_intended_group(group, permute):
    torch.manual_seed(group)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    pruner = prune.GradualPruner(model, opt, density={"pointwise": 0.25, "linear": 0.3}, group=group,
                                 end_step=12, every=3, exclude="last", permute=permute, progress=False)
    assert [l.name for l in pruner.layers] == ["expand", "project", "hidden"]
    for step in range(15):
        loss = model(torch.randn(4, 3, 6, 6)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()   # momentum and weight decay would move pruned weights: the hook zeroes them again
        for layer in pruner.layers:
            assert not layer.module.weight[~pruner.masks[layer.name]].any(), (step, layer.name)
    report = pruner.finish()
    targets = {"expand": 0.25, "project": 0.25, "hidden": 0.3}
    for row in report.layers:
        w = dict(model.named_modules())[row.name].weight.detach()
        assert row.density == pytest.approx(float((w != 0).float().mean()))
        assert abs(row.density - targets[row.name]) < 0.1, row
    model.eval()
    x = torch.randn(2, 3, 6, 6)
    converted = from_torch(model, x)
    layers = {name: (density, r) for name, _, density, r in converted.layers()}
    for row in report.layers:
        assert layers[row.name] == (pytest.approx(row.density), group), row.name
    assert layers["head"][1] == 0   # excluded: dense
    perms = _out_perms(converted)
    assert len(perms) == 3 and any(perms.values()) == (permute and group > 1)
    (out,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_layer_selection_and_bad_arguments():
    model = Net()
    layers = prune.select_layers(model, {"pointwise": 0.5, "linear": 0.2, "hid*": 0.7}, exclude=("first",))
    assert [(l.name, l.density) for l in layers] == [("project", 0.5), ("hidden", 0.7), ("head", 0.2)]
    assert [l.name for l in prune.select_layers(model, {"linear": 0.5})] == ["hidden", "head"]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="group must be one of"):
        prune.GradualPruner(model, opt, 0.5, group=3, end_step=10)
    with pytest.raises(ValueError, match=r"density for 'linear' must be in \(0, 1\]"):
        prune.GradualPruner(model, opt, {"linear": 0.0}, end_step=10)
    with pytest.raises(ValueError, match="'encoder.\\*' matches no 1x1 conv or linear layer"):
        prune.GradualPruner(model, opt, 0.5, end_step=10, exclude=["encoder.*"])
    with pytest.raises(ValueError, match="neither a layer kind"):
        prune.magnitude_oneshot(model, {"linaer": 0.5})
    with pytest.raises(ValueError, match="start_step <= end_step"):
        prune.GradualPruner(model, opt, 0.5, start_step=20, end_step=10)
    with pytest.raises(ValueError, match="no 1x1 convolution or linear layer"):
        prune.magnitude_oneshot(nn.Sequential(nn.Conv2d(3, 3, 3)), 0.5)


def test_progress_bar_shows_density_and_loss(capsys):
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    pruner = prune.GradualPruner(model, opt, 0.5, group=4, end_step=10, every=2)
    for _ in range(10):
        loss = model(torch.randn(2, 3, 6, 6)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        pruner.log(loss)
    pruner.finish()
    err = capsys.readouterr().err
    assert "pruning [" in err and "10/10 steps" in err and "density 0.5" in err and "loss " in err


def _planted(rng, oc, k, group, density):
    """A weight whose rows share large columns in groups of `group`, the rows shuffled; and the
    order that regroups them."""
    w = rng.standard_normal((oc, k)) * 0.1
    for g in range(oc // group):
        cols = rng.random(k) < density
        w[g * group:(g + 1) * group, cols] += rng.standard_normal((group, cols.sum())) * 2
    shuffle = rng.permutation(oc)
    return torch.tensor(w[shuffle], dtype=torch.float32), torch.as_tensor(np.argsort(shuffle))


@pytest.mark.parametrize("oc,k,group", [(64, 48, 4), (61, 33, 4), (96, 40, 8), (30, 20, 2)])
def test_choose_permutation_keeps_more_magnitude(oc, k, group):
    rng = np.random.default_rng(oc)
    w, planted = _planted(rng, oc, k, group, 0.25)
    perm = prune.choose_permutation(w, 0.25, group)
    assert sorted(perm.tolist()) == list(range(oc))
    kept, plain = prune.kept_energy(w, 0.25, group, perm), prune.kept_energy(w, 0.25, group)
    best = prune.kept_energy(w, 0.25, group, planted)
    print(f"{oc}x{k} r={group}: kept {kept:.3f} of |w|^2 permuted, {plain:.3f} unpermuted, {best:.3f} planted")
    assert kept - plain > 0.6 * (best - plain)
    noise = torch.randn(oc, k)   # no structure to find: never worse than the plain order
    assert prune.kept_energy(noise, 0.25, group, prune.choose_permutation(noise, 0.25, group)) >= \
        prune.kept_energy(noise, 0.25, group) - 1e-9


def test_converter_finds_the_permutation_of_pruned_rows():
    rng = np.random.default_rng(0)
    for oc, r in ((64, 4), (37, 4), (45, 8), (20, 2)):
        perm = torch.as_tensor(rng.permutation(oc))
        w = torch.randn(oc, 50)
        w *= prune.group_mask(w, 0.3, r, perm)
        group, out_perm = choose_group_layout(w.numpy())
        assert group == r and out_perm is not None
        assert sorted(out_perm.tolist()) == list(range(oc))
        unpermuted = torch.randn(oc, 50)
        unpermuted *= prune.group_mask(unpermuted, 0.3, r)
        assert choose_group_layout(unpermuted.numpy()) == (r, None)
    dense = rng.standard_normal((32, 32))
    assert choose_group_layout(dense) == (0, None)


def test_calibrated_oneshot_reconstructs_better_than_magnitude():
    torch.manual_seed(0)
    mixing = torch.randn(64, 64) / 8
    inputs = [torch.randn(64, 64) @ mixing + torch.randn(64) for _ in range(4)]   # correlated features
    layer = nn.Sequential(nn.Linear(64, 48))
    errors = {}
    for name, fn in (("magnitude", lambda m: prune.magnitude_oneshot(m, 0.3, 4)),
                     ("calibrated", lambda m: prune.calibrated_oneshot(m, inputs, 0.3, 4, progress=False)),
                     ("calibrated, permuted", lambda m: prune.calibrated_oneshot(m, inputs, 0.3, 4, permute=True,
                                                                                progress=False))):
        pruned = copy.deepcopy(layer)
        report = fn(pruned)
        assert report.layers[0].density == pytest.approx(0.3, abs=0.02)
        w = pruned[0].weight.detach()
        r, perm = choose_group_layout(w.numpy())
        assert r == 4 and (perm is not None) == ("permuted" in name)
        with torch.no_grad():
            errors[name] = float(sum((pruned(x) - layer(x)).square().sum() for x in inputs) /
                                 sum(layer(x).square().sum() for x in inputs))
    print("relative output error at 30% density:", errors)
    assert errors["calibrated"] < 0.7 * errors["magnitude"]
    assert errors["calibrated, permuted"] < errors["magnitude"]


def test_distill_kl_with_pruner():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5)).eval()
    with torch.no_grad():
        teacher[4].weight.mul_(20)   # confident logits
    student = copy.deepcopy(teacher)
    data = [torch.randn(32, 16) for _ in range(8)]          # unlabeled
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    pruner = prune.GradualPruner(student, opt, {"linear": 0.25}, group=4, end_step=150, every=10,
                                 exclude="last", progress=False)
    last = prune.distill(student, teacher, data, opt, steps=300, loss="kl", temperature=2.0, pruner=pruner)
    report = pruner.finish()
    assert all(abs(l.density - 0.25) < 0.02 for l in report.layers)
    oneshot = copy.deepcopy(teacher)
    prune.magnitude_oneshot(oneshot, {"linear": 0.25}, 4, exclude="last")

    def kl(model):
        with torch.no_grad():
            return float(sum(prune.distill_loss(model(x), teacher(x), "kl") for x in data)) / len(data)

    print(f"KL to the teacher at 25% density: distilled {kl(student):.4f} (last batch {last:.4f}), "
          f"one-shot {kl(oneshot):.4f}")
    assert kl(student) < 0.3 * kl(oneshot)


# --- digits: a conv net trained from scratch on scikit-learn's bundled 8x8 digits ---

EPOCHS, BATCH, LR = 20, 64, 3e-3


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)
    return [torch.from_numpy(a) for a in (xtr, xte, ytr, yte)]


def _digits_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 128, 1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.Conv2d(128, 128, 3, stride=2, padding=1, groups=128), nn.BatchNorm2d(128), nn.ReLU(),
        nn.Conv2d(128, 128, 1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.Flatten(), nn.Linear(128 * 16, 256), nn.ReLU(), nn.Linear(256, 10))


def _train(model, data, prune_kwargs=None):
    """The user's own loop; with prune_kwargs a GradualPruner rides on its optimizer."""
    xtr, _, ytr, _ = data
    steps = EPOCHS * -(-len(xtr) // BATCH)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, LR, total_steps=steps)
    pruner = prune.GradualPruner(model, opt, **prune_kwargs, progress=False) if prune_kwargs else None
    gen = torch.Generator().manual_seed(1)
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), BATCH):
            b = order[i:i + BATCH]
            loss = F.cross_entropy(model(xtr[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return pruner.finish() if pruner else None


def _accuracy(model, data):
    _, xte, _, yte = data
    with torch.no_grad():
        return 100.0 * float((model(xte).argmax(1) == yte).float().mean())


@pytest.fixture
def one_thread():
    """Small convolutions run several times faster on one thread than split over a busy machine's."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = _digits()
        dense = _digits_net()
        _train(dense, data)
    finally:
        torch.set_num_threads(threads)
    return data, dense


def test_digits_gradual_4x1_keeps_accuracy_one_shot_does_not(digits, one_thread):
    data, dense = digits
    steps = EPOCHS * -(-len(data[0]) // BATCH)
    pruned = _digits_net()
    report = _train(pruned, data, dict(density={"pointwise": 0.1, "linear": 0.1}, group=4, exclude="last",
                                       start_step=steps // 6, end_step=steps * 2 // 3))
    oneshot = copy.deepcopy(dense)
    prune.magnitude_oneshot(oneshot, {"pointwise": 0.1, "linear": 0.1}, 4, exclude="last")
    calibrated = copy.deepcopy(dense)
    xtr = data[0]
    prune.calibrated_oneshot(calibrated, [xtr[i:i + 128] for i in range(0, 512, 128)],
                             {"pointwise": 0.1, "linear": 0.1}, 4, exclude="last", progress=False)
    acc = {name: _accuracy(m, data) for name, m in
           (("dense", dense), ("gradual", pruned), ("magnitude one-shot", oneshot), ("calibrated one-shot", calibrated))}
    print("digits test accuracy, 1x1 convs and hidden linear at 10% density in 4x1 groups: "
          + ", ".join(f"{k} {v:.1f}%" for k, v in acc.items()))
    assert all(abs(l.density - 0.1) < 0.01 for l in report.layers)
    assert acc["gradual"] >= acc["dense"] - 1.0
    assert acc["magnitude one-shot"] < acc["gradual"] - 1.0

    x = data[1]
    converted = from_torch(pruned, x[:1])
    stored = {name: (d, r) for name, _, d, r in converted.layers()}
    for row in report.layers:
        assert stored[row.name] == (pytest.approx(row.density), 4)
    model = sparselite.load(converted.to_bytes())
    predictions = np.concatenate([model.run(x[i:i + 1].numpy())[0].argmax(1) for i in range(len(x))])
    assert 100.0 * float((predictions == data[3].numpy()).mean()) == pytest.approx(acc["gradual"])


def test_digits_calibrated_beats_magnitude_one_shot(digits, one_thread):
    data, dense = digits
    xtr = data[0]
    calibration = [xtr[i:i + 128] for i in range(0, 512, 128)]
    acc = {}
    for name in ("magnitude", "calibrated"):
        model = copy.deepcopy(dense)
        if name == "magnitude":
            prune.magnitude_oneshot(model, 0.3, 4, exclude="last")
        else:
            prune.calibrated_oneshot(model, calibration, 0.3, 4, exclude="last", progress=False)
        acc[name] = _accuracy(model, data)
        prune.recalibrate_batchnorm(model, calibration)
        acc[name + " + batch-norm statistics"] = _accuracy(model, data)
    print(f"digits, one-shot to 30% density (4x1), no fine-tuning: dense {_accuracy(dense, data):.1f}%, "
          + ", ".join(f"{k} {v:.1f}%" for k, v in acc.items()))
    assert acc["calibrated"] > acc["magnitude"] + 3.0
    assert acc["magnitude + batch-norm statistics"] > acc["magnitude"]


# --- all-MiniLM-L6-v2 (real weights): the mechanics of the benchmark's recipe, a few steps ---

def test_minilm_distillation_smoke():
    from tokenizers import Tokenizer

    from sparselite.converters import hf, zoo

    tok = Tokenizer.from_file(os.path.join(zoo.minilm_dir(), "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    texts = ["The bushfires near Sydney burned for a week.", "Rain finally came to the city.",
             "The senate voted on the new budget.", "Shares fell sharply on the stock exchange."]
    enc = tok.encode_batch(texts)
    batch = {"input_ids": torch.tensor([e.ids for e in enc]), "attention_mask": torch.tensor([e.attention_mask for e in enc])}
    teacher = zoo.minilm_l6()
    student = copy.deepcopy(teacher)
    opt = torch.optim.AdamW([p for n, p in student.named_parameters() if not n.startswith("embeddings.")], lr=1e-4)
    pruner = prune.GradualPruner(student, opt, {"linear": 0.2}, group=4, end_step=3, every=1,
                                 exclude="pooler.*", progress=False)
    assert len(pruner.layers) == 36
    prune.distill(student, teacher, [batch], opt, steps=4, loss="cosine", pruner=pruner, train_mode=False)
    report = pruner.finish()
    assert all(abs(l.density - 0.2) < 1e-3 for l in report.layers)
    converted = from_torch(hf.Encoder(student, pooling="mean", normalize=True), batch,
                           dynamic_axes=zoo.MINILM_AXES)
    fc = [(name, d, r) for name, kind, d, r in converted.layers() if kind == "FULLY_CONNECTED"]
    assert len(fc) == 36 and all(r == 4 and abs(d - 0.2) < 1e-3 for _, d, r in fc), fc
    (emb,) = sparselite.load(converted.to_bytes()).run({k: v.numpy() for k, v in batch.items()})
    with torch.no_grad():
        ref = hf.Encoder(student, pooling="mean", normalize=True)(batch["input_ids"], batch["attention_mask"])
    np.testing.assert_allclose(emb, ref.numpy(), atol=1e-5)


# --- batch-norm aware one-shot pruning (the browser pages' MobileNetV2) ---

def _conv_bn(channels=(8, 16, 8), seed=0):
    torch.manual_seed(seed)
    layers = []
    for cin, cout in zip(channels, channels[1:]):
        bn = nn.BatchNorm2d(cout)
        with torch.no_grad():
            bn.weight.uniform_(0.2, 3.0)
            bn.bias.normal_()
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.05, 2.0)
        layers += [nn.Conv2d(cin, cout, 1, bias=False), bn, nn.ReLU()]
    return nn.Sequential(*layers).eval()


def test_fold_batchnorm_keeps_the_groups_the_norm_amplifies():
    """Rows 0-3 have small weights but a norm that multiplies them by 100: judged as the norm scales
    them, their group survives and the folded output changes less than with raw magnitudes."""
    model = _conv_bn((8, 8))
    conv, bn = model[0], model[1]
    with torch.no_grad():
        conv.weight[:4] *= 0.05
        conv.weight[4:] *= 2.0
        bn.weight[:4] = 100.0 * torch.sqrt(bn.running_var[:4] + bn.eps)
        bn.weight[4:] = torch.sqrt(bn.running_var[4:] + bn.eps)
    x = torch.randn(16, 8, 5, 5)
    with torch.no_grad():
        reference = model(x)
    errors = {}
    for fold in (True, False):
        pruned = copy.deepcopy(model)
        prune.magnitude_oneshot(pruned, 0.5, 4, fold_batchnorm=fold)
        kept_rows = (pruned[0].weight.reshape(8, 8) != 0).all(1).tolist()
        assert kept_rows == [fold] * 4 + [not fold] * 4   # the amplified group, or the one raw weights favour
        with torch.no_grad():
            errors[fold] = float((pruned(x) - reference).square().mean())
    assert errors[True] < 0.5 * errors[False], errors


def test_match_batchnorm_gives_each_norm_the_dense_output_statistics():
    """After pruning, each norm's output on the calibration batches has the dense model's per-channel mean
    and variance (norm by norm: later ones see the corrected earlier ones) wherever its input still varies
    (a channel whose weights are all pruned is constant); a model equal to the reference keeps its statistics."""
    dense = _conv_bn()
    batches = [torch.randn(8, 8, 6, 6) * 2 + 0.5 for _ in range(3)]
    same = copy.deepcopy(dense)
    prune.match_batchnorm(same, dense, batches)
    for a, b in zip(same.modules(), dense.modules()):
        if isinstance(a, nn.BatchNorm2d):
            assert torch.allclose(a.running_mean, b.running_mean, atol=1e-5)
            assert torch.allclose(a.running_var, b.running_var, rtol=1e-4, atol=1e-5)
    pruned = copy.deepcopy(dense)
    prune.magnitude_oneshot(pruned, 0.3, 4)
    prune.match_batchnorm(pruned, dense, batches)
    x = torch.cat(batches)

    def norm_outputs(model):
        outs = []
        hooks = [m.register_forward_hook(lambda m, a, y: outs.append((a[0].var((0, 2, 3)), y))) for m in model.modules()
                 if isinstance(m, nn.BatchNorm2d)]
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
        return outs

    for (varies, got), (_, want) in zip(norm_outputs(pruned), norm_outputs(dense)):
        live = varies > 1e-6
        assert int(live.sum()) >= len(live) // 2
        assert torch.allclose(got.mean((0, 2, 3))[live], want.mean((0, 2, 3))[live], atol=1e-3)
        assert torch.allclose(got.var((0, 2, 3))[live], want.var((0, 2, 3))[live], rtol=1e-3, atol=1e-3)
    assert not torch.allclose(norm_outputs(pruned)[-1][1], norm_outputs(dense)[-1][1], atol=1e-2)   # values differ


def test_layer_sensitivity_is_each_layers_own_pruning_cost():
    model = nn.Sequential(_conv_bn(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10)).eval()
    batches = [torch.randn(4, 8, 4, 4) for _ in range(2)]
    weights = copy.deepcopy(model.state_dict())
    cost = prune.layer_sensitivity(model, batches, 0.3)
    assert list(cost) == [l.name for l in prune.select_layers(model, 0.3)]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())   # left as it was
    x = torch.cat(batches)
    for name, kl in cost.items():
        pruned = copy.deepcopy(model)
        prune.magnitude_oneshot(pruned, {name: 0.3}, 4)
        with torch.no_grad():
            p, q = F.log_softmax(model(x), -1), F.log_softmax(pruned(x), -1)
        assert kl == pytest.approx(float((p.exp() * (p - q)).sum(-1).mean()), rel=1e-5) and kl > 0
