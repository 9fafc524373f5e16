"""einsum as the ops it moves data and multiplies with: TRANSPOSE, RESHAPE, REDUCE SUM and one MATMUL.

Both frontends (torch aten.einsum, ONNX Einsum) lower through `lower`. Each index of a two-operand
equation is a batch index (in both operands and the output), contracted (both operands, not the
output), or free (one operand and the output); an index in one operand only and not the output is
summed first. A is laid out [batch, a-free, contracted], B [batch, contracted, b-free]; one MATMUL
of [batch, M, K] by [batch, K, N] computes the product, and a RESHAPE and TRANSPOSE give the
output's order. One operand: a TRANSPOSE and a REDUCE SUM. Diagonals (an index twice in one
operand) and batch sizes that broadcast are refused.
"""
import numpy as np

from .missing import Unsupported


def check(op, equation, operands):
    """What can be checked of `equation` without its operands' shapes: (its terms, its output or
    None, the letters it uses). The ONNX frontend checks before shape inference, which can spin on a
    malformed equation."""
    eq = equation.replace(" ", "")
    if eq.count("->") > 1 or any(term.count("...") > 1 for term in eq.replace("->", ",").split(",")):
        raise Unsupported(op, f"equation '{equation}' is malformed")
    lhs, out = eq.split("->") if "->" in eq else (eq, None)
    terms = lhs.split(",")
    if len(terms) != operands:
        raise Unsupported(op, f"equation '{equation}' has {len(terms)} operands, given {operands}")
    used = set(eq) - set(".,->")
    if any(not c.isalpha() for c in used):
        raise Unsupported(op, f"equation '{equation}' (indices are letters)")
    return terms, out, used


def _parse(op, equation, ranks):
    """([letters of each operand], output letters), '...' spelled out with unused letters."""
    terms, out, used = check(op, equation, len(ranks))
    spare = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used)
    ellipsis = None
    parsed = []
    for term, rank in zip(terms, ranks):
        if "..." in term:
            head, tail = term.split("...")
            n = rank - len(head) - len(tail)
            if n < 0:
                raise Unsupported(op, f"equation '{equation}' for an operand of rank {rank}")
            if ellipsis is None:
                ellipsis = [next(spare) for _ in range(n)]
            elif len(ellipsis) < n:
                ellipsis = [next(spare) for _ in range(n - len(ellipsis))] + ellipsis
            term = head + "".join(ellipsis[len(ellipsis) - n:]) + tail
        if len(term) != rank:
            raise Unsupported(op, f"equation '{equation}': '{term}' for an operand of rank {rank}")
        if len(set(term)) != len(term):
            raise Unsupported(op, f"equation '{equation}' (an index repeated in one operand: a diagonal)")
        parsed.append(term)
    if out is None:   # implicit output: the ellipsis, then the indices seen once, in order
        once = sorted(c for c in set("".join(parsed)) if "".join(parsed).count(c) == 1 and c not in (ellipsis or []))
        out = "".join(ellipsis or []) + "".join(once)
    else:
        out = out.replace("...", "".join(ellipsis or []))
    if len(set(out)) != len(out) or not set(out) <= set("".join(parsed)):
        raise Unsupported(op, f"equation '{equation}' (output indices must appear once and in an operand)")
    return parsed, out


def lower(graph, op, equation, inputs, shapes, name, dtype="float32"):
    """The IR tensor computing einsum(equation) of IR tensors `inputs` of `shapes` (fixed)."""
    if len(inputs) not in (1, 2):
        raise Unsupported(op, f"of {len(inputs)} operands (one or two convert)")
    terms, out = _parse(op, equation, [len(s) for s in shapes])
    size = {}
    for term, shape in zip(terms, shapes):
        for c, d in zip(term, shape):
            if size.setdefault(c, d) != d:
                raise Unsupported(op, f"equation '{equation}': index '{c}' has sizes {size[c]} and {d} (broadcasting "
                                  "between operands does not convert)")

    def transpose(x, term, order):
        if term == order:
            return x
        return graph.add_op("TRANSPOSE", [x], tuple(size[c] for c in order), name=name + ":t", dtype=dtype,
                            options=dict(perm=[term.index(c) for c in order]))

    def reshape(x, shape):
        if graph.tensors[x].shape == tuple(shape):
            return x
        return graph.add_op("RESHAPE", [x], tuple(shape), name=name + ":r", dtype=dtype)

    def drop(x, term, keep):
        """x with the indices of term not in keep summed out."""
        gone = [i for i, c in enumerate(term) if c not in keep]
        if not gone:
            return x, term
        left = "".join(c for c in term if c in keep)
        return graph.add_op("REDUCE", [x], tuple(size[c] for c in left), name=name + ":sum", dtype=dtype,
                            options=dict(kind="SUM", axes=gone, keep_dims=False)), left

    if len(inputs) == 1:
        x, term = drop(inputs[0], terms[0], out)
        return transpose(x, term, out)
    (a, ta), (b, tb) = (drop(x, t, set(out) | set(other))
                        for x, t, other in ((inputs[0], terms[0], terms[1]), (inputs[1], terms[1], terms[0])))
    batch = [c for c in out if c in ta and c in tb]
    contracted = [c for c in ta if c in tb and c not in out]
    free_a = [c for c in ta if c not in tb]
    free_b = [c for c in tb if c not in ta]

    def count(letters):
        return int(np.prod([size[c] for c in letters], dtype=np.int64))

    nb, m, k, n = count(batch), count(free_a), count(contracted), count(free_b)
    a = reshape(transpose(a, ta, "".join(batch + free_a + contracted)), (nb, m, k))
    b = reshape(transpose(b, tb, "".join(batch + contracted + free_b)), (nb, k, n))
    y = graph.add_op("MATMUL", [a, b], (nb, m, n), name=name, dtype=dtype)
    order = "".join(batch + free_a + free_b)
    return transpose(reshape(y, tuple(size[c] for c in order)), order, out)
