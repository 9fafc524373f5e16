"""Hugging Face transformers encoders (BERT and its relatives: embeddings + encoder).

from_torch converts such a model through `Encoder`, which computes the additive attention
mask plainly ((mask - 1) * float32 max, broadcast over heads and queries) instead of
transformers' mask utilities, whose indexing tricks have no ops here.

    bert = transformers.AutoModel.from_pretrained(path)
    from_torch(hf.Encoder(bert, pooling="mean", normalize=True), {"input_ids": ids, "attention_mask": mask},
               dynamic_axes={"input_ids": {1: "seq"}, "attention_mask": {1: "seq"}})
"""
import torch

from sparselite.errors import ConversionError

from .torch_ops import l2_normalize, mean_pool


def is_encoder(module):
    """A transformers encoder model: BertModel, RobertaModel, ... (not a decoder)."""
    config = getattr(module, "config", None)
    return (hasattr(module, "embeddings") and hasattr(module, "encoder") and config is not None
            and not getattr(config, "is_decoder", False))


class Encoder(torch.nn.Module):
    """(input_ids, attention_mask) -> last hidden state [B, T, H], or with pooling="mean" the
    sentence embedding [B, H] (normalize=True: unit length, as sentence-transformers)."""

    def __init__(self, model, pooling=None, normalize=False):
        super().__init__()
        if not is_encoder(model):
            raise ConversionError(f"{type(model).__name__} is not a transformers encoder (embeddings + encoder)")
        if pooling not in (None, "mean"):
            raise ConversionError(f"pooling must be None or 'mean', got {pooling!r}")
        # Eager attention: explicit matmul + softmax, which map to sparselite ops.
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")
        else:
            model.config._attn_implementation = "eager"
        self.model = model.eval()
        self.pooling = pooling
        self.normalize = normalize

    def forward(self, input_ids, attention_mask):
        hidden = self.model.embeddings(input_ids=input_ids)
        bias = (attention_mask[:, None, None, :].to(hidden.dtype) - 1.0) * torch.finfo(hidden.dtype).max
        hidden = self.model.encoder(hidden, attention_mask=bias)[0]
        if self.pooling is None:
            return hidden
        out = mean_pool(hidden, attention_mask)
        return l2_normalize(out) if self.normalize else out
