"""A .slite writer that checks nothing, for hostile files: any count, index, shape, dtype, option
value, union tag or buffer layout the FlatBuffer can hold. converters/writer.py only writes what a
graph means; this one writes what a file can say.

A tensor listed many times, identical tensors, and operators' names, options and index vectors are
written once and referenced again, as a FlatBuffer may: 40,000 graph inputs cost 8 bytes each."""
import struct

import flatbuffers
import numpy as np

from sparselite import _schema as S

DTYPES = {"float32": S.DType.FLOAT32, "float16": S.DType.FLOAT16, "int32": S.DType.INT32,
          "int64": S.DType.INT64, "uint16": S.DType.UINT16, "uint32": S.DType.UINT32, "bool": S.DType.BOOL}
ALIGN = 64


def _dtype(d):
    return DTYPES[d] if isinstance(d, str) else d


def _ints(b, values, elem="<i4"):
    return b.CreateNumpyVector(np.asarray(values, dtype=np.int64).astype(elem))


def _offsets(b, offsets):
    """A vector of uoffsets to already written objects, laid out in one numpy pass (a million
    PrependUOffsetTRelative calls would take seconds)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets)
    b.StartVector(4, n, 4)
    # Element i ends up 4 * (n - i) bytes past the current offset; a uoffset counts from itself.
    payload = (b.Offset() + 4 * (n - np.arange(n)) - offsets).astype("<u4").tobytes()
    b.head -= len(payload)
    b.Bytes[b.head:b.head + len(payload)] = payload
    return b.EndVector(n)


class Slite:
    """Tensors, operators and graph lists as plain values; build() lays them out. Lists set to None
    are left out of the file (absent fields), and every field takes raw integers too."""

    def __init__(self):
        self.tensors = []        # dicts of tensor(); the same dict object may be listed many times
        self.ops = []
        self.inputs, self.outputs = [], []
        self.dims = []           # (name, max)
        self.metadata = []       # (key, value)
        self.blobs = [b""]       # the data section; buffers[0] is the empty buffer
        self.format_version = 1
        self.producer = "hostile"
        self.align = ALIGN       # of each buffer's offset
        self.buffer_table = None  # [(offset, size)] written as is instead of the layout's

    # --- contents -----------------------------------------------------------------------------
    def blob(self, data):
        self.blobs.append(bytes(data))
        return len(self.blobs) - 1

    def tensor(self, shape, dtype="float32", name=None, buffer=0, storage=None, sparsity=None, dynamic=None):
        self.tensors.append(dict(name=f"t{len(self.tensors)}" if name is None else name, dtype=_dtype(dtype),
                                 shape=None if shape is None else list(shape), buffer=buffer,
                                 storage=None if storage is None else _dtype(storage), sparsity=sparsity,
                                 dynamic=None if dynamic is None else list(dynamic)))
        return len(self.tensors) - 1

    def input(self, shape, dtype="float32", **kw):
        t = self.tensor(shape, dtype, **kw)
        self.inputs.append(t)
        return t

    def const(self, array, dtype=None, **kw):
        """A dense constant holding array's bytes (dtype: the graph's; default the array's)."""
        array = np.ascontiguousarray(array)
        return self.tensor(array.shape, dtype or str(array.dtype), buffer=self.blob(array.tobytes()), **kw)

    def sparse(self, shape, row_ptr, col_idx, values=None, r=1, index_type="uint16", out_perm=None, **kw):
        """A group-sparse float32 weight from its raw arrays (nothing checked)."""
        col_dtype = {"uint16": np.uint16, "uint32": np.uint32}.get(index_type, np.uint32)
        nnz = len(col_idx)
        if values is None:
            values = np.ones(nnz * r, np.float32)
        sp = dict(group_size=r, row_ptr=self.blob(np.asarray(row_ptr, np.uint32).tobytes()),
                  col_idx=self.blob(np.asarray(col_idx, np.int64).astype(col_dtype).tobytes()),
                  index_type=_dtype(index_type),
                  out_perm=0 if out_perm is None else self.blob(np.asarray(out_perm, np.uint32).tobytes()))
        return self.tensor(shape, "float32", buffer=self.blob(np.asarray(values, np.float32).tobytes()),
                           sparsity=sp, **kw)

    def op(self, op_type, inputs, outputs, options=None, name=None, version=None, options_tag=None):
        """options: {field: value} of the op's own table (the schema's), or (table name, fields);
        a list value is an int vector. options_tag overrides the union tag (an int or table name)."""
        op_type = getattr(S.OpType, op_type) if isinstance(op_type, str) else op_type
        self.ops.append(dict(type=op_type, inputs=None if inputs is None else list(inputs),
                             outputs=None if outputs is None else list(outputs), options=options,
                             options_tag=options_tag, name=f"op{len(self.ops)}" if name is None else name,
                             version=version))
        return outputs[0] if outputs else None

    # --- layout -------------------------------------------------------------------------------
    def _options(self, b, op):
        from sparselite._op_options import OP_OPTIONS

        opts, tag = op["options"], op["options_tag"]
        type_name = {v: k for k, v in vars(S.OpType).items() if not k.startswith("_")}.get(op["type"])
        table = OP_OPTIONS.get(type_name)
        if isinstance(opts, tuple):
            table, opts = opts
        offset = None
        if opts is not None and table is not None:
            vectors = {f: _ints(b, v) for f, v in opts.items() if isinstance(v, (list, tuple, np.ndarray))}
            getattr(S, table + "Start")(b)
            for field, value in opts.items():
                getattr(S, f"{table}Add{field}")(b, vectors.get(field, value))
            offset = getattr(S, table + "End")(b)
        if tag is None:
            tag = getattr(S.OpOptions, table) if offset is not None else S.OpOptions.NONE
        elif isinstance(tag, str):
            tag = getattr(S.OpOptions, tag)
        return tag, offset

    def _tensor(self, b, t, cache):
        if repr(t) in cache:
            return cache[repr(t)]
        name = b.CreateString(t["name"]) if t["name"] is not None else None
        shape = _ints(b, t["shape"]) if t["shape"] is not None else None
        dynamic = _ints(b, t["dynamic"], "u1") if t["dynamic"] is not None else None
        sparsity = None
        if t["sparsity"] is not None:
            sp = t["sparsity"]
            S.GroupSparsityStart(b)
            for field, key in (("GroupSize", "group_size"), ("RowPtr", "row_ptr"), ("ColIdx", "col_idx"),
                               ("IndexType", "index_type"), ("OutPerm", "out_perm")):
                if sp.get(key) is not None:
                    getattr(S, "GroupSparsityAdd" + field)(b, sp[key])
            sparsity = S.GroupSparsityEnd(b)
        S.TensorStart(b)
        if name is not None:
            S.TensorAddName(b, name)
        S.TensorAddDtype(b, t["dtype"])
        if shape is not None:
            S.TensorAddShape(b, shape)
        S.TensorAddBuffer(b, t["buffer"])
        S.TensorAddStorage(b, t["dtype"] if t["storage"] is None else t["storage"])
        if sparsity is not None:
            S.TensorAddSparsity(b, sparsity)
        if dynamic is not None:
            S.TensorAddDynamicDims(b, dynamic)
        cache[repr(t)] = S.TensorEnd(b)
        return cache[repr(t)]

    def _operator(self, b, op, cache):
        """An Operator table; its name, options and index vectors are shared with earlier ops'."""
        def shared(kind, key, make):
            if (kind, key) not in cache:
                cache[kind, key] = make()
            return cache[kind, key]

        tag, opts = shared("options", repr((op["type"], op["options"], op["options_tag"])),
                           lambda: self._options(b, op))
        name = shared("string", op["name"], lambda: b.CreateString(op["name"])) if op["name"] is not None else None
        ins = shared("ints", repr(op["inputs"]), lambda: _ints(b, op["inputs"])) if op["inputs"] is not None else None
        outs = (shared("ints", repr(op["outputs"]), lambda: _ints(b, op["outputs"]))
                if op["outputs"] is not None else None)
        S.OperatorStart(b)
        S.OperatorAddType(b, op["type"])
        if op["version"] is not None:
            b.PrependUint16(op["version"])   # written even when it equals the default, 1
            b.Slot(1)
        if name is not None:
            S.OperatorAddName(b, name)
        if ins is not None:
            S.OperatorAddInputs(b, ins)
        if outs is not None:
            S.OperatorAddOutputs(b, outs)
        if tag:
            S.OperatorAddOptionsType(b, tag)
        if opts is not None:
            S.OperatorAddOptions(b, opts)
        return S.OperatorEnd(b)

    def _flatbuffer(self, table):
        b = flatbuffers.Builder(1 << 16)
        by_id, tables = {}, {}
        tensors = []
        for t in self.tensors:   # the same dict listed many times is laid out once
            if id(t) not in by_id:
                by_id[id(t)] = self._tensor(b, t, tables)
            tensors.append(by_id[id(t)])
        cache = {}
        ops = [self._operator(b, op, cache) for op in self.ops]
        kvs = []
        for k, v in self.metadata:
            ko, vo = b.CreateString(k), b.CreateString(v)
            S.KeyValueStart(b)
            S.KeyValueAddKey(b, ko)
            S.KeyValueAddValue(b, vo)
            kvs.append(S.KeyValueEnd(b))
        dims = []
        for name, dim_max in self.dims:
            no = b.CreateString(name)
            S.DynamicDimStart(b)
            S.DynamicDimAddName(b, no)
            S.DynamicDimAddMax(b, dim_max)
            dims.append(S.DynamicDimEnd(b))
        producer = b.CreateString(self.producer)
        tv = _offsets(b, tensors)
        ov = _offsets(b, ops)
        iv = _ints(b, self.inputs) if self.inputs is not None else None
        outv = _ints(b, self.outputs) if self.outputs is not None else None
        mv = _offsets(b, kvs) if kvs else None
        dv = _offsets(b, dims) if dims else None
        S.ModelStartBuffersVector(b, len(table))
        for off, size in reversed(table):
            S.CreateBuffer(b, off, size)
        bv = b.EndVector()
        S.ModelStart(b)
        if self.format_version is not None:
            S.ModelAddFormatVersion(b, self.format_version)
        S.ModelAddProducer(b, producer)
        S.ModelAddTensors(b, tv)
        S.ModelAddOperators(b, ov)
        if iv is not None:
            S.ModelAddInputs(b, iv)
        if outv is not None:
            S.ModelAddOutputs(b, outv)
        S.ModelAddBuffers(b, bv)
        if mv is not None:
            S.ModelAddMetadata(b, mv)
        if dv is not None:
            S.ModelAddDims(b, dv)
        b.Finish(S.ModelEnd(b), file_identifier=b"SLIT")
        return bytes(b.Output())

    def build(self):
        """The file: the FlatBuffer, then each blob at the next multiple of `align`."""
        count = len(self.buffer_table) if self.buffer_table is not None else len(self.blobs)
        fb = bytearray(self._flatbuffer([(0, 0)] * count))
        layout, pos = [(0, 0)], len(fb)
        for blob in self.blobs[1:]:
            pos = -(-pos // self.align) * self.align
            layout.append((pos, len(blob)))
            pos += len(blob)
        # The buffer table is fixed-size structs: fill it in where the placeholder went.
        model = S.Model.GetRootAs(fb, 0)
        start = model._tab.Vector(model._tab.Offset(18))   # Model.buffers, field 7
        for i, row in enumerate(self.buffer_table if self.buffer_table is not None else layout):
            struct.pack_into("<QQ", fb, start + 16 * i, *row)
        out = bytearray(max(pos, len(fb)))
        out[:len(fb)] = fb
        for (off, size), blob in zip(layout[1:], self.blobs[1:]):
            out[off:off + size] = blob
        return bytes(out)
