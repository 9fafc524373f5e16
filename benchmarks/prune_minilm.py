"""all-MiniLM-L6-v2 pruned to 4x1 groups at 80% sparsity: does it still embed like the dense model?

Evaluated on gensim's Lee corpus: the 50 news documents of lee.cor and the 50x50 matrix of their
similarity as rated by people (similarities0-1.txt, upper triangle: 1225 pairs). Score: Spearman
correlation between the cosine similarities of the documents' embeddings (mean pooling, as
sentence-transformers) and the human ratings. Rows: dense; magnitude one-shot; calibrated one-shot
(sparselite.prune.calibrated_oneshot on 256 background texts); and the toolkit's recipe:
GradualPruner (cubic schedule, channel rearrangement) during prune.distill against the dense
teacher's embeddings, on unlabeled text of lee_background.cor (300 other documents; lee.cor is never
trained on). The distilled model is converted with from_torch and scored again through the
sparselite runtime, with each linear layer's stored density and group size.

    python benchmarks/prune_minilm.py [--steps 8000] [--device cuda] [--json benchmarks/results/prune_minilm.json]
    python benchmarks/prune_minilm.py --student DIR/minilm-80-4x1.npz   # evaluate a saved student (and its .slite)

Training writes the student's weights (those that differ from the dense model's) to
--out/minilm-80-4x1.npz: samples/sentence-embeddings/embed.py --sparse reads it.
"""
import argparse
import copy
import json
import os
import platform
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEFAULT_OUT = os.path.join(os.path.expanduser("~"), ".cache", "sparselite")
STUDENT_NAME = "minilm-80-4x1.npz"
EVAL_TOKENS, TRAIN_TOKENS = 256, 128


def lee_files(lee_dir=None):
    """(background documents, the 50 evaluation documents, 50x50 human similarity)."""
    if lee_dir is None:
        try:
            from gensim.test.utils import datapath
        except ImportError as exc:
            raise SystemExit("the Lee corpus ships with gensim: pip install gensim (or pass --lee-dir)") from exc
        lee_dir = os.path.dirname(datapath("lee.cor"))

    def read(name):
        with open(os.path.join(lee_dir, name), encoding="latin1") as f:
            return [line.strip() for line in f if line.strip()]

    human = np.loadtxt(os.path.join(lee_dir, "similarities0-1.txt"))
    return read("lee_background.cor"), read("lee.cor"), human


def training_texts(documents):
    """Unlabeled training units: every sentence, every run of three sentences, every document."""
    texts = []
    for doc in documents:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", doc) if len(s.split()) > 2]
        texts += sentences
        texts += [" ".join(sentences[i:i + 3]) for i in range(len(sentences) - 2)]
        texts.append(doc)
    return texts


class Batches:
    """Re-iterable tokenized batches (shuffled each pass when `seed` is set)."""

    def __init__(self, tokenizer, texts, batch_size, max_tokens, seed=None):
        self.tok, self.texts, self.batch_size, self.max_tokens = tokenizer, texts, batch_size, max_tokens
        self.rng = None if seed is None else np.random.default_rng(seed)

    def __iter__(self):
        import torch

        order = np.arange(len(self.texts)) if self.rng is None else self.rng.permutation(len(self.texts))
        self.tok.enable_truncation(max_length=self.max_tokens)
        for i in range(0, len(order), self.batch_size):
            enc = self.tok.encode_batch([self.texts[j] for j in order[i:i + self.batch_size]])
            yield {"input_ids": torch.tensor([e.ids for e in enc]),
                   "attention_mask": torch.tensor([e.attention_mask for e in enc])}


def tokenizer():
    from tokenizers import Tokenizer

    from sparselite.converters import zoo

    tok = Tokenizer.from_file(os.path.join(zoo.minilm_dir(), "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def embed(bert, batches, device):
    import torch

    from sparselite.prune import model_output

    out = []
    bert.eval()
    with torch.no_grad():
        for batch in batches:
            e = model_output(bert, {k: v.to(device) for k, v in batch.items()})
            out.append(torch.nn.functional.normalize(e, dim=-1).float().cpu().numpy())
    return np.concatenate(out)


def spearman(embeddings, human):
    from scipy.stats import spearmanr

    upper = np.triu_indices(len(human), 1)
    return float(spearmanr((embeddings @ embeddings.T)[upper], human[upper]).correlation)


def agreement(embeddings, dense_embeddings):
    """How closely a pruned model embeds like the dense one on the evaluation documents."""
    from scipy.stats import spearmanr

    upper = np.triu_indices(len(embeddings), 1)
    return {"mean_cosine_to_dense": float((embeddings * dense_embeddings).sum(axis=1).mean()),
            "spearman_to_dense_similarities": float(spearmanr((embeddings @ embeddings.T)[upper],
                                                              (dense_embeddings @ dense_embeddings.T)[upper]).correlation)}


def token_and_embedding_loss(student, teacher):
    """Cosine distance of the sentence embeddings plus MSE of the token states under the mask."""
    import torch.nn.functional as F

    (s_emb, s_tok, mask), (t_emb, t_tok, _) = student, teacher
    keep = mask.bool()
    return (1 - F.cosine_similarity(s_emb, t_emb, dim=-1)).mean() + F.mse_loss(s_tok[keep], t_tok[keep])


def embedding_and_tokens(model, batch):
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9), hidden, mask


def linear_density(bert):
    import torch

    ws = [m.weight for n, m in bert.named_modules() if isinstance(m, torch.nn.Linear) and not n.startswith("pooler")]
    return sum(int((w != 0).sum()) for w in ws) / sum(w.numel() for w in ws)


def trained_names(bert):
    return [n for n, _ in bert.named_parameters() if not n.startswith("embeddings.")]


def save_student(bert, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    params = dict(bert.named_parameters())
    np.savez_compressed(path, **{n: params[n].detach().float().cpu().numpy() for n in trained_names(bert)})
    return path


def load_student(path):
    """all-MiniLM-L6-v2 with the weights a training run saved (the rest are the dense model's)."""
    import torch

    from sparselite.converters import zoo

    bert = zoo.minilm_l6()
    with np.load(path) as saved:
        missing = set(trained_names(bert)) - set(saved.files)
        if missing:
            raise ValueError(f"{path} lacks {sorted(missing)[:3]}: not a prune_minilm.py student")
        params = dict(bert.named_parameters())
        with torch.no_grad():
            for name in saved.files:
                params[name].copy_(torch.from_numpy(saved[name]))
    return bert.eval()


def device_info(device):
    import torch

    from sparselite.profiler import cpu_name

    info = {"cpu": cpu_name(), "arch": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def train(args, results):
    import torch

    from sparselite import prune
    from sparselite.converters import zoo

    torch.manual_seed(0)
    device = args.device
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    background, documents, human = lee_files(args.lee_dir)
    tok = tokenizer()
    evaluation = Batches(tok, documents, 10, EVAL_TOKENS)
    texts = training_texts(background)
    dense = zoo.minilm_l6().to(device)
    dense_emb = embed(dense, evaluation, device)

    def score(model):
        emb = embed(model, evaluation, device)
        return {"spearman": spearman(emb, human), **agreement(emb, dense_emb)}

    rows = results["rows"] = {}
    rows["dense"] = {"spearman": spearman(dense_emb, human), "density": 1.0}
    print(f"dense: Spearman {rows['dense']['spearman']:.4f}")

    density = 1.0 - args.sparsity
    one = copy.deepcopy(dense)
    prune.magnitude_oneshot(one, density, args.group, exclude=("pooler.*",))
    rows["magnitude_oneshot"] = {**score(one), "density": linear_density(one)}
    del one
    calibration_texts = sorted(np.random.default_rng(1).choice(texts, args.calibration, replace=False), key=len)
    cal = copy.deepcopy(dense)
    start = time.perf_counter()
    prune.calibrated_oneshot(cal, Batches(tok, calibration_texts, 16, TRAIN_TOKENS), density, args.group,
                             exclude=("pooler.*",))
    rows["calibrated_oneshot"] = {**score(cal), "density": linear_density(cal),
                                  "seconds": time.perf_counter() - start, "calibration_texts": args.calibration}
    del cal
    for name in ("magnitude_oneshot", "calibrated_oneshot"):
        print(f"{name}: Spearman {rows[name]['spearman']:.4f}, mean cosine to dense "
              f"{rows[name]['mean_cosine_to_dense']:.3f}")

    student = copy.deepcopy(dense)
    for p in student.embeddings.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=args.lr,
                                  weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1.0 - s / args.steps))
    end = int(args.steps * args.prune_until)
    start = time.perf_counter()
    pruner = prune.GradualPruner(student, optimizer, density={"linear": density}, group=args.group,
                                 end_step=end, every=args.every, exclude=("pooler.*",), permute=args.permute,
                                 total_steps=args.steps)
    kept = [v for v in pruner.kept.values()]
    loss = token_and_embedding_loss if args.loss == "cosine+tokens" else "cosine"
    output = embedding_and_tokens if args.loss == "cosine+tokens" else prune.model_output
    last = prune.distill(student, dense, Batches(tok, texts, args.batch, TRAIN_TOKENS, seed=0), optimizer,
                         steps=args.steps, loss=loss, output=output, pruner=pruner, scheduler=scheduler,
                         train_mode=args.dropout)
    report = pruner.finish()
    seconds = time.perf_counter() - start
    rows["gradual_distilled"] = {
        **score(student), "density": linear_density(student), "seconds": seconds, "last_loss": last,
        "layers": [{"name": l.name, "density": l.density, "kept": l.kept, "kept_unpermuted": l.kept_unpermuted}
                   for l in report.layers]}
    print(f"gradual + distillation: Spearman {rows['gradual_distilled']['spearman']:.4f}, mean cosine to dense "
          f"{rows['gradual_distilled']['mean_cosine_to_dense']:.3f} ({seconds:.0f} s on {device})")
    if kept:
        results["rearrangement"] = {"kept_permuted_mean": float(np.mean([k[0] for k in kept])),
                                    "kept_unpermuted_mean": float(np.mean([k[1] for k in kept]))}
    results["training"] = {"device": device_info(device), "steps": args.steps, "batch": args.batch,
                           "lr": args.lr, "prune_until": args.prune_until, "every": args.every,
                           "loss": args.loss, "permute": args.permute, "dropout": args.dropout, "texts": len(texts),
                           "max_tokens": TRAIN_TOKENS}
    path = save_student(student.cpu(), os.path.join(args.out, STUDENT_NAME))
    print(f"wrote {path}")
    return student.cpu().eval(), path


def evaluate_slite(student, args, results):
    """Converts the student (as the sentence-embeddings sample does) and scores it through sparselite."""
    import torch

    import sparselite
    from sparselite.converters import from_torch, hf, zoo

    _, documents, human = lee_files(args.lee_dir)
    ids = torch.zeros(10, EVAL_TOKENS, dtype=torch.int64)
    converted = from_torch(hf.Encoder(student, pooling="mean", normalize=True),
                           {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                           dynamic_axes=zoo.MINILM_AXES, output_names=["sentence_embedding"])
    layers = [(name, d, r) for name, kind, d, r in converted.layers() if kind == "FULLY_CONNECTED"]
    model = sparselite.load(converted.to_bytes())
    out = []
    for batch in Batches(tokenizer(), documents, 10, EVAL_TOKENS):
        (e,) = model.run({k: v.numpy() for k, v in batch.items()})
        out.append(e)
    emb = np.concatenate(out)
    torch_emb = embed(student, Batches(tokenizer(), documents, 10, EVAL_TOKENS), "cpu")
    from common import machine_info

    results["slite"] = {
        "spearman": spearman(emb, human), "machine": machine_info(),
        "max_abs_diff_vs_torch": float(np.abs(emb - torch_emb).max()),
        "bytes_fp32": len(converted.to_bytes()),
        "linear_layers": [{"name": n, "density": d, "group_size": r} for n, d, r in layers]}
    results["slite"]["speed"] = speed(student)
    groups = sorted({r for _, _, r in layers})
    print(f".slite: Spearman {results['slite']['spearman']:.4f}; {len(layers)} linear layers, group sizes {groups}, "
          f"densities {min(d for _, d, _ in layers):.3f}-{max(d for _, d, _ in layers):.3f}")


def speed(student, runs=40, blocks=5):
    """Median ms (one thread, one sequence of 128 tokens, as bench_models.py's MiniLM rows) of the
    distilled student against the dense model and a one-shot magnitude-pruned one at the same
    density, converted alike, taking turns in blocks."""
    import time as clock

    import torch

    import sparselite
    from sparselite import prune
    from sparselite.converters import from_torch, hf, zoo

    ids = np.random.default_rng(0).integers(1000, 30000, (1, 128))
    ids[0, 0], ids[0, -1] = 101, 102
    feeds = {"input_ids": ids.astype(np.int64), "attention_mask": np.ones((1, 128), np.int64)}
    oneshot = zoo.minilm_l6()
    prune.magnitude_oneshot(oneshot, {"linear": linear_density(student)}, 4, exclude="pooler.*")
    examples = {k: torch.from_numpy(v) for k, v in feeds.items()}
    models = {name: sparselite.load(from_torch(hf.Encoder(m), examples).to_bytes(), num_threads=1)
              for name, m in (("dense", zoo.minilm_l6()), ("distilled", student), ("magnitude_oneshot", oneshot))}
    times = {name: [] for name in models}
    for _ in range(blocks):
        for name, model in models.items():
            model.run(feeds)
            for _ in range(runs // blocks):
                start = clock.perf_counter()
                model.run(feeds)
                times[name].append((clock.perf_counter() - start) * 1e3)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    print("1 thread, 128 tokens: " + ", ".join(f"{k} {v:.1f} ms" for k, v in medians.items()))
    return {"threads": 1, "tokens": 128, "runs": runs, "median_ms": medians}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--every", type=int, default=100, help="mask updates every this many steps")
    parser.add_argument("--prune-until", type=float, default=0.6, help="fraction of the steps that prune")
    parser.add_argument("--loss", choices=["cosine", "cosine+tokens"], default="cosine+tokens")
    parser.add_argument("--dropout", action="store_true", help="train the student with dropout (train mode)")
    parser.add_argument("--no-permute", dest="permute", action="store_false", help="skip channel rearrangement")
    parser.add_argument("--calibration", type=int, default=256, help="texts for calibrated one-shot")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lee-dir", help="folder with lee_background.cor, lee.cor, similarities0-1.txt "
                        "(default: gensim's test data)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="where the student's weights go")
    parser.add_argument("--student", help="evaluate these saved weights instead of training")
    parser.add_argument("--no-slite", dest="slite", action="store_false",
                        help="skip the conversion (no sparselite runtime here)")
    parser.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                       "prune_minilm.json"))
    args = parser.parse_args()
    if args.student:   # merge into the training run's results
        with open(args.json) as f:
            results = json.load(f)
        student = load_student(args.student)
    else:
        results = {"model": "all-MiniLM-L6-v2", "sparsity": args.sparsity, "group": args.group,
                   "evaluation": "Spearman of cosine similarity vs lee.cor's 50x50 human ratings (1225 pairs)"}
        student, _ = train(args, results)
    if args.slite:
        evaluate_slite(student, args, results)
    from common import write_json

    write_json(args.json, results)


if __name__ == "__main__":
    main()
