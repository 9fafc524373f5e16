"""Hugging Face transformers encoders: text (BERT and its relatives), vision (ViT, DeiT) and speech
(the Whisper and Wav2Vec2 encoders).

`Encoder` runs the model itself, so its own embeddings and attention-mask code (boolean masks,
position ids from the input ids, relative positions) are what the converter traces and converts:
the .slite computes what transformers computes. It makes the output one tensor, the last hidden
state, or with pooling a sentence embedding as sentence-transformers computes it. from_torch wraps
a model of these families in it by itself.

    bert = transformers.AutoModel.from_pretrained(path)
    from_torch(hf.Encoder(bert, pooling="mean", normalize=True),
               {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},   # types optional
               dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                             "token_type_ids": {0: "batch", 1: "seq"}})
"""
import torch

from sparselite.errors import ConversionError

from .torch_ops import l2_normalize, mean_pool

# transformers class -> the inputs its forward takes here (the first is required).
TEXT = ("input_ids", "attention_mask", "token_type_ids")
FAMILIES = {
    "BertModel": TEXT, "DistilBertModel": TEXT, "RobertaModel": TEXT, "XLMRobertaModel": TEXT,
    "MPNetModel": TEXT, "AlbertModel": TEXT, "ElectraModel": TEXT, "MobileBertModel": TEXT,
    "DebertaV2Model": TEXT,
    "ViTModel": ("pixel_values",), "DeiTModel": ("pixel_values",),
    "WhisperEncoder": ("input_features",), "WhisperModel": ("input_features",),
    "Wav2Vec2Model": ("input_values", "attention_mask"),
}
POOLINGS = (None, "mean", "cls")


def family(module):
    """The FAMILIES class `module` is (or derives from), or None."""
    return next((cls.__name__ for cls in type(module).__mro__ if cls.__name__ in FAMILIES), None)


def is_encoder(module):
    """A transformers encoder model: BertModel, RobertaModel, ... (not a decoder)."""
    config = getattr(module, "config", None)
    return (hasattr(module, "embeddings") and hasattr(module, "encoder") and config is not None
            and not getattr(config, "is_decoder", False))


def wraps(module):
    """Whether from_torch converts `module` through Encoder: a model of FAMILIES, or another
    transformers encoder (which Encoder refuses, naming it)."""
    return not isinstance(module, Encoder) and (family(module) is not None or is_encoder(module))


def has_token_types(model):
    """Whether the model adds token type (segment) embeddings, so token_type_ids matter."""
    embeddings = getattr(model, "embeddings", None)
    return getattr(embeddings, "token_type_embeddings", None) is not None


class Encoder(torch.nn.Module):
    """A transformers model whose output is one tensor: the last hidden state [B, T, H]; with
    pooling="mean" the mean over the tokens the attention mask keeps (sentence-transformers' mean
    pooling; all tokens for images and audio), with pooling="cls" the first token's state, both
    [B, H]; normalize=True scales that to unit length.

    Inputs, by keyword (what from_torch's example dict names): input_ids, attention_mask and, where
    the model has token type embeddings, token_type_ids (segment ids of sentence pairs; absent, they
    are 0, as in transformers); pixel_values for ViT / DeiT; input_features (log-mel) for Whisper;
    input_values (and optionally attention_mask) for Wav2Vec2. Models of other classes are refused."""

    def __init__(self, model, pooling=None, normalize=False):
        super().__init__()
        name = type(model).__name__
        kind = family(model)
        if kind is None:
            raise ConversionError(f"{name} is not a transformers model sparselite's Encoder reproduces; it covers "
                                  f"{', '.join(FAMILIES)} (convert other models directly with from_torch)")
        if pooling not in POOLINGS:
            raise ConversionError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if normalize and pooling is None:
            raise ConversionError("normalize=True needs pooling='mean' or 'cls' (it scales a sentence embedding)")
        if kind == "WhisperModel":   # the encoder; the decoder generates text, which is not converted
            model = model.get_encoder()
        # torch.export traces eager and sdpa attention (both convert); other kernels do not trace.
        if model.config._attn_implementation not in ("eager", "sdpa"):
            model.set_attn_implementation("sdpa")
        self.model = model.eval()
        self.family, self.name = kind, name
        self.inputs = FAMILIES[kind]
        self.pooling, self.normalize = pooling, normalize

    def check_dynamic_axes(self, dynamic_axes):
        """Refuses dynamic axes the model cannot vary, saying why (from_torch calls it)."""
        frames = (dynamic_axes or {}).get("input_features", {})
        if self.family in ("WhisperEncoder", "WhisperModel") and any(a % 3 != 0 for a in frames):
            length = self.model.config.max_source_positions * self.model.conv1.stride[0] * self.model.conv2.stride[0]
            raise ConversionError(f"{self.name} takes exactly {length} frames of input_features (its positional "
                                  f"embeddings are a fixed table of max_source_positions="
                                  f"{self.model.config.max_source_positions} positions, which transformers adds "
                                  "whole and checks the length against): only the batch (axis 0) can be dynamic; "
                                  f"pad the log-mel features to {length} frames, as Whisper's feature extractor "
                                  "pads audio to 30 s")

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, pixel_values=None,
                input_features=None, input_values=None):
        given = {k: v for k, v in dict(input_ids=input_ids, attention_mask=attention_mask,
                                       token_type_ids=token_type_ids, pixel_values=pixel_values,
                                       input_features=input_features, input_values=input_values).items()
                 if v is not None}
        extra = [k for k in given if k not in self.inputs]
        if "token_type_ids" in given and not has_token_types(self.model):
            extra.append("token_type_ids")
        if extra:
            why = " (it has no token type embeddings)" if "token_type_ids" in extra else ""
            takes = [k for k in self.inputs if k != "token_type_ids" or has_token_types(self.model)]
            raise ConversionError(f"{self.name} does not take {', '.join(sorted(set(extra)))}{why}: its inputs are "
                                  f"{', '.join(takes)}")
        if self.inputs[0] not in given:
            raise ConversionError(f"{self.name} needs the input {self.inputs[0]}")
        hidden = self.model(**given).last_hidden_state
        if self.pooling is None:
            return hidden
        if self.pooling == "cls":
            out = hidden[:, 0]
        elif attention_mask is not None and self.inputs is TEXT:
            out = mean_pool(hidden, attention_mask)
        else:
            out = hidden.mean(1)
        return l2_normalize(out) if self.normalize else out
