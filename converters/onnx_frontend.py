"""ONNX frontend: an ONNX model (opset 13-20, as torch.onnx.export writes) -> IR.

Shapes come from ONNX shape inference and must be static. Subgraphs of constants (shape
arithmetic, position ids, masks of buffers) are folded with onnx's reference evaluator, and Shape
of a statically shaped tensor is a constant, so reshapes see plain shapes. Linear layers exported as
MatMul + Add become one FULLY_CONNECTED with its bias; the erf form of GELU (Div, Erf, Add, Mul,
Mul) becomes one activation.
"""
import numpy as np

from sparselite.errors import ConversionError

from .ir import Graph

OPSETS = range(13, 21)
_UNARY = {"Relu": "RELU", "Sigmoid": "SIGMOID", "Tanh": "TANH", "HardSwish": "HARDSWISH"}
_BINARY = {"Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Div": "DIV"}
_IDENTITY = ("Identity", "Dropout")
_DTYPES = {1: "float32", 6: "int32", 7: "int64"}   # TensorProto.FLOAT, INT32, INT64
# Folds onnx's reference evaluator gets wrong (GatherElements on a broadcast input).
_NUMPY_FOLDS = {"GatherElements": lambda a, data, idx: [np.take_along_axis(data, idx, axis=a.get("axis", 0))]}


class _Converter:
    def __init__(self, model, progress=None):
        import onnx

        self.onnx = onnx
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if opset not in OPSETS:
            raise ConversionError(f"ONNX opset {opset} is not supported: export with opset 13..20")
        self.model = onnx.shape_inference.infer_shapes(model)
        self.graph_proto = self.model.graph
        self.progress = progress
        self.graph = Graph()
        self.values = {}      # ONNX value name -> IR tensor name
        self.consts = {}      # ONNX value name -> numpy array
        self.shapes = {}
        for vi in list(self.graph_proto.value_info) + list(self.graph_proto.input) + list(self.graph_proto.output):
            dims = vi.type.tensor_type.shape.dim
            self.shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)
        self.consumers = {}
        for node in self.graph_proto.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.skip = set()     # nodes folded into an earlier pattern

    def shape(self, name, node=None):
        shape = self.shapes.get(name)
        if shape is None:
            raise ConversionError(f"no inferred shape for '{name}'" + (f" ({node.op_type} '{node.name}')" if node else ""))
        if any(not isinstance(d, int) or d <= 0 for d in shape):
            raise ConversionError(f"'{name}' has shape {list(shape)}: dynamic ONNX dimensions are not supported; "
                                  "export with fixed shapes (from_torch supports dynamic_axes)")
        return shape

    def tensor(self, name):
        """The IR tensor of an ONNX value, adding constants on first use."""
        if name in self.values:
            return self.values[name]
        if name in self.consts:
            data = self.consts[name]
            data = data.astype(np.float32) if data.dtype == np.float64 else data
            self.values[name] = self.graph.add_const(name, data)
            return self.values[name]
        raise ConversionError(f"value '{name}' is used before it is computed")

    def attrs(self, node):
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def add(self, op_type, inputs, node, options=None, out=None, dtype="float32"):
        out = out or node.output[0]
        name = self.graph.add_op(op_type, inputs, self.shape(out, node), options=options, name=node.name or out,
                                 dtype=dtype)
        self.values[out] = name
        return name

    # --- the walk ----------------------------------------------------------------------------
    def convert(self):
        from onnx import numpy_helper

        for init in self.graph_proto.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
        for inp in self.graph_proto.input:
            if inp.name in self.consts:
                continue
            dtype = _DTYPES.get(inp.type.tensor_type.elem_type)
            if dtype is None:
                raise ConversionError(f"input '{inp.name}' has ONNX type {inp.type.tensor_type.elem_type}: inputs "
                                      "must be float32, int32 or int64")
            self.values[inp.name] = self.graph.add_input(inp.name, self.shape(inp.name), dtype)
        nodes = list(self.graph_proto.node)
        for node in nodes:   # first, so patterns can read constants defined after their first node
            if node.op_type == "Constant":
                self.fold(node)
                self.skip.add(id(node))
        for k, node in enumerate(nodes):
            if self.progress is not None:
                self.progress(k, len(nodes))
            if id(node) in self.skip:
                continue
            if node.domain not in ("", "ai.onnx"):
                raise ConversionError(f"node {k} '{node.name}' is {node.domain}.{node.op_type}: only the default "
                                      "ONNX domain is supported")
            if self.fold(node):
                continue
            handler = getattr(self, "op_" + node.op_type, None)
            if handler is None:
                supported = sorted(n[3:] for n in dir(self) if n.startswith("op_"))
                raise ConversionError(f"unsupported ONNX op {node.op_type} (node {k} '{node.name}'); supported: "
                                      f"{supported}")
            handler(node)
        if self.progress is not None:
            self.progress(len(nodes), len(nodes))
        for out in self.graph_proto.output:
            self.graph.outputs.append(self.tensor(out.name))
        return self.graph, [out.name for out in self.graph_proto.output]

    def fold(self, node):
        """Evaluates a node whose inputs are all constants (or a Shape of a static tensor)."""
        if node.op_type == "Constant":
            from onnx import numpy_helper

            attr = node.attribute[0]
            value = (numpy_helper.to_array(attr.t) if attr.name == "value"
                     else np.array(self.onnx.helper.get_attribute_value(attr)))
            self.consts[node.output[0]] = value
            return True
        if node.op_type == "Shape" and node.input[0] not in self.consts:
            shape = np.array(self.shape(node.input[0], node), dtype=np.int64)
            a = self.attrs(node)
            self.consts[node.output[0]] = shape[a.get("start", 0):a.get("end", len(shape))]
            return True
        inputs = [n for n in node.input if n]
        if not inputs or not all(n in self.consts for n in inputs):
            return False
        from onnx.reference import ReferenceEvaluator

        feeds = {n: self.consts[n] for n in inputs}
        if node.op_type in _NUMPY_FOLDS:
            results = _NUMPY_FOLDS[node.op_type](self.attrs(node), *[self.consts[n] for n in node.input])
        else:
            results = ReferenceEvaluator(node).run(None, feeds)
        for name, value in zip(node.output, results):
            self.consts[name] = np.asarray(value)
        return True

    def const(self, name, node, what):
        if name not in self.consts:
            raise ConversionError(f"{node.op_type} '{node.name}': {what} must be a constant")
        return self.consts[name]

    # --- ops ---------------------------------------------------------------------------------
    def op_Conv(self, node):
        a = self.attrs(node)
        w = self.const(node.input[1], node, "the weight").astype(np.float32)
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ConversionError(f"Conv '{node.name}': auto_pad is not supported (export with explicit pads)")
        pads = a.get("pads", [0, 0, 0, 0])
        inputs = [self.tensor(node.input[0]), self.graph.add_const(node.input[1], w)]
        if len(node.input) > 2 and node.input[2]:
            inputs.append(self.tensor(node.input[2]))
        self.add("CONV2D", inputs, node, dict(stride=tuple(a.get("strides", (1, 1))),
                                              dilation=tuple(a.get("dilations", (1, 1))),
                                              padding=(pads[0], pads[1], pads[2], pads[3]), groups=a.get("group", 1)))

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
        inputs = [self.tensor(x), self.graph.add_const(node.input[1], np.ascontiguousarray(w, np.float32))]
        if bias is not None:
            inputs.append(self.graph.add_const(out + ".bias", bias.astype(np.float32)))
        self.add("FULLY_CONNECTED", inputs, node, out=out)

    def op_Gemm(self, node):
        a = self.attrs(node)
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            raise ConversionError(f"Gemm '{node.name}': only alpha = beta = 1 without transA is supported")
        w = self.const(node.input[1], node, "B")
        w = w if a.get("transB", 0) else w.T
        bias = self.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        self.linear(node, node.input[0], w, None if bias is None else bias.reshape(-1))

    def op_MatMul(self, node):
        if node.input[1] in self.consts and self.consts[node.input[1]].ndim == 2:
            self.linear(node, node.input[0], self.consts[node.input[1]].T)
        else:
            self.add("MATMUL", [self.tensor(node.input[0]), self.tensor(node.input[1])], node)

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

    def op_Erf(self, node):
        raise ConversionError(f"Erf '{node.name}' outside the GELU pattern x * 0.5 * (1 + erf(x / sqrt 2)) is not "
                              "supported")

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
        if kind == "DIV" and b in self.consts:   # a multiplication by the reciprocal is faster
            recip = self.graph.add_const(b + ".reciprocal", (1.0 / self.consts[b]).astype(np.float32))
            self.add("MUL", [self.tensor(a), recip], node)
            return
        self.add(kind, [self.tensor(a), self.tensor(b)], node)

    def op_Clip(self, node):
        lo = float(self.consts[node.input[1]]) if len(node.input) > 1 and node.input[1] else -np.inf
        hi = float(self.consts[node.input[2]]) if len(node.input) > 2 and node.input[2] else np.inf
        kind = "RELU6" if (lo, hi) == (0.0, 6.0) else "RELU" if (lo, hi) == (0.0, np.inf) else "CLAMP"
        self.add("ACTIVATION", [self.tensor(node.input[0])], node, dict(activation=kind, min=lo, max=hi))

    def op_HardSigmoid(self, node):
        a = self.attrs(node)
        if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
            raise ConversionError(f"HardSigmoid '{node.name}': only alpha = 1/6, beta = 0.5 (PyTorch's) is supported")
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
        self.add("TRANSPOSE", [self.tensor(node.input[0])], node,
                 dict(perm=list(perm) if perm is not None else list(range(rank))[::-1]))

    def op_Softmax(self, node):
        self.add("SOFTMAX", [self.tensor(node.input[0])], node, dict(axis=self.attrs(node).get("axis", -1)))

    def op_LayerNormalization(self, node):
        a = self.attrs(node)
        rank = len(self.shape(node.input[0], node))
        if a.get("axis", -1) % rank != rank - 1:
            raise ConversionError(f"LayerNormalization '{node.name}': only the last axis is supported")
        inputs = [self.tensor(n) for n in node.input if n]
        self.add("LAYER_NORM", inputs, node, dict(epsilon=float(a.get("epsilon", 1e-5))))

    def op_Gather(self, node):
        if self.attrs(node).get("axis", 0) != 0:
            raise ConversionError(f"Gather '{node.name}': only axis 0 (embedding lookup) is supported")
        self.add("GATHER", [self.tensor(node.input[0]), self.tensor(node.input[1])], node)

    def op_Cast(self, node):
        dtype = _DTYPES.get(self.attrs(node)["to"])
        if dtype is None:
            raise ConversionError(f"Cast '{node.name}' to ONNX type {self.attrs(node)['to']}: only float32, int32 "
                                  "and int64 are supported")
        x = self.tensor(node.input[0])
        if self.graph.tensors[x].dtype == dtype:
            self.values[node.output[0]] = x
        else:
            self.add("CAST", [x], node, dtype=dtype)

    def op_Concat(self, node):
        self.add("CONCAT", [self.tensor(n) for n in node.input], node, dict(axis=self.attrs(node)["axis"]))

    def op_Pad(self, node):
        a = self.attrs(node)
        if a.get("mode", b"constant") not in (b"constant", "constant"):
            raise ConversionError(f"Pad '{node.name}': only constant padding is supported")
        pads = [int(p) for p in self.const(node.input[1], node, "pads")]
        value = float(self.consts[node.input[2]]) if len(node.input) > 2 and node.input[2] else 0.0
        self.add("PAD", [self.tensor(node.input[0])], node, dict(pads=pads, value=value))

    def pool(self, node):
        a = self.attrs(node)
        if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", (1, 1))):
            raise ConversionError(f"{node.op_type} '{node.name}': ceil_mode and dilations are not supported")
        pads = a.get("pads", [0, 0, 0, 0])
        opts = dict(kernel=tuple(a["kernel_shape"]), stride=tuple(a.get("strides", (1, 1))),
                    padding=(pads[0], pads[1], pads[2], pads[3]))
        if node.op_type == "AveragePool":
            opts["count_include_pad"] = bool(a.get("count_include_pad", 0))
        self.add("MAX_POOL2D" if node.op_type == "MaxPool" else "AVG_POOL2D", [self.tensor(node.input[0])], node, opts)

    op_MaxPool = op_AveragePool = pool

    def identity(self, node):
        self.values[node.output[0]] = self.tensor(node.input[0])

    def unary(self, node):
        self.add("ACTIVATION", [self.tensor(node.input[0])], node, dict(activation=_UNARY[node.op_type]))


for _name in _BINARY:
    setattr(_Converter, "op_" + _name, _Converter.binary)
for _name in _IDENTITY:
    setattr(_Converter, "op_" + _name, _Converter.identity)
for _name in _UNARY:
    setattr(_Converter, "op_" + _name, _Converter.unary)


def from_onnx_graph(model, progress=None):
    """The IR of an onnx.ModelProto and its output names."""
    return _Converter(model, progress).convert()
