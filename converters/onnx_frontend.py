"""ONNX frontend: an ONNX model (opset 13-20, as torch.onnx.export writes) -> IR.

Shapes come from ONNX shape inference and must be static. Subgraphs of constants (shape
arithmetic, position ids, masks of buffers) are folded by onnx_fold (a whitelist of cheap ops,
each result size-checked before it is allocated), and Shape of a statically shaped tensor is a
constant, so reshapes see plain shapes. Linear layers exported as MatMul + Add become one
FULLY_CONNECTED with its bias; the erf form of GELU (Div, Erf, Add, Mul, Mul) becomes one activation.

The model is untrusted input: external data is read only from an explicit directory (load_model),
and any failure on a malformed model is a ConversionError naming where conversion stood
(from_onnx_graph), with the original exception chained.
"""
import os
import stat

import numpy as np

from sparselite.errors import ConversionError

from . import einsum, onnx_fold
from .ir import Graph
from .limits import ComputeBudget, num_elements
from .missing import Missing, Unsupported
from .onnx_infer import infer_shapes, strip
from .passes import merge_reshape_transpose, merge_reshapes
from .slicing import add_axis_slice, add_slice

OPSETS = range(13, 21)
MAX_REINFERENCES = 64   # shape inference runs again at most this often per model (see reinfer)
# Rounds of folding and inference before conversion (resolve_shapes), each resolving more: Swin's
# padding and mask shapes are computed block after block (swin_t takes 28).
MAX_RESOLVE_ROUNDS = 64
_UNARY = {"Relu": "RELU", "Sigmoid": "SIGMOID", "Tanh": "TANH", "HardSwish": "HARDSWISH"}
_BINARY = {"Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Div": "DIV"}
_IDENTITY = ("Identity", "Dropout")
_DTYPES = {1: "float32", 6: "int32", 7: "int64", 9: "bool"}   # TensorProto.FLOAT, INT32, INT64, BOOL
_INPUT_DTYPES = ("float32", "int32", "int64")
_COMPARE = {"Equal": "EQUAL", "Less": "LESS", "LessOrEqual": "LESS_EQUAL", "Greater": "GREATER",
            "GreaterOrEqual": "GREATER_EQUAL"}
_LOGICAL = {"And": "AND", "Or": "OR", "Xor": "XOR", "Not": "NOT"}
_MATH = {"Sqrt": "SQRT", "Exp": "EXP", "Log": "LOG", "Neg": "NEG", "Abs": "ABS"}   # ACTIVATIONs of float32
# Bytes per element of the ONNX types external data may hold (TensorProto.DataType).
_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
             17: 1, 18: 1, 19: 1, 20: 1, 24: 1}
# What a malformed model makes the code below raise; from_onnx_graph turns it into ConversionError.
_MALFORMED = (IndexError, KeyError, ValueError, TypeError, AttributeError, ZeroDivisionError, OverflowError,
              RecursionError, UnicodeError)


_REDUCE = {"ReduceMean": "MEAN", "ReduceSum": "SUM", "ReduceMax": "MAX", "ReduceMin": "MIN"}
_RESIZE_COORDINATES = {"half_pixel": "HALF_PIXEL", "pytorch_half_pixel": "PYTORCH_HALF_PIXEL",
                       "align_corners": "ALIGN_CORNERS", "asymmetric": "ASYMMETRIC"}
_NEAREST_MODES = {"round_prefer_floor": "ROUND_PREFER_FLOOR", "round_prefer_ceil": "ROUND_PREFER_CEIL",
                  "floor": "FLOOR", "ceil": "CEIL"}


def _text(v):
    """A string attribute (onnx gives bytes)."""
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


class _Converter:
    def __init__(self, model, progress=None, computed=()):
        import onnx

        self.onnx = onnx
        self.where = "reading the model"   # where conversion stands, for errors on malformed models
        self.budget = ComputeBudget()       # sizes of folded values
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if opset not in OPSETS:
            raise ConversionError(f"ONNX opset {opset} is not supported: export with opset 13..20")
        for k, node in enumerate(model.graph.node):   # never handed to shape inference either
            if node.op_type in onnx_fold.CONTROL_FLOW or any(a.type in (onnx.AttributeProto.GRAPH,
                                                                        onnx.AttributeProto.GRAPHS)
                                                             for a in node.attribute):
                raise ConversionError(f"node {k} '{node.name}' is control flow ({node.op_type}): sparselite "
                                      "converts static graphs, and never evaluates control flow while folding "
                                      "constants")
        self.where = "checking tensor sizes"
        _check_tensors(model)   # before shape inference reads any of them
        for node in model.graph.node:   # shape inference spins on some malformed equations
            if node.op_type == "Einsum":
                einsum.check(node.op_type, _text(self.attrs(node).get("equation", "")), len(node.input))
        self.where = "inferring shapes"
        self.model = model
        self.skeleton = strip(model)   # what shape inference reads, copied each time it runs again
        self.graph_proto = model.graph
        self.progress = progress
        self.graph = Graph()
        self.values = {}      # ONNX value name -> IR tensor name
        self.consts = {}      # ONNX value name -> numpy array
        self.shapes = {}
        self.infer(self.skeleton)
        self.inferred_consts = None   # how many consts inference last saw (None: only the model's own)
        self.reinferences = 0
        self.consumers = {}
        for node in self.graph_proto.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.producers = {o: node for node in self.graph_proto.node for o in node.output}
        self.order = {id(node): k for k, node in enumerate(self.graph_proto.node)}
        self.skip = set()     # nodes folded into an earlier pattern
        self.computed = set(computed)   # values not to fold: they vary with dynamic dimensions (onnx_dynamic)
        self.origins = {}     # IR constant made from an ONNX value -> that value (onnx_dynamic)
        self._graph_outputs = {o.name for o in self.graph_proto.output}
        self.where = "resolving symbolic dimensions"
        self.resolve_shapes(model)

    def _read_shapes(self, inferred, only=None):
        """Shapes from inference's value_info, inputs and outputs (of the names in `only`); a value
        whose rank inference left unknown gets none."""
        for vi in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
            if (only is None or vi.name in only) and vi.type.tensor_type.HasField("shape"):
                dims = vi.type.tensor_type.shape.dim
                self.shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)

    def _symbolic(self):
        """Node outputs without a static shape."""
        return {o for node in self.graph_proto.node for o in node.output
                if o and any(not isinstance(d, int) or d <= 0 for d in self.shapes.get(o, ("?",)))}

    def resolve_shapes(self, model):
        """Shape inference leaves a dimension symbolic where it follows from a computed shape (ViT
        exports reshape to Concat(Shape(x)[0], -1, 768)); with fixed inputs, folding constants
        computes it. The folded values go back to inference as initializers (their nodes removed),
        until a round resolves nothing more. Folds here count against a budget of their own."""
        import onnx
        from onnx import numpy_helper

        pending = self._symbolic()
        budget = self.budget
        try:
            for _ in range(MAX_RESOLVE_ROUNDS):
                if not pending:
                    return
                self.budget = ComputeBudget()
                self.consts = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
                folded = set()
                for node in model.graph.node:
                    try:
                        if self.fold(node):
                            folded.add(id(node))
                    except ConversionError:   # a Shape of a tensor that is still symbolic
                        continue
                copy = onnx.ModelProto()
                copy.CopyFrom(self.skeleton)
                del copy.graph.node[:]
                copy.graph.node.extend(n for n in model.graph.node if id(n) not in folded)
                copy.graph.initializer.extend(numpy_helper.from_array(np.asarray(self.consts[o]), o)
                                              for n in model.graph.node if id(n) in folded for o in n.output
                                              if o in self.consts)
                _drop_value_info(copy, {i.name for i in copy.graph.initializer})
                self._read_shapes(infer_shapes(copy).graph, only=pending)
                now = self._symbolic()
                if len(now) >= len(pending):
                    return
                pending = now
        finally:
            self.budget, self.consts = budget, {}

    def infer(self, model):
        """Shapes from ONNX shape inference, in a helper process (onnx's C++ aborts on some malformed models)."""
        self._read_shapes(infer_shapes(model).graph)

    def reinfer(self):
        """Runs shape inference again with the values folded so far as initializers (the nodes that
        computed them left out), when some were folded since it last ran; returns whether it ran.
        ONNX infers a Slice's output only from constant starts and ends, which torch exports compute
        from Shape (ShuffleNet's chunk): each such Slice then needs the shapes before it."""
        from onnx import numpy_helper

        if self.inferred_consts is None or len(self.consts) == self.inferred_consts:
            return False
        if self.reinferences >= MAX_REINFERENCES:
            raise ConversionError(f"shapes are still unknown after inferring them {MAX_REINFERENCES + 1} times with "
                                  "the constants folded so far: export with static shapes")
        self.reinferences += 1
        self.inferred_consts = len(self.consts)
        initializers = {t.name for t in self.graph_proto.initializer}
        folded = {name: value for name, value in self.consts.items() if name not in initializers}
        copy = self.onnx.ModelProto()
        copy.CopyFrom(self.skeleton)
        kept = [n for n in copy.graph.node if not (n.output and all(o in folded for o in n.output))]
        del copy.graph.node[:]
        copy.graph.node.extend(kept)
        copy.graph.initializer.extend(numpy_helper.from_array(np.asarray(v), name) for name, v in folded.items())
        _drop_value_info(copy, folded)
        self.infer(copy)
        return True

    def shape(self, name, node=None):
        if name in self.consts:
            return tuple(int(d) for d in np.shape(self.consts[name]))
        shape = self.shapes.get(name)
        if (shape is None or any(not isinstance(d, int) or d <= 0 for d in shape)) and self.reinfer():
            shape = self.shapes.get(name)
        if shape is None:
            raise ConversionError(f"no inferred shape for '{name}'" + (f" ({node.op_type} '{node.name}')" if node else ""))
        if any(not isinstance(d, int) or d <= 0 for d in shape):
            raise ConversionError(f"'{name}' has shape {list(shape)}: a dimension is unknown even with the inputs' "
                                  "dimensions fixed (from_onnx(..., dims={name: maximum}) fixes named ones)")
        return shape

    def tensor(self, name):
        """The IR tensor of an ONNX value, adding constants on first use."""
        if name in self.values:
            return self.values[name]
        if name in self.consts:
            data = self.consts[name]
            data = data.astype(np.float32) if data.dtype == np.float64 else data
            self.values[name] = self.add_const(name, data, name)
            return self.values[name]
        raise ConversionError(f"value '{name}' is used before it is computed")

    def add_const(self, name, data, origin):
        """An IR constant computed from the ONNX value `origin` (recorded for onnx_dynamic)."""
        const = self.graph.add_const(name, data)
        self.origins[const] = origin
        return const

    def dtype(self, tensor):
        return self.graph.tensors[tensor].dtype

    def attrs(self, node):
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def add(self, op_type, inputs, node, options=None, out=None, dtype=None):
        """The op computing ONNX value `out` (node's first output), of the shape inference gave it;
        dtype: the first input's unless told."""
        out = out or node.output[0]
        name = self.graph.add_op(op_type, inputs, self.shape(out, node), options=options, name=node.name or out,
                                 dtype=dtype or self.dtype(inputs[0]))
        self.values[out] = name
        return name

    # --- the walk ----------------------------------------------------------------------------
    def convert(self):
        from onnx import numpy_helper

        for init in self.graph_proto.initializer:
            self.where = f"reading initializer '{init.name}'"
            self.consts[init.name] = numpy_helper.to_array(init)
        for inp in self.graph_proto.input:
            self.where = f"reading input '{inp.name}'"
            if inp.name in self.consts:
                continue
            dtype = _DTYPES.get(inp.type.tensor_type.elem_type)
            if dtype not in _INPUT_DTYPES:
                raise ConversionError(f"input '{inp.name}' has ONNX type {inp.type.tensor_type.elem_type}: inputs "
                                      "must be float32, int32 or int64")
            self.values[inp.name] = self.graph.add_input(inp.name, self.shape(inp.name), dtype)
        nodes = list(self.graph_proto.node)
        for k, node in enumerate(nodes):   # first, so patterns can read constants defined after their first node
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.where = f"node {k} (Constant '{node.name}')"
                self.fold(node)
                self.skip.add(id(node))
        missing = Missing("onnx")
        self.inferred_consts = len(self.consts)   # inference saw the initializers and Constant nodes
        for k, node in enumerate(nodes):
            if self.progress is not None:
                self.progress(k, len(nodes))
            if id(node) in self.skip:
                continue
            self.where = f"node {k} ({node.op_type} '{node.name}')"
            where = f"node {k} '{node.name}'"
            if any(self.values.get(n) is Missing.MISSING for n in node.input if n):
                self.poison(node)   # after an op that could not convert: not reported again
                continue
            if node.domain not in ("", "ai.onnx"):
                missing.add(f"{node.domain}.{node.op_type}", "only the default ONNX domain converts", where)
                self.poison(node)
                continue
            computed = any(o in self.computed for o in node.output)
            if not computed and self.fold(node):
                continue
            handler = getattr(self, "op_" + node.op_type, None)
            if handler is None:
                missing.add(node.op_type, "computed at run time, as its value varies with the dynamic dimensions"
                            if computed else "", where)
                self.poison(node)
                continue
            try:
                handler(node)
            except Unsupported as e:
                missing.add(e.op, e.reason, where)
                self.poison(node)
        missing.check()
        if self.progress is not None:
            self.progress(len(nodes), len(nodes))
        self.where = "collecting the outputs"
        for out in self.graph_proto.output:
            self.graph.outputs.append(self.tensor(out.name))
        merge_reshapes(self.graph)
        merge_reshape_transpose(self.graph)
        return self.graph, [out.name for out in self.graph_proto.output]

    def poison(self, node):
        for name in node.output:
            if name:
                self.values[name] = Missing.MISSING

    def fold(self, node):
        """Evaluates a node whose inputs are all constants (or a Shape of a static tensor) when its
        op is in onnx_fold.FOLDS; returns whether it did."""
        if node.op_type == "Constant":
            self.consts[node.output[0]] = self.constant(node)
            return True
        if node.op_type in ("Shape", "Size") and node.input and node.input[0] not in self.consts:
            shape = np.array(self.shape(node.input[0], node), dtype=np.int64)
            if node.op_type == "Size":
                self.consts[node.output[0]] = np.array(num_elements(shape), dtype=np.int64)
                return True
            a = self.attrs(node)
            self.consts[node.output[0]] = shape[a.get("start", 0):a.get("end", len(shape))]
            return True
        if node.op_type not in onnx_fold.FOLDS:
            return False
        if not any(node.input) or not all(n in self.consts for n in node.input if n):
            return False
        results = onnx_fold.fold(node, [self.consts[n] if n else None for n in node.input], self.attrs(node),
                                 self.budget)
        for name, value in zip(node.output, results):
            self.consts[name] = np.asarray(value)
        return True

    def constant(self, node):
        """The value of a Constant node (one of value, value_float(s), value_int(s))."""
        from onnx import numpy_helper

        if len(node.attribute) != 1:
            raise ConversionError(f"Constant '{node.name}' has {len(node.attribute)} attributes; it needs one value")
        attr = node.attribute[0]
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        kinds = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64}
        if attr.name not in kinds:
            raise ConversionError(f"Constant '{node.name}': {attr.name} is not supported (numbers only)")
        return np.array(self.onnx.helper.get_attribute_value(attr), dtype=kinds[attr.name])

    def const(self, name, node, what):
        if name not in self.consts:
            raise ConversionError(f"{node.op_type} '{node.name}': {what} must be a constant")
        return self.consts[name]

    # --- ops ---------------------------------------------------------------------------------
    def op_Conv(self, node):
        a = self.attrs(node)
        w = self.const(node.input[1], node, "the weight").astype(np.float32)
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise Unsupported("Conv", "auto_pad (export with explicit pads)")
        pads = a.get("pads", [0, 0, 0, 0])
        if w.ndim == 3:
            self.conv1d(node, w, a)
            return
        inputs = [self.tensor(node.input[0]), self.add_const(node.input[1], w, node.input[1])]
        if len(node.input) > 2 and node.input[2]:
            inputs.append(self.tensor(node.input[2]))
        self.add("CONV2D", inputs, node, dict(stride=tuple(a.get("strides", (1, 1))),
                                              dilation=tuple(a.get("dilations", (1, 1))),
                                              padding=(pads[0], pads[1], pads[2], pads[3]), groups=a.get("group", 1)))

    def op_ConvTranspose(self, node):
        """The output's size is inference's (from output_shape, or pads and output_padding); the
        runtime needs only the top and left crop: from pads, or where output_shape or auto_pad
        SAME_* set them, the total crop split as ONNX defines (and onnxruntime does): SAME_UPPER
        crops the smaller half first, NOTSET and SAME_LOWER the larger."""
        a = self.attrs(node)
        x_shape, y_shape = self.shape(node.input[0], node), self.shape(node.output[0], node)
        w = self.const(node.input[1], node, "the weight").astype(np.float32)
        if len(x_shape) != 4 or w.ndim != 4:
            raise Unsupported("ConvTranspose", f"over {len(x_shape) - 2} dimensions (2-D converts)")
        group = int(a.get("group", 1))
        strides, dilations = tuple(a.get("strides", (1, 1))), tuple(a.get("dilations", (1, 1)))
        output_padding = tuple(a.get("output_padding", (0, 0)))
        auto_pad = _text(a.get("auto_pad", "NOTSET"))
        if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
            raise ConversionError(f"ConvTranspose '{node.name}': auto_pad {auto_pad} is not an ONNX value")
        if min(strides + dilations) < 1 or min(output_padding) < 0 or group < 1:
            raise ConversionError(f"ConvTranspose '{node.name}': strides {list(strides)}, dilations "
                                  f"{list(dilations)}, output_padding {list(output_padding)} or group {group} out "
                                  "of range")
        full = [(i - 1) * s + d * (k - 1) + 1 for i, s, d, k in zip(x_shape[2:], strides, dilations, w.shape[2:])]
        pads = list(a.get("pads", (0, 0, 0, 0)))
        if "output_shape" in a or auto_pad.startswith("SAME"):
            totals = [f + op - o for f, op, o in zip(full, output_padding, y_shape[2:])]
            first = (lambda t: t // 2) if auto_pad == "SAME_UPPER" else (lambda t: t - t // 2)
            pads[:2] = [max(first(t), 0) for t in totals]
        elif auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        crop = [f - o - p for f, o, p in zip(full, y_shape[2:], pads[:2])]   # below 0: the output extends past
        inputs = [self.tensor(node.input[0]), self.add_const(node.input[1], w, node.input[1])]
        if len(node.input) > 2 and node.input[2]:
            inputs.append(self.tensor(node.input[2]))
        self.add("CONV_TRANSPOSE2D", inputs, node, dict(
            stride=strides, dilation=dilations, groups=group, padding=(pads[0], pads[1], max(crop[0], 0),
                                                                        max(crop[1], 0)),
            output_padding=(max(-crop[0], 0), max(-crop[1], 0))))

    def linear(self, node, x, w, bias=None):
        """FULLY_CONNECTED with W [out, in]; a bias Add right after (MatMul + Add) is taken in."""
        out = node.output[0]
        users = self.consumers.get(out, [])
        if bias is None and len(users) == 1 and users[0].op_type == "Add":
            add = users[0]
            other = add.input[1] if add.input[0] == out else add.input[0]
            if other in self.consts and self.consts[other].shape == (w.shape[0],):
                bias, out = self.consts[other], add.output[0]
                self.skip.add(id(add))
        inputs = [self.tensor(x), self.add_const(node.input[1], np.ascontiguousarray(w, np.float32), node.input[1])]
        if bias is not None:
            inputs.append(self.add_const(out + ".bias", bias.astype(np.float32), out))
        self.add("FULLY_CONNECTED", inputs, node, out=out)

    def op_Gemm(self, node):
        a = self.attrs(node)
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            raise Unsupported("Gemm", "alpha or beta other than 1, or transA")
        w = self.const(node.input[1], node, "B")
        w = w if a.get("transB", 0) else w.T
        bias = self.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        self.linear(node, node.input[0], w, None if bias is None else bias.reshape(-1))

    def op_MatMul(self, node):
        """FULLY_CONNECTED by a constant matrix; else MATMUL, whose operands the runtime takes with
        equal batch dimensions or B of rank 2: others are broadcast with EXPAND first."""
        if node.input[1] in self.consts and self.consts[node.input[1]].ndim == 2:
            self.linear(node, node.input[0], self.consts[node.input[1]].T)
            return
        a, b = self.tensor(node.input[0]), self.tensor(node.input[1])
        a_shape, b_shape = self.graph.tensors[a].shape, self.graph.tensors[b].shape
        if min(len(a_shape), len(b_shape)) < 2:
            raise Unsupported("MatMul", "of a vector")
        if len(b_shape) > 2 and a_shape[:-2] != b_shape[:-2]:
            batch = tuple(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]))
            a, b = (x if shape[:-2] == batch else self.emit("EXPAND", [x], batch + shape[-2:], node)
                    for x, shape in ((a, a_shape), (b, b_shape)))
        self.add("MATMUL", [a, b], node)

    def gelu_chain(self, div):
        """The nodes after `div` (x / sqrt 2, or x * 1/sqrt 2) when they compute
        x * 0.5 * (1 + erf(x / sqrt 2)) in either order of the last two products, else None."""
        def single_user(name, op_type):
            users = self.consumers.get(name, [])
            return users[0] if len(users) == 1 and users[0].op_type == op_type else None

        def other_input(n, name):
            return n.input[1] if n.input[0] == name else n.input[0]

        def scalar(name):
            c = self.consts.get(name)
            return float(c.reshape(-1)[0]) if c is not None and c.size == 1 else None

        x, scale = div.input[0], scalar(div.input[1])
        if scale is None or abs((scale if div.op_type == "Div" else 1 / scale) - 2 ** 0.5) > 1e-3:
            return None
        erf = single_user(div.output[0], "Erf")
        add = erf and single_user(erf.output[0], "Add")
        if add is None or scalar(other_input(add, erf.output[0])) != 1.0:
            return None
        mul1 = single_user(add.output[0], "Mul")
        last = mul1 and single_user(mul1.output[0], "Mul")
        if last is None:
            return None
        first, second = other_input(mul1, add.output[0]), other_input(last, mul1.output[0])
        if (first == x and scalar(second) == 0.5) or (scalar(first) == 0.5 and second == x):
            return [erf, add, mul1, last]
        return None

    def gelu_tanh(self, node):
        """Hugging Face's gelu_new (ALBERT): 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))),
        exported as Mul(x, 0.5), Pow(x, 3), Mul, Add(x, .), Mul, Tanh, Add(1), Mul: one GELU_TANH when
        `node` is the first of them. Returns whether it was."""
        def scalar(name):
            c = self.consts.get(name)
            return float(c.reshape(-1)[0]) if c is not None and c.size == 1 and c.dtype.kind == "f" else None

        def other(n, name):
            return n.input[1] if n.input[0] == name else n.input[0]

        def only_user(name, op_type, constant=None):
            users = self.consumers.get(name, [])
            if len(users) != 1 or users[0].op_type != op_type or name in self._graph_outputs:
                return None
            if constant is None:
                return users[0]
            value = scalar(other(users[0], name)) if len(users[0].input) == 2 else None
            return users[0] if value is not None and abs(value - constant) < 1e-5 else None

        x = next((n for n in node.input if n not in self.consts), None)
        if x is None:
            return False
        users = self.consumers.get(x, [])
        half = next((n for n in users if n.op_type == "Mul" and scalar(other(n, x)) == 0.5), None)
        cube = next((n for n in users if n.op_type == "Pow" and n.input[0] == x and scalar(n.input[1]) == 3.0), None)
        chain = [cube]
        for op_type, constant in (("Mul", 0.044715), ("Add", None), ("Mul", (2 / np.pi) ** 0.5), ("Tanh", None),
                                  ("Add", 1.0)):
            chain.append(chain[-1] and only_user(chain[-1].output[0], op_type, constant))
        if half is None or chain[-1] is None or other(chain[2], chain[1].output[0]) != x:
            return False
        last = only_user(chain[-1].output[0], "Mul")
        if last is None or other(last, chain[-1].output[0]) != half.output[0] or \
                [id(n) for n in self.consumers.get(half.output[0], [])] != [id(last)] or \
                id(node) != id(min((half, cube), key=lambda n: self.order[id(n)])):
            return False
        self.skip.update(id(n) for n in [half, last] + chain)
        self.add("ACTIVATION", [self.tensor(x)], node, dict(activation="GELU_TANH"), out=last.output[0])
        return True

    def op_Erf(self, node):   # the GELU chain, when it is one, was taken in by its Div or Mul
        self.math(node, "ERF")

    def op_Gelu(self, node):   # an ONNX op from opset 20
        approx = self.attrs(node).get("approximate", b"none")
        self.add("ACTIVATION", [self.tensor(node.input[0])], node,
                 dict(activation="GELU_TANH" if approx in (b"tanh", "tanh") else "GELU"))

    def binary(self, node):
        kind = _BINARY[node.op_type]
        a, b = node.input
        chain = self.gelu_chain(node) if kind in ("DIV", "MUL") else None
        if chain is not None:
            self.skip.update(id(n) for n in chain)
            self.add("ACTIVATION", [self.tensor(a)], node, dict(activation="GELU"), out=chain[-1].output[0])
            return
        if kind == "MUL" and self.gelu_tanh(node):
            return
        x, y = self.tensor(a), self.tensor(b)
        if self.dtype(x) != self.dtype(y):
            raise ConversionError(f"{node.op_type} '{node.name}': inputs of types {self.dtype(x)} and {self.dtype(y)}")
        if self.dtype(x) == "bool":
            raise Unsupported(node.op_type, "of boolean tensors")
        if kind == "DIV" and b in self.consts and self.dtype(x) == "float32":   # multiplying is faster
            recip = self.add_const(b + ".reciprocal", (1.0 / self.consts[b]).astype(np.float32), b)
            self.add("MUL", [x, recip], node)
            return
        self.add(kind, [x, y], node)

    def op_PRelu(self, node):   # the slope broadcasts to X (per channel: [C, 1, 1])
        x, slope = self.tensor(node.input[0]), self.tensor(node.input[1])
        if self.dtype(x) != "float32" or self.dtype(slope) != "float32":
            raise Unsupported("PRelu", f"of {self.dtype(x)} by {self.dtype(slope)} (float32 converts)")
        self.add("PRELU", [x, slope], node)

    def op_LeakyRelu(self, node):
        alpha = np.array(self.attrs(node).get("alpha", 0.01), np.float32)
        self.add("PRELU", [self.tensor(node.input[0]), self.graph.add_const(node.output[0] + ".alpha", alpha)], node)

    def op_Clip(self, node):
        x = self.tensor(node.input[0])
        if self.dtype(x) in ("int32", "int64"):   # x < lo ? lo : x, then x > hi ? hi : x
            steps = [(node.input[k], kind) for k, kind in ((1, "LESS"), (2, "GREATER")) if len(node.input) > k
                     and node.input[k]]
            if not steps:
                self.values[node.output[0]] = x
            shape = self.graph.tensors[x].shape
            for k, (name, kind) in enumerate(steps):
                bound = self.tensor(name)
                beyond = self.emit("COMPARE", [x, bound], shape, node, dict(kind=kind), dtype="bool")
                if k == len(steps) - 1:
                    self.add("WHERE", [beyond, bound, x], node, dtype=self.dtype(x))
                else:
                    x = self.emit("WHERE", [beyond, bound, x], shape, node, dtype=self.dtype(x))
            return
        lo = float(self.consts[node.input[1]]) if len(node.input) > 1 and node.input[1] else -np.inf
        hi = float(self.consts[node.input[2]]) if len(node.input) > 2 and node.input[2] else np.inf
        kind = "RELU6" if (lo, hi) == (0.0, 6.0) else "RELU" if (lo, hi) == (0.0, np.inf) else "CLAMP"
        self.add("ACTIVATION", [x], node, dict(activation=kind, min=lo, max=hi))

    def op_HardSigmoid(self, node):
        a = self.attrs(node)
        if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
            raise Unsupported("HardSigmoid", "alpha and beta other than 1/6 and 0.5 (PyTorch's)")
        self.add("ACTIVATION", [self.tensor(node.input[0])], node, dict(activation="HARDSIGMOID"))

    def op_GlobalAveragePool(self, node):
        self.add("GLOBAL_AVG_POOL", [self.tensor(node.input[0])], node)

    def reshape(self, node):
        x = self.tensor(node.input[0])
        self.add("RESHAPE", [x], node, dtype=self.graph.tensors[x].dtype)

    op_Flatten = op_Reshape = op_Squeeze = op_Unsqueeze = reshape

    def op_Transpose(self, node):
        perm = self.attrs(node).get("perm")
        rank = len(self.shape(node.input[0], node))
        perm = [int(p) for p in perm] if perm is not None else list(range(rank))[::-1]
        if sorted(perm) != list(range(rank)):
            raise ConversionError(f"Transpose '{node.name}': perm {perm} is not a permutation of {rank} axes")
        self.add("TRANSPOSE", [self.tensor(node.input[0])], node, dict(perm=perm))

    def op_Softmax(self, node):
        self.add("SOFTMAX", [self.tensor(node.input[0])], node, dict(axis=self.attrs(node).get("axis", -1)))

    def op_LayerNormalization(self, node):
        a = self.attrs(node)
        rank = len(self.shape(node.input[0], node))
        if a.get("axis", -1) % rank != rank - 1:
            raise Unsupported("LayerNormalization", "over other axes than the last")
        inputs = [self.tensor(n) for n in node.input if n]
        self.add("LAYER_NORM", inputs, node, dict(epsilon=float(a.get("epsilon", 1e-5))))

    def op_Gather(self, node):
        axis = self.attrs(node).get("axis", 0)
        if axis != 0:
            self.gather_as_slice(node, axis)
            return
        try:   # rows of a computed tensor at constant, evenly stepping indices: a slice
            if node.input[0] not in self.consts and node.input[1] in self.consts:
                if self.gather_flattened(node):
                    return
                self.gather_as_slice(node, axis)
                return
        except Unsupported:
            pass
        self.add("GATHER", [self.tensor(node.input[0]), self.tensor(node.input[1])], node)

    def gather_as_slice(self, node, axis):
        """Gather of constant indices that step evenly (a ViT's class token x[:, 0], every other
        row): a SLICE, then a RESHAPE for the index's rank."""
        shape = self.shape(node.input[0], node)
        if not -len(shape) <= axis < len(shape):
            raise ConversionError(f"Gather '{node.name}': axis {axis} is out of range for rank {len(shape)}")
        axis %= len(shape)
        if node.input[1] not in self.consts:
            raise Unsupported("Gather", "computed indices on an axis other than 0 (embedding lookup)")
        indices = self.consts[node.input[1]]
        flat = indices.reshape(-1).astype(np.int64)
        if indices.dtype.kind not in "iu" or flat.size == 0 or indices.ndim > 1:
            raise Unsupported("Gather", "indices other than a scalar or a vector")
        if ((flat < -shape[axis]) | (flat >= shape[axis])).any():
            raise ConversionError(f"Gather '{node.name}': indices {flat.tolist()} are out of range for an axis of "
                                  f"{shape[axis]}")
        flat = flat % shape[axis]
        step = int(flat[1] - flat[0]) if flat.size > 1 else 1
        if step == 0 or (np.diff(flat) != step).any():
            raise Unsupported("Gather", "constant indices that do not step evenly on an axis other than 0")
        x = add_axis_slice(self.graph, self.tensor(node.input[0]), axis, int(flat[0]), step, flat.size,
                           node.name or node.output[0])
        if indices.ndim == 1:
            self.values[node.output[0]] = x
        else:   # a scalar index drops the axis
            self.add("RESHAPE", [x], node, dtype=self.graph.tensors[x].dtype)

    def op_Cast(self, node):
        dtype = _DTYPES.get(self.attrs(node)["to"])
        if dtype is None:
            raise Unsupported("Cast", f"to ONNX type {self.attrs(node)['to']} (float32, int32, int64 and bool "
                                      "convert)")
        x = self.tensor(node.input[0])
        if self.graph.tensors[x].dtype == dtype:
            self.values[node.output[0]] = x
        else:
            self.add("CAST", [x], node, dtype=dtype)

    def op_Concat(self, node):
        self.add("CONCAT", [self.tensor(n) for n in node.input], node, dict(axis=self.attrs(node)["axis"]))

    def pads(self, node):
        """(begins + ends per axis, value) of a constant Pad; opset 18's axes input names the axes."""
        a = self.attrs(node)
        if a.get("mode", b"constant") not in (b"constant", "constant"):
            raise Unsupported("Pad", f"mode {_text(a['mode'])} (constant pads convert)")
        rank = len(self.shape(node.input[0], node))
        pads = [int(p) for p in np.asarray(self.const(node.input[1], node, "pads")).reshape(-1)]
        if len(node.input) > 3 and node.input[3]:
            axes = [int(v) for v in np.asarray(self.const(node.input[3], node, "axes")).reshape(-1)]
            if len(pads) != 2 * len(axes) or any(not -rank <= v < rank for v in axes):
                raise ConversionError(f"Pad '{node.name}': {len(pads)} pads for axes {axes} of rank {rank}")
            full = [0] * (2 * rank)
            for k, v in enumerate(axes):
                full[v % rank], full[v % rank + rank] = pads[k], pads[k + len(axes)]
            pads = full
        if len(pads) != 2 * rank:
            raise ConversionError(f"Pad '{node.name}': {len(pads)} pads for rank {rank}")
        value = float(self.consts[node.input[2]]) if len(node.input) > 2 and node.input[2] else 0.0
        return pads, value

    def op_Pad(self, node):
        if self.unshift(node):
            return
        pads, value = self.pads(node)
        self.add("PAD", [self.tensor(node.input[0])], node, dict(pads=pads, value=value))

    def sole_use(self, node, source_type):
        """The IR op that a `source_type` node made node's first input with, from that node's own
        input, when node is all that reads it (no other node, output or alias), else None."""
        name = node.input[0]
        source, tensor = self.producers.get(name), self.values.get(name)
        if source is None or source.op_type != source_type or name in self._graph_outputs or \
                [id(n) for n in self.consumers.get(name, [])] != [id(node)] or not isinstance(tensor, str) or \
                sum(1 for v in self.values.values() if v == tensor) != 1:
            return None
        op = self.graph.producer(tensor)
        return op if op is not None and op.inputs[0] == self.values.get(source.input[0]) else None

    def unshift(self, node):
        """Pad adding k zeros at one end of an axis of a Slice that dropped k elements from its other
        end (MobileBERT's neighbouring tokens), the Slice read by nothing else: the SLICE goes, and
        GATHER_ELEMENTS reads indices i + k (or i - k), those past the axis giving 0, so the axis
        can follow a dynamic dimension (the slice's shorter one could not)."""
        op = self.sole_use(node, "Slice")
        if op is None or op.type != "SLICE" or any(s != 1 for s in op.options["step"]):
            return False
        shape, counts = self.graph.tensors[op.inputs[0]].shape, self.graph.tensors[op.outputs[0]].shape
        axes = [d for d in range(len(shape)) if counts[d] != shape[d]]
        if len(axes) != 1:
            return False
        axis, rank = axes[0], len(shape)
        k, begin = shape[axis] - counts[axis], op.options["begin"][axis]
        pads, value = self.pads(node)
        wanted = [0] * (2 * rank)
        wanted[axis + rank if begin == k else axis] = k
        if value != 0.0 or pads != wanted or begin not in (0, k):
            return False
        positions = np.arange(shape[axis], dtype=np.int64)
        index = positions + k if begin == k else np.where(positions >= k, positions - k, np.iinfo(np.int32).max)
        index = self.add_const(node.output[0] + ".index", index.reshape([-1 if d == axis else 1 for d in
                                                                         range(rank)]), node.output[0])
        self.graph.ops.remove(op)
        self.add("GATHER_ELEMENTS", [op.inputs[0], self.emit("EXPAND", [index], shape, node)], node, dict(axis=axis))
        return True

    def op_Slice(self, node):
        """starts, ends and the optional axes and steps are constants; indices clamp as ONNX says."""
        shape = self.shape(node.input[0], node)
        rank = len(shape)
        starts, ends = (self.const(node.input[i], node, what).reshape(-1) for i, what in ((1, "starts"), (2, "ends")))
        optional = [self.const(node.input[i], node, what).reshape(-1) if len(node.input) > i and node.input[i]
                    else None for i, what in ((3, "axes"), (4, "steps"))]
        axes = optional[0] if optional[0] is not None else np.arange(len(starts))
        steps = optional[1] if optional[1] is not None else np.ones(len(starts), np.int64)
        if any(v.dtype.kind not in "iu" for v in (starts, ends, axes, steps)):
            raise ConversionError(f"Slice '{node.name}': starts, ends, axes and steps must be integers")
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise ConversionError(f"Slice '{node.name}': starts, ends, axes and steps have {len(starts)}, "
                                  f"{len(ends)}, {len(axes)} and {len(steps)} entries")
        begin, step, counts = [0] * rank, [1] * rank, list(shape)
        seen = set()
        for start, end, axis, st in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist()):
            if not -rank <= axis < rank or axis % rank in seen:
                raise ConversionError(f"Slice '{node.name}': axes {axes.tolist()} are not distinct axes of rank "
                                      f"{rank}")
            axis %= rank
            seen.add(axis)
            begin[axis], step[axis], counts[axis] = _onnx_slice_axis(shape[axis], start, end, st, node)
        self.values[node.output[0]] = self.sliced(node, 0, begin, step, counts)

    def sliced(self, node, k, begin, step, counts):
        """add_slice for output k of node, checked against the shape ONNX inferred for it."""
        out = add_slice(self.graph, self.tensor(node.input[0]), begin, step, counts, node.name or node.output[k],
                        out_name=node.output[k])
        inferred = self.shapes.get(node.output[k])
        if inferred is not None and all(isinstance(d, int) for d in inferred) and tuple(inferred) != tuple(counts):
            raise ConversionError(f"{node.op_type} '{node.name}': output '{node.output[k]}' has {list(counts)} "
                                  f"elements per axis, shape inference says {list(inferred)}")
        return out

    def op_Split(self, node):
        """Sizes from the split input, else equal parts (opset 18's num_outputs: the last one smaller)."""
        shape = self.shape(node.input[0], node)
        a = self.attrs(node)
        axis = a.get("axis", 0)
        if not -len(shape) <= axis < len(shape):
            raise ConversionError(f"Split '{node.name}': axis {axis} is out of range for rank {len(shape)}")
        axis %= len(shape)
        parts = len(node.output)
        if len(node.input) > 1 and node.input[1]:
            split = self.const(node.input[1], node, "split")
            if split.dtype.kind not in "iu":
                raise ConversionError(f"Split '{node.name}': split sizes must be integers, not {split.dtype}")
            sizes = [int(v) for v in split.reshape(-1)]
        else:
            if a.get("num_outputs", parts) != parts or parts < 1:
                raise ConversionError(f"Split '{node.name}': num_outputs {a.get('num_outputs')} with {parts} "
                                      "outputs")
            size = -(-shape[axis] // parts)
            sizes = [size] * (parts - 1) + [shape[axis] - size * (parts - 1)]
        if len(sizes) != parts or sum(sizes) != shape[axis] or min(sizes) < 1:
            raise ConversionError(f"Split '{node.name}': sizes {sizes} for {parts} outputs of an axis of "
                                  f"{shape[axis]} (each at least 1, summing to it)")
        begin = 0
        for k, size in enumerate(sizes):
            b, st, counts = [0] * len(shape), [1] * len(shape), list(shape)
            b[axis], counts[axis] = begin, size
            self.values[node.output[k]] = self.sliced(node, k, b, st, counts)
            begin += size

    def pool(self, node):
        """MaxPool / AveragePool; ceil_mode's extra window is the output size inference gave, which
        the runtime checks (it must start inside the input or the left padding)."""
        a = self.attrs(node)
        if any(d != 1 for d in a.get("dilations", (1, 1))):
            raise Unsupported(node.op_type, f"dilations {list(a['dilations'])}")
        if len(a.get("kernel_shape", ())) != 2:
            raise Unsupported(node.op_type, f"over {len(a.get('kernel_shape', ()))} dimensions (2-D converts)")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise Unsupported(node.op_type, "auto_pad (export with explicit pads)")
        include_pad = bool(a.get("count_include_pad", 0))
        if node.op_type == "AveragePool" and a.get("ceil_mode", 0) and include_pad:
            raise Unsupported(node.op_type, "ceil_mode with count_include_pad")
        pads = a.get("pads", [0, 0, 0, 0])
        opts = dict(kernel=tuple(a["kernel_shape"]), stride=tuple(a.get("strides", (1, 1))),
                    padding=(pads[0], pads[1], pads[2], pads[3]))
        if a.get("ceil_mode", 0):
            x_hw, y_hw = self.shape(node.input[0], node)[2:], self.shape(node.output[0], node)[2:]
            for size, out, stride, pad in zip(x_hw, y_hw, opts["stride"], pads[:2]):
                if (out - 1) * stride >= size + pad:   # onnxruntime drops that window; shape inference keeps it
                    raise Unsupported(node.op_type, "ceil_mode with a last window starting in the padding")
        if node.op_type == "AveragePool":
            opts["count_include_pad"] = include_pad
        self.add("MAX_POOL2D" if node.op_type == "MaxPool" else "AVG_POOL2D", [self.tensor(node.input[0])], node, opts)

    op_MaxPool = op_AveragePool = pool

    def reduce(self, node):
        """ReduceMean/Sum/Max/Min, and ReduceL1/L2/SumSquare as a SUM of |x| or x * x (then SQRT):
        axes from the attribute, or the second input (ReduceSum from opset 13, the others from 18);
        no axes reduce all of them unless noop_with_empty_axes."""
        a = self.attrs(node)
        x = self.tensor(node.input[0])
        rank = len(self.shape(node.input[0], node))
        if len(node.input) > 1 and node.input[1]:
            axes = [int(v) for v in np.asarray(self.const(node.input[1], node, "axes")).reshape(-1)]
        else:
            axes = [int(v) for v in a.get("axes", [])]
        if not axes and a.get("noop_with_empty_axes", 0):
            self.values[node.output[0]] = x
            return
        if self.graph.tensors[x].dtype != "float32":
            raise Unsupported(node.op_type, f"of a {self.graph.tensors[x].dtype} tensor (float32 reduces)")
        if any(not -rank <= v < rank for v in axes):
            raise ConversionError(f"{node.op_type} '{node.name}': axes {axes} out of range for rank {rank}")
        axes = sorted({v % rank for v in axes}) if axes else list(range(rank))
        kind = _REDUCE.get(node.op_type, "SUM")
        options = dict(kind=kind, axes=axes, keep_dims=bool(a.get("keepdims", 1)))
        x_shape = self.shape(node.input[0], node)
        if node.op_type in ("ReduceL2", "ReduceSumSquare"):
            x = self.emit("MUL", [x, x], x_shape, node)
        elif node.op_type == "ReduceL1":
            x = self.emit("ACTIVATION", [x], x_shape, node, dict(activation="ABS"))
        if node.op_type == "ReduceL2":   # cosine attention's norms (Swin V2)
            total = self.emit("REDUCE", [x], self.shape(node.output[0], node), node, options)
            self.add("ACTIVATION", [total], node, dict(activation="SQRT"))
        elif kind == "MEAN" and rank == 4 and axes == [2, 3]:   # a conv net's global average pool
            self.add("GLOBAL_AVG_POOL", [x], node)
        else:
            self.add("REDUCE", [x], node, options)

    op_ReduceMean = op_ReduceSum = op_ReduceMax = op_ReduceMin = reduce

    def op_Einsum(self, node):
        """TRANSPOSE / RESHAPE / REDUCE and one MATMUL (converters/einsum.py)."""
        inputs = [self.tensor(n) for n in node.input]
        if any(self.dtype(x) != "float32" for x in inputs):
            raise Unsupported(node.op_type, "of integer tensors (float32 converts)")
        self.values[node.output[0]] = einsum.lower(
            self.graph, node.op_type, _text(self.attrs(node).get("equation", "")), inputs,
            [self.shape(n, node) for n in node.input], node.name or node.output[0])
    op_ReduceL1 = op_ReduceL2 = op_ReduceSumSquare = reduce

    def op_BatchNormalization(self, node):
        """Inference BatchNormalization: per channel x * scale + shift; the passes fold it into the
        conv before it when it is that conv's only reader, else it runs as MUL + ADD."""
        a = self.attrs(node)
        if a.get("training_mode", 0) or any(self.consumers.get(o) or o in self._graph_outputs
                                            for o in node.output[1:] if o):
            raise Unsupported("BatchNormalization", "in training mode (running statistics as outputs)")
        gamma, beta, mean, var = (np.asarray(self.const(n, node, what), np.float64) for n, what in
                                  zip(node.input[1:5], ("scale", "B", "input_mean", "input_var")))
        channels = self.shape(node.input[0], node)[1] if len(self.shape(node.input[0], node)) > 1 else 1
        if any(v.shape != (channels,) for v in (gamma, beta, mean, var)):
            raise ConversionError(f"BatchNormalization '{node.name}': scale, B, mean and var must hold one value "
                                  f"per channel ({channels})")
        scale = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        self.add("BATCH_NORM", [self.tensor(node.input[0])], node,
                 dict(scale=scale, shift=beta - mean * scale))   # float64: fold_batch_norm rounds once

    def resize(self, node, mode, coordinates, nearest_mode, scales, sizes):
        """RESIZE_BILINEAR / RESIZE_NEAREST over H and W of an NCHW tensor. The output size is
        inference's; a `scales` input also sets the scale the coordinates use (ONNX samples with
        it, not with out / in)."""
        x_shape, y_shape = self.shape(node.input[0], node), self.shape(node.output[0], node)
        if len(x_shape) != 4 or tuple(x_shape[:2]) != tuple(y_shape[:2]):
            raise Unsupported(node.op_type, f"of {list(x_shape)} to {list(y_shape)} (NCHW over H and W converts)")
        if mode not in ("nearest", "linear"):
            raise Unsupported(node.op_type, f"mode {mode}")
        if coordinates not in _RESIZE_COORDINATES:
            raise Unsupported(node.op_type, f"coordinate_transformation_mode {coordinates}")
        opts = dict(coordinates=_RESIZE_COORDINATES[coordinates])
        if scales is not None and sizes is None:
            if len(scales) != 4 or scales[0] != 1 or scales[1] != 1:
                raise Unsupported(node.op_type, f"scales {list(scales)} (NCHW over H and W converts)")
            opts["scale"] = (float(scales[2]), float(scales[3]))
        if mode == "nearest":
            if nearest_mode not in _NEAREST_MODES:
                raise Unsupported(node.op_type, f"nearest_mode {nearest_mode}")
            opts["nearest_mode"] = _NEAREST_MODES[nearest_mode]
        self.add("RESIZE_NEAREST" if mode == "nearest" else "RESIZE_BILINEAR", [self.tensor(node.input[0])], node,
                 opts)

    def op_Resize(self, node):
        a = self.attrs(node)
        for attr, default in (("antialias", 0), ("keep_aspect_ratio_policy", "stretch")):
            value = _text(a[attr]) if isinstance(a.get(attr), bytes) else a.get(attr, default)
            if value != default:
                raise Unsupported("Resize", f"{attr} {value}")
        rank = len(self.shape(node.input[0], node))

        def per_axis(k, what, fill):
            if len(node.input) <= k or not node.input[k]:
                return None
            values = np.asarray(self.const(node.input[k], node, what), np.float64).reshape(-1)
            if values.size == 0:
                return None
            axes = [int(v) % rank for v in a.get("axes", range(rank))]
            if len(axes) != values.size:
                raise ConversionError(f"Resize '{node.name}': {values.size} {what} for {len(axes)} axes")
            full = np.full(rank, fill, np.float64)
            full[axes] = values
            return full

        scales = per_axis(2, "scales", 1.0)
        sizes = per_axis(3, "sizes", 0.0)
        self.resize(node, _text(a.get("mode", "nearest")), _text(a.get("coordinate_transformation_mode", "half_pixel")),
                    _text(a.get("nearest_mode", "round_prefer_floor")),
                    None if scales is None else np.float32(scales), sizes)

    # --- booleans, integer and elementwise math (issue 17's Hugging Face exports) ------------
    def emit(self, op_type, inputs, shape, node, options=None, dtype=None):
        """An op inside node's lowering, its output of `shape` (dtype: the first input's unless told)."""
        return self.graph.add_op(op_type, inputs, shape, options=options, name=node.name or node.output[0],
                                 dtype=dtype or self.dtype(inputs[0]))

    def scalar(self, value, dtype, origin):
        return self.add_const(origin + ".scalar", np.array(value, dtype=dtype), origin)

    def compare(self, node):
        x, y = (self.tensor(n) for n in node.input)
        if self.dtype(x) != self.dtype(y):
            raise ConversionError(f"{node.op_type} '{node.name}': inputs of types {self.dtype(x)} and {self.dtype(y)}")
        if self.dtype(x) == "bool":
            if node.op_type != "Equal":
                raise Unsupported(node.op_type, "of boolean tensors")
            differ = self.emit("LOGICAL", [x, y], self.shape(node.output[0], node), node, dict(kind="XOR"))
            self.add("LOGICAL", [differ], node, dict(kind="NOT"))
            return
        self.add("COMPARE", [x, y], node, dict(kind=_COMPARE[node.op_type]), dtype="bool")

    def op_IsNaN(self, node):   # NaN is the one value not equal to itself
        x = self.tensor(node.input[0])
        self.add("COMPARE", [x, x], node, dict(kind="NOT_EQUAL"), dtype="bool")

    def logical(self, node):
        inputs = [self.tensor(n) for n in node.input]
        if any(self.dtype(t) != "bool" for t in inputs):
            raise ConversionError(f"{node.op_type} '{node.name}': inputs must be boolean")
        self.add("LOGICAL", inputs, node, dict(kind=_LOGICAL[node.op_type]))

    def op_Where(self, node):
        cond, x, y = (self.tensor(n) for n in node.input)
        if self.dtype(cond) != "bool" or self.dtype(x) != self.dtype(y):
            raise ConversionError(f"Where '{node.name}': needs a boolean condition and two values of one type, got "
                                  f"{self.dtype(cond)}, {self.dtype(x)} and {self.dtype(y)}")
        self.add("WHERE", [cond, x, y], node, dtype=self.dtype(x))

    def float_input(self, node):
        x = self.tensor(node.input[0])
        if self.dtype(x) != "float32":
            raise Unsupported(node.op_type, f"of a {self.dtype(x)} tensor (float32 converts)")
        return x

    def math(self, node, activation, **options):
        self.add("ACTIVATION", [self.float_input(node)], node, dict(activation=activation, **options))

    def op_Neg(self, node):   # integers: 0 - x
        x = self.tensor(node.input[0])
        if self.dtype(x) in ("int32", "int64"):
            self.add("SUB", [self.scalar(0, self.dtype(x), node.input[0]), x], node)
        else:
            self.math(node, "NEG")

    def op_Abs(self, node):   # integers: x < 0 ? 0 - x : x
        x = self.tensor(node.input[0])
        if self.dtype(x) not in ("int32", "int64"):
            self.math(node, "ABS")
            return
        shape, zero = self.graph.tensors[x].shape, self.scalar(0, self.dtype(x), node.input[0])
        negative = self.emit("COMPARE", [x, zero], shape, node, dict(kind="LESS"), dtype="bool")
        self.add("WHERE", [negative, self.emit("SUB", [zero, x], shape, node), x], node, dtype=self.dtype(x))

    def op_Reciprocal(self, node):
        x = self.float_input(node)
        self.add("DIV", [self.scalar(1.0, np.float32, node.input[0]), x], node)

    def op_Pow(self, node):
        """A constant exponent: x * x for 2, SQRT for 0.5, RSQRT for -0.5, 1 / x for -1, else POW."""
        if self.gelu_tanh(node):
            return
        x = self.float_input(node)
        e = node.input[1]
        if e not in self.consts or self.consts[e].size != 1:
            raise Unsupported("Pow", "a computed or non-scalar exponent")
        p = float(self.consts[e].reshape(-1)[0])
        if self.shape(node.output[0], node) != self.graph.tensors[x].shape:
            raise Unsupported("Pow", "an exponent that broadcasts the base")
        if p == 1:
            self.values[node.output[0]] = x
        elif p == 2:
            self.add("MUL", [x, x], node)
        elif p == -1:
            self.add("DIV", [self.scalar(1.0, np.float32, e), x], node)
        else:
            kind = {0.5: "SQRT", -0.5: "RSQRT"}.get(p, "POW")
            self.add("ACTIVATION", [x], node, dict(activation=kind, exponent=p))

    def minmax(self, node):
        """Min / Max: CLAMP against a float32 scalar constant, else (x < y ? x : y) pairwise."""
        names = [n for n in node.input if n]
        lower = node.op_type == "Min"
        scalars = [n for n in names if n in self.consts and self.consts[n].size == 1]
        if len(names) == 2 and len(scalars) == 1 and self.consts[scalars[0]].dtype == np.float32:
            x = self.tensor(names[0] if names[1] == scalars[0] else names[1])
            bound = float(self.consts[scalars[0]].reshape(-1)[0])
            if self.graph.tensors[x].shape == self.shape(node.output[0], node):
                self.add("ACTIVATION", [x], node, dict(activation="CLAMP", min=-np.inf if lower else bound,
                                                       max=bound if lower else np.inf))
                return
        acc = self.tensor(names[0])
        for k, name in enumerate(names[1:], 2):
            y = self.tensor(name)
            if self.dtype(y) != self.dtype(acc) or self.dtype(y) == "bool":
                raise ConversionError(f"{node.op_type} '{node.name}': inputs of types {self.dtype(acc)} and "
                                      f"{self.dtype(y)}")
            shape = tuple(np.broadcast_shapes(self.graph.tensors[acc].shape, self.graph.tensors[y].shape))
            keep = self.emit("COMPARE", [acc, y], shape, node, dict(kind="LESS" if lower else "GREATER"), dtype="bool")
            if k == len(names):
                self.add("WHERE", [keep, acc, y], node, dtype=self.dtype(acc))
            else:
                acc = self.emit("WHERE", [keep, acc, y], shape, node, dtype=self.dtype(acc))

    op_Min = op_Max = minmax

    def op_Sign(self, node):   # (x > 0) - (x < 0)
        x = self.tensor(node.input[0])
        if self.dtype(x) == "bool":
            raise Unsupported("Sign", "of a boolean tensor")
        shape, zero = self.graph.tensors[x].shape, self.scalar(0, self.dtype(x), node.input[0])
        above, below = (self.emit("CAST", [self.emit("COMPARE", [x, zero], shape, node, dict(kind=kind), dtype="bool")],
                                  shape, node, dtype=self.dtype(x)) for kind in ("GREATER", "LESS"))
        self.add("SUB", [above, below], node)

    def rounding(self, node):
        """Ceil / Floor as casts: t = float(int64(x)) truncates, then t + (x > t), or t - (x < t).
        Exact for |x| < 2^63 (beyond, the cast saturates); NaN gives 0."""
        x = self.float_input(node)
        shape = self.graph.tensors[x].shape
        whole = self.emit("CAST", [self.emit("CAST", [x], shape, node, dtype="int64")], shape, node, dtype="float32")
        up = node.op_type == "Ceil"
        beyond = self.emit("COMPARE", [x, whole], shape, node, dict(kind="GREATER" if up else "LESS"), dtype="bool")
        self.add("ADD" if up else "SUB", [whole, self.emit("CAST", [beyond], shape, node, dtype="float32")], node)

    op_Ceil = op_Floor = rounding

    def op_CumSum(self, node):
        a = self.attrs(node)
        x = self.tensor(node.input[0])
        rank = len(self.graph.tensors[x].shape)
        axis = int(np.asarray(self.const(node.input[1], node, "axis")).reshape(-1)[0])
        if not -rank <= axis < rank:
            raise ConversionError(f"CumSum '{node.name}': axis {axis} is out of range for rank {rank}")
        self.add("CUMSUM", [x], node, dict(axis=axis % rank, exclusive=bool(a.get("exclusive", 0)),
                                           reverse=bool(a.get("reverse", 0))))

    def expand_to(self, node, x):
        """x broadcast to node's output shape: x itself when it has that shape already."""
        if self.graph.tensors[x].shape == self.shape(node.output[0], node):
            self.values[node.output[0]] = x
        else:
            self.add("EXPAND", [x], node)

    def op_Expand(self, node):
        self.const(node.input[1], node, "the shape")
        self.expand_to(node, self.tensor(node.input[0]))

    def op_ConstantOfShape(self, node):
        """Met only when its shape varies with a dynamic dimension (else it folds): the value expanded."""
        from onnx import numpy_helper

        a = self.attrs(node)
        value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        if _DTYPES.get(self.onnx.helper.np_dtype_to_tensor_dtype(value.dtype)) is None or value.size != 1:
            raise Unsupported("ConstantOfShape", f"a value of {value.dtype} with {value.size} elements")
        self.const(node.input[0], node, "the shape")
        self.expand_to(node, self.add_const(node.output[0] + ".value", value.reshape(()), node.output[0]))

    def op_Tile(self, node):
        """x [a, b] tiled [p, q]: x as [1, a, 1, b] expanded to [p, a, q, b], reshaped to [p * a, q * b]."""
        x = self.tensor(node.input[0])
        shape = self.graph.tensors[x].shape
        repeats = [int(r) for r in np.asarray(self.const(node.input[1], node, "repeats")).reshape(-1)]
        if len(repeats) != len(shape) or min(repeats, default=1) < 1:
            raise ConversionError(f"Tile '{node.name}': repeats {repeats} for an input of shape {list(shape)}")
        if all(r == 1 for r in repeats):
            self.values[node.output[0]] = x
            return
        spread = [d for r, n in zip(repeats, shape) for d in ((1, n) if r > 1 else (n,))]
        tiled = [d for r, n in zip(repeats, shape) for d in ((r, n) if r > 1 else (n,))]
        x = self.emit("RESHAPE", [x], tuple(spread), node)
        self.add("RESHAPE", [self.emit("EXPAND", [x], tuple(tiled), node)], node)

    def op_GatherElements(self, node):
        x, index = self.tensor(node.input[0]), self.tensor(node.input[1])
        rank = len(self.graph.tensors[x].shape)
        axis = self.attrs(node).get("axis", 0)
        if not -rank <= axis < rank:
            raise ConversionError(f"GatherElements '{node.name}': axis {axis} is out of range for rank {rank}")
        self.add("GATHER_ELEMENTS", [x, index], node, dict(axis=axis % rank))

    @staticmethod
    def grid(components, dims):
        """Where indices read the data in order: components[j] (over the indices' grid) indexes data
        axis j of `dims`; when each counts 0..dims[j]-1 along one grid axis, those axes in the
        data's order (repeating along the others), the grid shape that places each data axis on its
        grid axis (1 elsewhere), else None."""
        grid = components[0].shape
        spread, last = [1] * len(grid), -1
        for component, dim in zip(components, dims):
            if dim == 1 and not component.any():
                continue
            axis = next((a for a in range(len(grid)) if grid[a] == dim and np.array_equal(
                component, np.broadcast_to(np.arange(dim).reshape([-1 if b == a else 1 for b in range(len(grid))]),
                                           grid))), None)
            if axis is None or axis <= last:
                return None
            spread[axis], last = dim, axis
        return tuple(spread)

    def op_GatherND(self, node):
        """Constant indices that walk a grid (transformers' mask: mask[b, k] over b and k) read the
        data in order: a RESHAPE, and an EXPAND where the indices repeat along an axis."""
        if self.attrs(node).get("batch_dims", 0) or node.input[1] not in self.consts:
            raise Unsupported("GatherND", "computed indices, or batch_dims")
        x = self.tensor(node.input[0])
        data, indices = self.graph.tensors[x].shape, self.consts[node.input[1]]
        depth = indices.shape[-1] if indices.ndim else 0
        if indices.dtype.kind not in "iu" or not 1 <= depth <= len(data):
            raise Unsupported("GatherND", f"indices of shape {list(indices.shape)} for data of shape {list(data)}")
        spread = self.grid([np.where(indices[..., j] < 0, indices[..., j] + data[j], indices[..., j])
                            for j in range(depth)], data[:depth])
        if spread is None:
            raise Unsupported("GatherND", "constant indices other than a grid in the data's order")
        self.expand_to(node, self.emit("RESHAPE", [x], spread + tuple(data[depth:]), node))

    def gather_flattened(self, node):
        """Gather on axis 0, at constant indices, of x flattened just before (the legacy exporter's
        mask[b, k]: Flatten to [B * T, 1], indices b * T + k): when they read x in order, the
        flattening RESHAPE goes and a RESHAPE (and EXPAND) of x replaces both, keeping each axis
        whole (B * T could not follow dynamic dimensions). Returns whether it did."""
        op = self.sole_use(node, "Flatten") or self.sole_use(node, "Reshape")
        if op is None or op.type != "RESHAPE" or not self.graph.tensors[op.outputs[0]].shape:
            return False
        x_shape, (rows, *rest) = self.graph.tensors[op.inputs[0]].shape, self.graph.tensors[op.outputs[0]].shape
        lead = next((j for j in range(1, len(x_shape) + 1) if num_elements(x_shape[:j]) == rows), None)
        indices = self.consts[node.input[1]]
        if lead is None or num_elements(x_shape[lead:]) != num_elements(rest) or indices.dtype.kind not in "iu" \
                or indices.ndim == 0 or (indices < -rows).any() or (indices >= rows).any():
            return False
        spread = self.grid(np.unravel_index(indices % rows, x_shape[:lead]), x_shape[:lead])
        if spread is None:
            return False
        self.graph.ops.remove(op)
        self.expand_to(node, self.emit("RESHAPE", [op.inputs[0]], spread + tuple(rest), node))
        return True

    def group_norm(self, node, groups, gamma, beta, epsilon):
        x = self.float_input(node)
        channels = self.shape(node.input[0], node)[1]
        # the input's shape: onnx infers none for GroupNormalization-18, a function it does not expand
        self.shapes.setdefault(node.output[0], self.shape(node.input[0], node))
        if groups < 1 or channels % groups:
            raise ConversionError(f"{node.op_type} '{node.name}': {channels} channels in {groups} groups")
        # GroupNormalization-18 scales per group, -21 per channel (the same when they are as many)
        gamma, beta = (np.repeat(v, channels // v.size) if v.size == groups else v for v in (gamma, beta))
        if gamma.shape != (channels,) or beta.shape != (channels,):
            raise ConversionError(f"{node.op_type} '{node.name}': scale and bias must hold one value per channel "
                                  f"({channels}) or group ({groups})")
        self.add("GROUP_NORM", [x, self.add_const(node.input[1], gamma.astype(np.float32), node.input[1]),
                                self.add_const(node.input[2], beta.astype(np.float32), node.input[2])],
                 node, dict(groups=groups, epsilon=epsilon))

    def op_GroupNormalization(self, node):
        a = self.attrs(node)
        scale, bias = (np.asarray(self.const(n, node, what), np.float32).reshape(-1)
                       for n, what in zip(node.input[1:3], ("scale", "bias")))
        self.group_norm(node, int(a["num_groups"]), scale, bias, float(a.get("epsilon", 1e-5)))

    def op_InstanceNormalization(self, node):
        scale, bias = (np.asarray(self.const(n, node, what), np.float32).reshape(-1)
                       for n, what in zip(node.input[1:3], ("scale", "B")))
        self.group_norm(node, self.shape(node.input[0], node)[1], scale, bias,
                        float(self.attrs(node).get("epsilon", 1e-5)))

    def conv1d(self, node, w, a):
        """Conv over one dimension: CONV2D over [N, C, 1, L] between RESHAPEs."""
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise Unsupported("Conv", "auto_pad (export with explicit pads)")
        (n, c, length), y_shape = self.shape(node.input[0], node), self.shape(node.output[0], node)
        pads = a.get("pads", [0, 0])
        inputs = [self.emit("RESHAPE", [self.tensor(node.input[0])], (n, c, 1, length), node),
                  self.add_const(node.input[1], w[:, :, None, :], node.input[1])]
        if len(node.input) > 2 and node.input[2]:
            inputs.append(self.tensor(node.input[2]))
        y = self.emit("CONV2D", inputs, (y_shape[0], y_shape[1], 1, y_shape[2]), node, dict(
            stride=(1, a.get("strides", (1,))[0]), dilation=(1, a.get("dilations", (1,))[0]),
            padding=(0, pads[0], 0, pads[1]), groups=a.get("group", 1)))
        self.add("RESHAPE", [y], node)

    def identity(self, node):
        self.values[node.output[0]] = self.tensor(node.input[0])

    def unary(self, node):
        self.add("ACTIVATION", [self.tensor(node.input[0])], node, dict(activation=_UNARY[node.op_type]))


def _drop_value_info(model, names):
    """Removes the value_info of values that became initializers: shape inference would take an
    exporter's unknown dimension there ("4*batch") over the initializer's own shape."""
    kept = [vi for vi in model.graph.value_info if vi.name not in names]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)


def _onnx_slice_axis(dim, start, end, step, node):
    """(begin, step, count) of ONNX Slice on an axis of `dim`: negative indices count from the end,
    then starts clamp to [0, dim] ([0, dim - 1] stepping back) and ends to [0, dim] ([-1, dim - 1])."""
    if step == 0:
        raise ConversionError(f"Slice '{node.name}': a step is 0")
    start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return start, step, max(0, -(-(end - start) // step))


for _name in _BINARY:
    setattr(_Converter, "op_" + _name, _Converter.binary)
for _name in _IDENTITY:
    setattr(_Converter, "op_" + _name, _Converter.identity)
for _name in _UNARY:
    setattr(_Converter, "op_" + _name, _Converter.unary)
for _name in _COMPARE:
    setattr(_Converter, "op_" + _name, _Converter.compare)
for _name in _LOGICAL:
    setattr(_Converter, "op_" + _name, _Converter.logical)
for _name, _kind in _MATH.items():
    if not hasattr(_Converter, "op_" + _name):
        setattr(_Converter, "op_" + _name, lambda self, node, _kind=_kind: self.math(node, _kind))


def supported_ops():
    """(ONNX ops from_onnx maps, ops it evaluates when all their inputs are constants)."""
    mapped = sorted(n[3:] for n in dir(_Converter) if n.startswith("op_"))
    return mapped, sorted(set(onnx_fold.FOLDS) - set(mapped))


def from_onnx_graph(model, progress=None):
    """The IR of an onnx.ModelProto (external data already inlined by load_model) and its output
    names. A malformed model fails with ConversionError naming the node conversion stood at; the
    exception that revealed it is chained (its traceback shows where, should it be a bug)."""
    graph, outputs, _ = convert_once(model, progress)
    return graph, outputs


def convert_once(model, progress=None, computed=()):
    """from_onnx_graph, also returning the converter (its folded values and the ONNX value each
    constant came from, for onnx_dynamic), with the values `computed` converted as ops, not folded."""
    from onnx.checker import ValidationError
    from onnx.shape_inference import InferenceError

    conv = None
    try:
        conv = _Converter(model, progress, computed)
        graph, outputs = conv.convert()
        return graph, outputs, conv
    except ConversionError:
        raise
    except (ValidationError, InferenceError) as e:
        raise ConversionError(f"invalid ONNX model ({conv.where if conv else 'checking it'}): {e}") from e
    except _MALFORMED as e:
        where = conv.where if conv else "reading the model"
        raise ConversionError(f"malformed ONNX model ({where}): {type(e).__name__}: {e}") from e


# --- loading, external data ----------------------------------------------------------------------
def load_model(source, external_data_dir=None):
    """An onnx.ModelProto from a path, bytes or ModelProto, with every tensor whose data is stored
    in an external file read in, from `external_data_dir` only: by default the model file's own
    directory for a path, and none for bytes or a ModelProto (their external tensors are refused).
    A location must be a relative path inside that directory (no '..', no absolute path, no
    symlink leading out, a regular file), and its offset and length within the file. A ModelProto
    is not modified (a copy is). onnx.load would read external data itself, from the model's
    directory, and numpy_helper.to_array from the working directory: neither is used for that."""
    import onnx
    from google.protobuf.message import DecodeError

    if isinstance(source, onnx.ModelProto):
        model, base = source, external_data_dir
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if external_data_dir is not None:
                raise ConversionError("external_data_dir needs the model as a path or an onnx.ModelProto: a model "
                                      "given as bytes never reads other files")
            data, base = bytes(source), None
        else:
            path = os.fspath(source)
            with open(path, "rb") as f:
                data = f.read()
            base = external_data_dir if external_data_dir is not None else os.path.dirname(os.path.abspath(path))
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except (DecodeError, RecursionError, ValueError) as e:
            raise ConversionError(f"not an ONNX model: the protobuf does not parse ({e})") from e
    external = [t for t in _all_tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return model
    first = external[0]
    location = next((e.value for e in first.external_data if e.key == "location"), "")
    if base is None:
        raise ConversionError(f"tensor '{first.name}' stores its data in an external file ('{location}'): a model "
                              "given as bytes or as a ModelProto reads no files unless from_onnx(..., "
                              "external_data_dir=...) names the directory; or convert from the model's path")
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        external = [t for t in _all_tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL]
    base_real = os.path.realpath(os.fspath(base))
    if not os.path.isdir(base_real):
        raise ConversionError(f"external_data_dir '{base}' is not a directory")
    for tensor in external:
        _read_external(tensor, base_real)
    return model


def _all_tensors(model):
    """Every TensorProto of a model: initializers, sparse initializers and node attributes, in
    subgraphs and functions too."""
    def graph_tensors(graph):
        yield from graph.initializer
        for sp in graph.sparse_initializer:
            yield from (sp.values, sp.indices)
        for node in graph.node:
            yield from node_tensors(node)

    def node_tensors(node):
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for sp in ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors):
                yield from (sp.values, sp.indices)
            if a.HasField("g"):
                yield from graph_tensors(a.g)
            for g in a.graphs:
                yield from graph_tensors(g)

    yield from graph_tensors(model.graph)
    for fn in model.functions:
        for node in fn.node:
            yield from node_tensors(node)
    for info in model.training_info:
        yield from graph_tensors(info.initialization)
        yield from graph_tensors(info.algorithm)


# The field each ONNX type's values are stored in when not as raw_data (TensorProto.DataType ->
# field, values per element).
_FIELDS = {1: "float_data", 2: "int32_data", 3: "int32_data", 4: "int32_data", 5: "int32_data", 6: "int32_data",
           7: "int64_data", 9: "int32_data", 10: "int32_data", 11: "double_data", 12: "uint64_data",
           13: "uint64_data", 16: "int32_data", 8: "string_data"}


def _check_tensors(model):
    """Every tensor of the model holds exactly the data its dims claim (raw bytes or typed values),
    and none is external any more: what onnx's shape inference and numpy_helper later read or
    allocate is then bounded by the file itself."""
    import onnx

    for t in _all_tensors(model):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise ConversionError(f"internal: tensor '{t.name}' still refers to external data")
        dims = list(t.dims)
        if any(d < 0 for d in dims):
            raise ConversionError(f"tensor '{t.name}' has shape {dims}")
        n = num_elements(dims)
        if t.raw_data and t.data_type in _ITEMSIZE:
            stored, needed = len(t.raw_data), n * _ITEMSIZE[t.data_type]
        elif not t.raw_data and t.data_type in _FIELDS:
            stored, needed = len(getattr(t, _FIELDS[t.data_type])), n
        else:
            continue   # a type the converter refuses when it reads the tensor (numpy_helper checks it)
        if stored != needed:
            raise ConversionError(f"tensor '{t.name}' of shape {dims} (ONNX type {t.data_type}) needs {needed} "
                                  f"{'bytes' if t.raw_data else 'values'}; the model holds {stored}")


def _read_external(tensor, base_real):
    """Reads an external tensor's bytes from inside base_real into tensor.raw_data."""
    import onnx

    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")

    def refuse(why):
        raise ConversionError(f"tensor '{tensor.name}': external data '{location}' {why}")

    parts = location.replace("\\", "/").split("/")
    if not location or "\0" in location:
        refuse("has no valid location")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
        refuse("is an absolute path: locations are relative to the external data directory")
    if ".." in parts:
        refuse("contains '..': locations must stay inside the external data directory")
    real = os.path.realpath(os.path.join(base_real, location))
    if os.path.commonpath([real, base_real]) != base_real or real == base_real:
        refuse(f"resolves to '{real}', outside the external data directory '{base_real}'")
    try:
        st = os.stat(real)
    except OSError as e:
        refuse(f"cannot be read: {e.strerror}")
    if not stat.S_ISREG(st.st_mode):
        refuse("is not a regular file")
    try:
        offset, length = int(info.get("offset", 0)), (int(info["length"]) if "length" in info else None)
    except ValueError:
        refuse(f"has offset '{info.get('offset')}' / length '{info.get('length')}', which are not integers")
    itemsize = _ITEMSIZE.get(tensor.data_type)
    if itemsize is None:
        refuse(f"holds ONNX type {tensor.data_type}: external data is read for whole-byte number types only")
    if any(d < 0 for d in tensor.dims):
        refuse(f"belongs to a tensor of shape {list(tensor.dims)}")
    needed = num_elements(tensor.dims) * itemsize
    if offset < 0 or (length is not None and length != needed):
        refuse(f"has offset {offset} and length {length}; its shape {list(tensor.dims)} needs {needed} bytes")
    if offset + needed > st.st_size:
        refuse(f"needs bytes {offset}..{offset + needed} of a file of {st.st_size} bytes")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(real, flags)
    except OSError as e:
        refuse(f"cannot be opened: {e.strerror}")
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            refuse("is not a regular file")
        f.seek(offset)
        data = f.read(needed)
    if len(data) != needed:
        refuse(f"ended after {len(data)} of {needed} bytes")
    tensor.raw_data = data
    tensor.data_location = onnx.TensorProto.DEFAULT
    del tensor.external_data[:]
