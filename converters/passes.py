"""Graph rewrites between a frontend and the writer.

Passes look producers and consumers up in a _Uses index built once per pass and kept current as the
pass edits the graph, so a pass is linear in the graph's size (a hostile file of 100k ops must not
make conversion quadratic)."""
import numpy as np

from .ir import computed_dim
from .sparsity import choose_group_layout

FUSABLE = ("CONV2D", "CONV_TRANSPOSE2D", "FULLY_CONNECTED", "ADD", "MUL")
# What those ops apply after their result; the elementwise functions from NEG on run as ACTIVATION only.
FUSED_ACTIVATIONS = ("RELU", "RELU6", "CLAMP", "HARDSWISH", "HARDSIGMOID", "SIGMOID", "SILU", "GELU", "GELU_TANH",
                     "TANH")


def _sole_consumer(graph, tensor):
    users = graph.consumers(tensor)
    return len(users) == 1 and tensor not in graph.outputs


class _Uses:
    """Producer and consumers of every tensor of a graph. A pass edits the graph through it
    (set_inputs, replace_uses, remove) and calls commit() at the end, which drops removed ops
    from graph.ops in one sweep."""

    def __init__(self, graph):
        self.graph = graph
        self.producers = {}
        self.users = {}                     # tensor -> {id(op): op}, in graph order
        for op in graph.ops:
            for t in op.outputs:
                self.producers.setdefault(t, op)
            self._use(op, op.inputs)
        self.outputs = set(graph.outputs)
        self.removed = set()

    def _use(self, op, names):
        for t in names:
            if t is not None:
                self.users.setdefault(t, {})[id(op)] = op

    def _unuse(self, op, names):
        for t in names:
            if t is not None and t not in op.inputs:
                self.users.get(t, {}).pop(id(op), None)

    def producer(self, tensor):
        return self.producers.get(tensor)

    def consumers(self, tensor):
        return list(self.users.get(tensor, {}).values())

    def sole_consumer(self, tensor):
        return len(self.users.get(tensor, ())) == 1 and tensor not in self.outputs

    def set_inputs(self, op, inputs):
        old, op.inputs = op.inputs, list(inputs)
        self._unuse(op, old)
        self._use(op, op.inputs)

    def replace_uses(self, old, new):
        for op in list(self.users.pop(old, {}).values()):
            op.inputs = [new if t == old else t for t in op.inputs]
            self._use(op, [new])
        if old in self.outputs:
            self.graph.outputs = [new if t == old else t for t in self.graph.outputs]
            self.outputs = set(self.graph.outputs)

    def remove(self, op):
        self.removed.add(id(op))
        for t in op.outputs:
            if self.producers.get(t) is op:
                del self.producers[t]
        for t in op.inputs:
            if t is not None:
                self.users.get(t, {}).pop(id(op), None)

    def commit(self):
        if self.removed:
            self.graph.ops = [op for op in self.graph.ops if id(op) not in self.removed]


def fold_batch_norm(graph):
    """Folds BATCH_NORM into the conv/FC before it; lowers any other to MUL + ADD. Its scale and
    shift come in float64: each folded weight and bias is computed in float64 and rounded once."""
    for bn in [op for op in graph.ops if op.type == "BATCH_NORM"]:
        x = bn.inputs[0]
        scale = np.asarray(bn.options["scale"], np.float64)   # per channel (axis 1)
        shift = np.asarray(bn.options["shift"], np.float64)
        prev = graph.producer(x)
        foldable = (prev is not None and prev.type in ("CONV2D", "CONV_TRANSPOSE2D", "FULLY_CONNECTED")
                    and prev.options.get("activation", "NONE") == "NONE" and _sole_consumer(graph, x))
        if foldable:
            w = graph.tensors[prev.inputs[1]]
            if prev.type == "CONV_TRANSPOSE2D":   # [IC][OC/groups][KH][KW]: output channels on axis 1, per group
                groups = prev.options.get("groups", 1)
                per_group = scale.reshape(groups, 1, -1, 1, 1)
                w.data = (w.data.reshape((groups, -1) + w.data.shape[1:]) * per_group).reshape(w.data.shape)
                w.data = w.data.astype(np.float32)
            else:
                w.data = (w.data * scale.reshape((-1,) + (1,) * (w.data.ndim - 1))).astype(np.float32)
            bias_name = prev.inputs[2] if len(prev.inputs) > 2 else None
            old_bias = np.asarray(graph.tensors[bias_name].data, np.float64) if bias_name else np.zeros_like(shift)
            new_bias = (old_bias * scale + shift).astype(np.float32)
            if bias_name:
                graph.tensors[bias_name].data = new_bias
            else:
                prev.inputs.append(graph.add_const(f"{prev.name}.bias", new_bias))
            graph.replace_uses(bn.outputs[0], x)
            graph.ops.remove(bn)
            continue
        rank = len(graph.tensors[x].shape)
        bshape = (-1,) + (1,) * (rank - 2)
        s = graph.add_const(f"{bn.name}.scale", scale.reshape(bshape).astype(np.float32))
        t = graph.add_const(f"{bn.name}.shift", shift.reshape(bshape).astype(np.float32))
        idx = graph.ops.index(bn)
        mid = graph.add_op("MUL", [x, s], graph.tensors[x].shape, name=bn.name)
        mul_op = graph.ops.pop()
        bn.type, bn.inputs, bn.options = "ADD", [mid, t], {}
        graph.ops.insert(idx, mul_op)


def fuse_activations(graph):
    """Moves an ACTIVATION into the op that produces its input when nothing else reads it."""
    uses = _Uses(graph)
    for act in [op for op in graph.ops if op.type == "ACTIVATION"]:
        x = act.inputs[0]
        prev = uses.producer(x)
        if (prev is None or prev.type not in FUSABLE or prev.options.get("activation", "NONE") != "NONE"
                or graph.tensors[x].dtype != "float32"   # integer ops take none
                or act.options["activation"] not in FUSED_ACTIVATIONS or not uses.sole_consumer(x)):
            continue
        prev.options.update(activation=act.options["activation"], act_min=act.options.get("min", 0.0),
                            act_max=act.options.get("max", 0.0))
        uses.remove(act)
        uses.replace_uses(act.outputs[0], x)
    uses.commit()


def fold_pad_into_conv(graph):
    """Moves a zero PAD of the spatial dims into the CONV2D that reads it (TF-style 'same'
    padding arrives this way): one pass over the data instead of two."""
    uses = _Uses(graph)
    for pad in [op for op in graph.ops if op.type == "PAD"]:
        x, y = pad.inputs[0], pad.outputs[0]
        users = uses.consumers(y)
        pads = list(pad.options["pads"])
        rank = len(pads) // 2
        if (rank != 4 or pad.options.get("value", 0.0) != 0.0 or any(pads[:2]) or any(pads[4:6])
                or len(users) != 1 or y in uses.outputs or users[0].type != "CONV2D" or users[0].inputs[0] != y):
            continue
        conv = users[0]
        t, l, b, r = conv.options.get("padding", (0, 0, 0, 0))
        conv.options["padding"] = (t + pads[2], l + pads[3], b + pads[6], r + pads[7])
        uses.set_inputs(conv, [x] + conv.inputs[1:])
        uses.remove(pad)
    uses.commit()


def fuse_attention_softmax(graph):
    """softmax(x * c + mask) over the last axis (attention scores: scale, additive mask, softmax)
    becomes one SOFTMAX with a scale and a mask input: one pass over the scores instead of three."""
    uses = _Uses(graph)

    def single_producer(name, kind):
        op = uses.producer(name)
        ok = op is not None and op.type == kind and uses.sole_consumer(name)
        return op if ok and op.options.get("activation", "NONE") == "NONE" else None

    for sm in [op for op in graph.ops if op.type == "SOFTMAX" and len(op.inputs) == 1]:
        shape = graph.tensors[sm.inputs[0]].shape
        if sm.options.get("axis", -1) % len(shape) != len(shape) - 1:
            continue
        scores, mask, scale = sm.inputs[0], None, 1.0
        add = single_producer(scores, "ADD")
        if add is not None:
            a, b = add.inputs
            for x, m in ((a, b), (b, a)):
                if graph.tensors[x].shape == shape and graph.tensors[m].shape[-1:] == shape[-1:] \
                        and len(graph.tensors[m].shape) <= len(shape):
                    scores, mask = x, m
                    break
            else:
                add = None
        mul = single_producer(scores, "MUL")
        if mul is not None:
            consts = [t for t in mul.inputs if graph.tensors[t].data is not None and graph.tensors[t].data.size == 1]
            if consts and graph.tensors[[t for t in mul.inputs if t != consts[0]][0]].shape == shape:
                scale = float(graph.tensors[consts[0]].data.reshape(-1)[0])
                scores = [t for t in mul.inputs if t != consts[0]][0]
            else:
                mul = None
        if add is None and mul is None:
            continue
        uses.set_inputs(sm, [scores] + ([mask] if mask is not None else []))
        sm.options["scale"] = scale
        for op in (add, mul):
            if op is not None:
                uses.remove(op)
    uses.commit()


def merge_reshapes(graph):
    """A RESHAPE of a RESHAPE that nothing else reads reshapes the first one's input; one to the
    shape it has is no op. (The legacy exporter flattens a mask to [B * T] between two reshapes:
    that axis could not follow dynamic dimensions.)"""
    uses = _Uses(graph)
    for op in graph.ops:
        if op.type != "RESHAPE":
            continue
        first = uses.producer(op.inputs[0])
        if first is not None and first.type == "RESHAPE" and uses.sole_consumer(op.inputs[0]):
            uses.set_inputs(op, first.inputs)
            uses.remove(first)
        if graph.tensors[op.inputs[0]].shape == graph.tensors[op.outputs[0]].shape:
            uses.remove(op)
            uses.replace_uses(op.outputs[0], op.inputs[0])
    uses.commit()


def merge_reshape_transpose(graph):
    """A RESHAPE merging leading axes, a TRANSPOSE keeping the merged axis first and a RESHAPE
    splitting it back become one TRANSPOSE: dynamo's ONNX exports of transformers transpose a key
    [B, H, T, D] as [B * H, T, D] -> [B * H, D, T] -> [B, H, D, T], whose merged axis follows no
    single dimension, so a dynamic batch could not resize it."""
    uses = _Uses(graph)
    for first in [op for op in graph.ops if op.type == "RESHAPE"]:
        if first.type != "RESHAPE" or id(first) in uses.removed:
            continue
        x, merged = first.inputs[0], first.outputs[0]
        x_shape, merged_shape = graph.tensors[x].shape, graph.tensors[merged].shape
        lead = len(x_shape) - len(merged_shape) + 1
        if lead < 2 or tuple(x_shape[lead:]) != tuple(merged_shape[1:]) or not uses.sole_consumer(merged):
            continue
        transpose = uses.consumers(merged)[0]
        if transpose.type != "TRANSPOSE" or transpose.options["perm"][0] != 0 or \
                not uses.sole_consumer(transpose.outputs[0]):
            continue
        last = uses.consumers(transpose.outputs[0])[0]
        moved = graph.tensors[transpose.outputs[0]].shape
        if last.type != "RESHAPE" or tuple(graph.tensors[last.outputs[0]].shape) != tuple(x_shape[:lead]) + \
                tuple(moved[1:]):
            continue
        last.type, last.options = "TRANSPOSE", dict(perm=list(range(lead)) + [int(p) + lead - 1 for p in
                                                                            transpose.options["perm"][1:]])
        uses.set_inputs(last, [x])
        uses.remove(first)
        uses.remove(transpose)
    uses.commit()


_TO_LAST, _TO_FIRST = [0, 2, 3, 1], [0, 3, 1, 2]
_FC_OPTIONS = {"activation", "act_min", "act_max"}


def _per_pixel(graph, op, x):
    """Whether op maps each pixel's channels on their own from x, its first input, in a way
    keep_channel_major can run channel-major: LAYER_NORM of the last axis, or a FULLY_CONNECTED
    of constant weights."""
    if op.inputs[0] != x or len(graph.tensors[x].shape) != 4 or any(
            t is not None and graph.tensors[t].data is None for t in op.inputs[1:]):
        return False
    if op.type == "LAYER_NORM":
        return op.options.get("axis", -1) in (-1, 3)
    return op.type == "FULLY_CONNECTED" and len(graph.tensors[op.inputs[1]].shape) == 2 and \
        set(op.options) <= _FC_OPTIONS


def keep_channel_major(graph):
    """A TRANSPOSE to channels-last, per-pixel ops over the channels (LAYER_NORM, FULLY_CONNECTED),
    and a TRANSPOSE back (ConvNeXt's blocks and its LayerNorm2d): the ops run on the channel-major
    tensor instead, LAYER_NORM over axis 1 and each FC as the 1x1 CONV2D it is, and both transposes
    go — where the region has no FC or a group-sparse one (run after choose_sparsity). Token-major
    spmm transposes its input and output, which took as long as the spmm itself; dense FCs run
    gemm_nc on token-major rows as they are, faster than channel-major gemm on ConvNeXt-T."""
    uses = _Uses(graph)
    for first in [op for op in graph.ops if op.type == "TRANSPOSE" and list(op.options["perm"]) == _TO_LAST]:
        chain, t, back = [], first.outputs[0], None
        while uses.sole_consumer(t):
            user = uses.consumers(t)[0]
            if user.type == "TRANSPOSE" and list(user.options["perm"]) == _TO_FIRST:
                back = user
                break
            if not _per_pixel(graph, user, t):
                break
            chain.append(user)
            t = user.outputs[0]
        if back is None or not chain or back.outputs[0] in graph.outputs:
            continue
        weights = [graph.tensors[op.inputs[1]] for op in chain if op.type == "FULLY_CONNECTED"]
        if weights and not any(w.group_size for w in weights):
            continue
        for op in chain:
            out = graph.tensors[op.outputs[0]]
            out.shape = tuple(out.shape[i] for i in _TO_FIRST)
            if out.dynamic:
                out.dynamic = tuple(out.dynamic[i] for i in _TO_FIRST)
            if op.type == "LAYER_NORM":
                op.options["axis"] = 1
                continue
            weight = graph.tensors[op.inputs[1]]
            matrix = weight.data.reshape(weight.shape + (1, 1))
            if uses.sole_consumer(weight.name):
                weight.data, weight.shape = matrix, matrix.shape
            else:
                copy = graph.tensors[graph.add_const(weight.name, matrix)]
                copy.group_size, copy.out_perm = weight.group_size, weight.out_perm
                uses.set_inputs(op, [op.inputs[0], copy.name] + op.inputs[2:])
            op.type = "CONV2D"
            op.options.update(stride=(1, 1), dilation=(1, 1), padding=(0, 0, 0, 0), groups=1)
        uses.set_inputs(chain[0], [first.inputs[0]] + chain[0].inputs[1:])
        uses.replace_uses(back.outputs[0], chain[-1].outputs[0])
        uses.remove(first)
        uses.remove(back)
    uses.commit()


def shrink_broadcast_constants(graph):
    """Constant inputs of elementwise ops that repeat along an axis keep one slice and let the
    op broadcast (folded token-type embeddings [B, T, H] become [1, 1, H])."""
    uses = _Uses(graph)
    for op in graph.ops:
        if op.type not in ("ADD", "SUB", "MUL", "DIV"):
            continue
        out_shape = graph.tensors[op.outputs[0]].shape
        for i, name in enumerate(op.inputs):
            t, other = graph.tensors[name], graph.tensors[op.inputs[1 - i]]
            if t.data is None or not uses.sole_consumer(name):
                continue
            rank = len(out_shape)
            data = t.data.reshape((1,) * (rank - t.data.ndim) + t.data.shape)
            dynamic = list((None,) * (rank - len(t.dynamic)) + tuple(t.dynamic)) if t.dynamic else [None] * rank
            other_shape = (1,) * (rank - len(other.shape)) + tuple(other.shape)
            for axis in range(rank):
                if data.shape[axis] > 1 and other_shape[axis] == out_shape[axis] and \
                        (data == data.take([0], axis=axis)).all():
                    data = data.take([0], axis=axis)
                    dynamic[axis] = None
            if data.shape != t.data.shape:
                t.data, t.shape = np.ascontiguousarray(data), data.shape
                t.dynamic = tuple(dynamic) if any(d is not None for d in dynamic) else ()


def choose_sparsity(graph, min_fill=0.9):
    """Marks the weights of 1x1 convs (strided too: the runtime subsamples their input) and fully
    connected layers to store group-sparse, unless a frontend already set a group size (sparse
    weights of the source file keep their structure). Rows pruned in groups of a channel
    permutation (sparselite.prune's rearrangement) are stored in that order, with out_perm."""
    uses = _Uses(graph)

    def takes_sparse(op, name):
        pointwise = (op.type == "CONV2D" and op.options.get("groups", 1) == 1
                     and graph.tensors[op.inputs[1]].shape[2:] == (1, 1)
                     and not any(op.options.get("padding", (0, 0, 0, 0))))
        return (pointwise or op.type == "FULLY_CONNECTED") and op.inputs.count(name) == 1 and op.inputs[1] == name

    for op in graph.ops:
        w = graph.tensors[op.inputs[1]] if len(op.inputs) > 1 and op.inputs[1] is not None else None
        if w is None or w.group_size or w.data is None or not takes_sparse(op, w.name):
            continue
        # A weight shared by layers (ALBERT's) is stored sparse once when every reader takes it so.
        if not all(takes_sparse(user, w.name) for user in uses.consumers(w.name)) or w.name in uses.outputs:
            continue
        w.group_size, w.out_perm = choose_group_layout(w.data.reshape(w.shape[0], -1), min_fill)


def conv_along_dynamic_width(graph):
    """CONV2D over a height of 1 whose width follows a dynamic dimension (conv1d along an audio
    length; CONV2D plans for one width): on the [N, W, C] transpose, padded, one strided SLICE per
    kernel tap, whose frames follow the output's width, times that tap's weights (FULLY_CONNECTED,
    block-diagonal for groups), summed, the activation after, transposed back. The same
    multiply-adds as the convolution, with no im2col buffer."""
    ops = []
    for op in graph.ops:
        x = graph.tensors[op.inputs[0]]
        w = graph.tensors[op.inputs[1]] if len(op.inputs) > 1 else None
        o = op.options
        if op.type != "CONV2D" or len(x.dynamic) != 4 or x.dynamic[3] is None or x.shape[2] != 1 or \
                w is None or w.data is None or w.shape[2] != 1 or o.get("stride", (1, 1))[0] != 1 or \
                any(list(o.get("padding", (0, 0, 0, 0)))[0::2]):
            ops.append(op)
            continue
        saved, graph.ops = graph.ops, []
        _conv_taps(graph, op)
        ops += graph.ops
        graph.ops = saved
    graph.ops = ops


def _conv_taps(graph, op):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    weight = graph.tensors[op.inputs[1]].data.reshape(graph.tensors[op.inputs[1]].shape)
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    n, c, _, length = x.shape
    oc, per_group, _, k = weight.shape
    frames = y.shape[3]
    stride, dilation = op.options.get("stride", (1, 1))[1], op.options.get("dilation", (1, 1))[1]
    pad = op.options.get("padding", (0, 0, 0, 0))
    left, right, groups = pad[1], pad[3], op.options.get("groups", 1)
    dn, dl, dy = x.dynamic[0], x.dynamic[3], y.dynamic[3]
    name = op.name

    def add(type, inputs, shape, dynamic, **options):
        out = graph.add_op(type, inputs, shape, options=options, name=name, dtype="float32")
        if any(d is not None for d in dynamic):
            graph.tensors[out].dynamic = tuple(dynamic)
        return out

    rows = add("RESHAPE", [x.name], (n, c, length), (dn, None, dl))
    rows = add("TRANSPOSE", [rows], (n, length, c), (dn, dl, None), perm=[0, 2, 1])
    if left or right:
        padded, *formula = computed_dim(graph.derived_dims, dl, left + right, 1)
        graph.dims[padded] = length + left + right
        graph.derived_dims[padded] = tuple(formula)
        rows = add("PAD", [rows], (n, length + left + right, c), (dn, padded, None),
                   pads=[0, left, 0, 0, right, 0], value=0.0)
    out_per_group, total = oc // groups, None
    for j in range(k):
        tap = np.zeros((oc, c), np.float32)
        for g in range(groups):
            tap[g * out_per_group:(g + 1) * out_per_group, g * per_group:(g + 1) * per_group] = \
                weight[g * out_per_group:(g + 1) * out_per_group, :, 0, j]
        taken = add("SLICE", [rows], (n, frames, c), (dn, dy, None), begin=[0, j * dilation, 0], step=[1, stride, 1])
        inputs = [taken, graph.add_const(f"{name}.tap{j}", tap)] + ([bias] if bias is not None and j == 0 else [])
        part = add("FULLY_CONNECTED", inputs, (n, frames, oc), (dn, dy, None))
        total = part if total is None else add("ADD", [total, part], (n, frames, oc), (dn, dy, None))
    act = op.options.get("activation", "NONE")
    if act not in (None, "NONE"):
        total = add("ACTIVATION", [total], (n, frames, oc), (dn, dy, None), activation=act,
                    min=op.options.get("act_min", 0.0), max=op.options.get("act_max", 0.0))
    total = add("TRANSPOSE", [total], (n, oc, frames), (dn, None, dy), perm=[0, 2, 1])
    graph.ops.append(type(op)("RESHAPE", [total], [y.name], {}, name))


def remove_dead_ops(graph):
    """Drops ops nothing reads (a pooler beside the hidden state a wrapper returns), last first."""
    used = set(graph.outputs)
    kept = []
    for op in reversed(graph.ops):
        if any(t in used for t in op.outputs):
            kept.append(op)
            used.update(t for t in op.inputs if t is not None)
    graph.ops = kept[::-1]


ELEMENTWISE = ("ADD", "SUB", "MUL", "DIV", "COMPARE", "LOGICAL", "WHERE")


def _broadcasts_without(graph, op, expanded, source):
    """Whether elementwise `op` still has its output's shape with `source` read in place of `expanded`."""
    shapes = [graph.tensors[source if t == expanded else t].shape for t in op.inputs]
    return op.type in ELEMENTWISE and tuple(np.broadcast_shapes(*shapes)) == graph.tensors[op.outputs[0]].shape


def drop_broadcast_expands(graph):
    """An EXPAND read only by broadcasting elementwise ops of its own output shape is dropped: they
    broadcast its input themselves (a token-type embedding row added to every token)."""
    uses = _Uses(graph)
    for op in graph.ops:
        if op.type != "EXPAND":
            continue
        x, y = op.inputs[0], op.outputs[0]
        users = uses.consumers(y)
        if users and y not in uses.outputs and all(_broadcasts_without(graph, u, y, x) for u in users):
            uses.replace_uses(y, op.inputs[0])
            uses.remove(op)
    uses.commit()


def run_all(graph, sparse=True):
    remove_dead_ops(graph)
    drop_broadcast_expands(graph)
    fold_pad_into_conv(graph)
    fold_batch_norm(graph)
    fuse_activations(graph)
    fuse_attention_softmax(graph)
    shrink_broadcast_constants(graph)
    conv_along_dynamic_width(graph)
    if sparse:
        choose_sparsity(graph)
    keep_channel_major(graph)
    graph.prune_unused()
    graph.check()
