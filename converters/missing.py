"""Unsupported ops, collected over a whole conversion so that one error lists every one of them.

A frontend that meets an op it has no mapping for (or a handler that meets a feature it cannot
convert and raises Unsupported) records it in a Missing and marks the op's outputs as missing;
ops that read a missing value are skipped without a report of their own. At the end, Missing.check
raises one ConversionError: per op (and reason) the count and the first place it occurs."""
from sparselite.errors import ConversionError


class Unsupported(ConversionError):
    """An op, or a use of one, that the frontend cannot convert: `op` names it, `reason` says what
    (e.g. "dilations [2, 2]"), empty when the op has no mapping at all."""

    def __init__(self, op, reason=""):
        self.op, self.reason = op, reason
        super().__init__(f"{op}: {reason}" if reason else f"unsupported op {op}")


class UnsupportedOps(ConversionError):
    """The ConversionError listing every unsupported op of a model; `ops` holds
    [(op, reason, count, first place)] in order of first appearance."""

    def __init__(self, message, ops):
        super().__init__(message)
        self.ops = ops


class Missing:
    MISSING = object()   # the value a frontend stores for outputs of an op it could not convert

    def __init__(self, frontend):
        self.frontend = frontend
        self.found = {}   # (op, reason) -> [count, first place]

    def add(self, op, reason, where):
        entry = self.found.setdefault((op, reason), [0, where])
        entry[0] += 1

    def check(self):
        if not self.found:
            return
        ops = [(op, reason, count, where) for (op, reason), (count, where) in self.found.items()]
        total = sum(entry[2] for entry in ops)
        lines = [f"{total} op{'s' if total > 1 else ''} of this {self.frontend} model cannot be converted "
                 f"({len(ops)} kind{'s' if len(ops) > 1 else ''}; `sparselite ops {self.frontend}` lists what converts):"]
        for op, reason, count, where in ops:
            lines.append(f"  {op}{': ' + reason if reason else ''} x{count} (first: {where})")
        raise UnsupportedOps("\n".join(lines), ops)
