"""Writes the C side of native/schema/sparselite.fbs, and the op -> options table for Python.

    python native/schema/gen_c.py [--out-dir DIR]

Outputs (committed; tests/test_cli_schema.py checks they match the schema):
  native/schema/sparselite_schema.h  every enum (values, COUNT, an X-macro list, names), each
      table's field ids, each struct's size and offsets, and for the tables of a union typed
      accessors by field name with the schema's defaults, over runtime/fb_reader.h.
  sdk/sparselite/_op_options.py      OP_OPTIONS: OpType name -> the options table it reads.

Which options table an op reads is the schema's `options` attribute on OpType values. The parser
knows the subset of the FlatBuffers grammar the schema uses and fails on anything else, so a new
construct gets handled here rather than dropped. Standard library only.
"""
import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCHEMA = os.path.join(HERE, "sparselite.fbs")
SOURCE = "native/schema/sparselite.fbs"  # as the outputs name it
HEADER = "sparselite_schema.h"
PYTHON = "_op_options.py"
OUTPUTS = {HEADER: HERE, PYTHON: os.path.join(ROOT, "sdk", "sparselite")}

# C type and value prefix per enum; others get sl_<snake>_t and SL_<SNAKE>_.
# sparselite.h owns sl_dtype_t and SL_DTYPE_* (the cffi source), hence SL_SCHEMA_DTYPE_*.
ENUM_C_NAMES = {
    "DType": ("sl_schema_dtype_t", "SL_SCHEMA_DTYPE_"),
    "OpType": ("sl_op_type_t", "SL_OP_"),
    "Activation": ("sl_act_type_t", "SL_ACT_"),
    "OpOptions": ("sl_options_type_t", "SL_OPTIONS_"),
}
OPS_ENUM, OPTIONS_ATTRIBUTE = "OpType", "options"

# FlatBuffers scalar -> (size, C type, fb_reader function or None when it has none).
SCALARS = {
    "bool": (1, "bool", "sl_fb_u8"), "byte": (1, "int8_t", None), "ubyte": (1, "uint8_t", "sl_fb_u8"),
    "short": (2, "int16_t", None), "ushort": (2, "uint16_t", "sl_fb_u16"),
    "int": (4, "int32_t", "sl_fb_i32"), "uint": (4, "uint32_t", "sl_fb_u32"),
    "long": (8, "int64_t", None), "ulong": (8, "uint64_t", None),
    "float": (4, "float", "sl_fb_f32"), "double": (8, "double", None),
}
for _alias, _base in (("int8", "byte"), ("uint8", "ubyte"), ("int16", "short"), ("uint16", "ushort"),
                      ("int32", "int"), ("uint32", "uint"), ("int64", "long"), ("uint64", "ulong"),
                      ("float32", "float"), ("float64", "double")):
    SCALARS[_alias] = SCALARS[_base]
INTEGERS = {n for n, (_, c, _) in SCALARS.items() if "int" in c}


class SchemaError(Exception):
    pass


def snake(name):
    """Conv2DOptions -> conv2d_options, L2NormalizeOptions -> l2_normalize_options."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z0-9])(?=[A-Z][a-z])", "_", name).lower()


# --- parsing ---------------------------------------------------------------------------------

TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|(?P<tok>"[^"\n]*"|[-+]?[0-9][0-9A-Za-z_.+-]*|[-+]?\.[0-9]+'
                   r'|[A-Za-z_][A-Za-z0-9_.]*|[{}()\[\]:;,=])', re.S)


def tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None:
            line = text.count("\n", 0, pos) + 1
            raise SchemaError(f"line {line}: unexpected character {text[pos]!r}")
        if m.group("tok") is not None:
            tokens.append((m.group("tok"), text.count("\n", 0, pos) + 1))
        pos = m.end()
    return tokens


class Parser:
    def __init__(self, text):
        self.tokens, self.i = tokenize(text), 0

    def peek(self):
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def fail(self, msg):
        line = self.tokens[min(self.i, len(self.tokens) - 1)][1] if self.tokens else 0
        raise SchemaError(f"line {line}: {msg}")

    def next(self):
        if self.i >= len(self.tokens):
            self.fail("unexpected end of schema")
        self.i += 1
        return self.tokens[self.i - 1][0]

    def expect(self, tok):
        got = self.next()
        if got != tok:
            self.fail(f"expected {tok!r}, got {got!r}")

    def ident(self):
        tok = self.next()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok):
            self.fail(f"expected a name, got {tok!r}")
        return tok

    def string(self):
        tok = self.next()
        if not tok.startswith('"'):
            self.fail(f"expected a string, got {tok!r}")
        return tok[1:-1]

    def attributes(self):
        """`(name: "value", ...)` after a declaration, {} when there is none; a bare name maps to None."""
        attrs = {}
        if self.peek() != "(":
            return attrs
        self.next()
        while True:
            name = self.ident()
            value = None
            if self.peek() == ":":
                self.next()
                value = self.next()
                value = value[1:-1] if value.startswith('"') else value
            attrs[name] = value
            sep = self.next()
            if sep == ")":
                return attrs
            if sep != ",":
                self.fail(f"expected ',' or ')' in attributes, got {sep!r}")

    def schema(self):
        s = {"enums": {}, "unions": {}, "structs": {}, "tables": {}, "attributes": set()}
        while self.peek() is not None:
            kw = self.next()
            if kw == "namespace":
                s["namespace"] = self.next()
                self.expect(";")
            elif kw in ("file_identifier", "file_extension", "root_type"):
                s[kw] = self.string() if kw != "root_type" else self.ident()
                self.expect(";")
            elif kw == "attribute":
                s["attributes"].add(self.string())
                self.expect(";")
            elif kw == "enum":
                self.enum(s)
            elif kw == "union":
                self.union(s)
            elif kw in ("table", "struct"):
                self.table(s, kw)
            else:
                self.fail(f"gen_c.py does not understand {kw!r}")
        return s

    def declare(self, s, kind, name, value):
        if any(name in s[k] for k in ("enums", "unions", "structs", "tables")):
            self.fail(f"{name} is declared twice")
        s[kind + "s"][name] = value

    def enum(self, s):
        name = self.ident()
        self.expect(":")
        base = self.ident()
        if base not in INTEGERS:
            self.fail(f"enum {name}: underlying type {base} is not an integer type")
        if self.attributes():
            self.fail(f"enum {name}: attributes on an enum are not supported")
        self.expect("{")
        values, nxt = [], 0
        while self.peek() != "}":
            vname = self.ident()
            if self.peek() == "=":
                self.next()
                tok = self.next()
                if not re.fullmatch(r"[0-9]+", tok):
                    self.fail(f"enum {name}.{vname}: value {tok!r} is not a non-negative decimal integer")
                nxt = int(tok)
            if values and nxt <= values[-1][1]:
                self.fail(f"enum {name}.{vname}: values must ascend")
            values.append((vname, nxt, self.attributes()))
            nxt += 1
            if self.peek() != "}":
                self.expect(",")
        self.next()
        self.declare(s, "enum", name, {"base": base, "values": values})

    def union(self, s):
        name = self.ident()
        if self.attributes():
            self.fail(f"union {name}: attributes are not supported")
        self.expect("{")
        members = []
        while self.peek() != "}":
            members.append(self.ident())
            if self.peek() == ":":
                self.fail(f"union {name}: aliased members are not supported")
            if self.peek() != "}":
                self.expect(",")
        self.next()
        self.declare(s, "union", name, members)

    def table(self, s, kind):
        name = self.ident()
        if self.attributes():
            self.fail(f"{kind} {name}: attributes are not supported")
        self.expect("{")
        fields = []
        while self.peek() != "}":
            fname = self.ident()
            self.expect(":")
            if self.peek() == "[":
                self.next()
                ftype = ("vector", self.ident())
                if self.peek() == ":":
                    self.fail(f"{name}.{fname}: fixed-size arrays are not supported")
                self.expect("]")
            else:
                ftype = ("one", self.ident())
            default = None
            if self.peek() == "=":
                self.next()
                default = self.next()
            if self.attributes():
                self.fail(f"{name}.{fname}: field attributes (id, deprecated, ...) are not supported")
            self.expect(";")
            fields.append({"name": fname, "type": ftype, "default": default})
        self.next()
        self.declare(s, kind, name, fields)


# --- checking --------------------------------------------------------------------------------

def enum_c(name):
    return ENUM_C_NAMES.get(name, (f"sl_{snake(name)}_t", f"SL_{snake(name).upper()}_"))


def struct_layout(s, name):
    """(size, [(field, offset, scalar)]) with FlatBuffers' natural alignment."""
    offset, align, out = 0, 1, []
    for f in s["structs"][name]:
        kind, t = f["type"]
        t = s["enums"][t]["base"] if t in s["enums"] else t
        if kind != "one" or t not in SCALARS or f["default"] is not None:
            raise SchemaError(f"struct {name}.{f['name']}: only scalar fields without defaults are supported")
        size = SCALARS[t][0]
        offset = (offset + size - 1) // size * size
        out.append((f["name"], offset, t))
        offset += size
        align = max(align, size)
    return (offset + align - 1) // align * align, out


def check(s):
    """Fails on what the outputs cannot express; records the union that holds the ops' options."""
    for attr in s["attributes"] - {OPTIONS_ATTRIBUTE}:
        raise SchemaError(f'attribute "{attr}" is declared, but gen_c.py does not know what it means')
    if OPS_ENUM not in s["enums"]:
        raise SchemaError(f"the schema has no enum {OPS_ENUM}")
    for ename, e in s["enums"].items():
        for vname, _, attrs in e["values"]:
            if any(a != OPTIONS_ATTRIBUTE or ename != OPS_ENUM for a in attrs):
                raise SchemaError(f"{ename}.{vname}: gen_c.py only reads ({OPTIONS_ATTRIBUTE}: ...) on {OPS_ENUM}")
            if attrs and OPTIONS_ATTRIBUTE not in s["attributes"]:
                raise SchemaError(f'{ename}.{vname}: attribute "{OPTIONS_ATTRIBUTE}" is not declared')
    for uname, members in s["unions"].items():
        for m in members:
            if m not in s["tables"]:
                raise SchemaError(f"union {uname}: {m} is not a table")
    holders = set()
    for vname, _, attrs in s["enums"][OPS_ENUM]["values"]:
        if OPTIONS_ATTRIBUTE in attrs:
            found = [u for u, members in s["unions"].items() if attrs[OPTIONS_ATTRIBUTE] in members]
            if len(found) != 1:
                raise SchemaError(f"{OPS_ENUM}.{vname}: options table {attrs[OPTIONS_ATTRIBUTE]} must be in one union")
            holders.add(found[0])
    if len(holders) != 1:
        raise SchemaError(f"the ({OPTIONS_ATTRIBUTE}: ...) tables of {OPS_ENUM} must all be in one union")
    s["options_union"] = holders.pop()
    known = set(SCALARS) | {"string"} | set(s["enums"]) | set(s["unions"]) | set(s["structs"]) | set(s["tables"])
    for tname, fields in s["tables"].items():
        for f in fields:
            kind, t = f["type"]
            if t not in known:
                raise SchemaError(f"{tname}.{f['name']}: unknown type {t}")
            if kind == "vector" and t in s["unions"]:
                raise SchemaError(f"{tname}.{f['name']}: vectors of unions are not supported")
            if f["default"] is not None and (kind == "vector" or t not in set(SCALARS) | set(s["enums"])):
                raise SchemaError(f"{tname}.{f['name']}: only scalars and enums take a default")
    for name in s["structs"]:
        struct_layout(s, name)


# --- C ---------------------------------------------------------------------------------------

def c_default(s, table, f):
    """The field's default as a C expression."""
    t, d = f["type"][1], f["default"]
    where = f"{table}.{f['name']}"
    if t in s["enums"]:
        _, prefix = enum_c(t)
        values = {v: n for n, v, _ in s["enums"][t]["values"]}
        names = {n for n, _, _ in s["enums"][t]["values"]}
        if d is None:
            if 0 not in values:
                raise SchemaError(f"{where}: {t} has no value 0, so the field needs a default")
            return prefix + values[0]
        if d in names:
            return prefix + d
        raise SchemaError(f"{where}: default {d} is not a value of {t}")
    if t == "bool":
        if d not in (None, "true", "false", "0", "1"):
            raise SchemaError(f"{where}: bool default {d}")
        return "true" if d in ("true", "1") else "false"
    if SCALARS[t][1] in ("float", "double"):
        if d is None:
            return "0.0f"
        if not re.fullmatch(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", d):
            raise SchemaError(f"{where}: float default {d}")
        return (d if re.search(r"[.eE]", d) else d + ".0") + "f"
    if d is None:
        return "0"
    if not re.fullmatch(r"[-+]?[0-9]+", d) or (d.startswith("-") and SCALARS[t][1].startswith("u")):
        raise SchemaError(f"{where}: integer default {d}")
    return str(int(d))


def field_ids(s, tname):
    """[(field, C id name, id, schema type)]; a union field takes two ids, its tag's first."""
    out, fid = [], 0
    prefix = f"SL_{snake(tname).upper()}_"
    for f in s["tables"][tname]:
        kind, t = f["type"]
        if kind == "one" and t in s["unions"]:
            out.append((None, prefix + f["name"].upper() + "_TYPE", fid, f"{t} tag"))
            fid += 1
        out.append((f, prefix + f["name"].upper(), fid, f"[{t}]" if kind == "vector" else t))
        fid += 1
    return out


def accessor(s, tname, f, id_name):
    """A typed inline reader of one field, by name, with the schema's default."""
    kind, t = f["type"]
    where = f"{tname}.{f['name']}"

    def inline(ctype, expr):
        return (f"static inline {ctype} sl_{snake(tname)}_{f['name']}(sl_fb_t* fb, const sl_fb_table_t* t) {{\n"
                f"  return {expr};\n}}")

    if kind == "vector":
        if t in SCALARS:
            size = str(SCALARS[t][0])
        elif t in s["enums"]:
            size = str(SCALARS[s["enums"][t]["base"]][0])
        elif t in s["structs"]:
            size = f"SL_{snake(t).upper()}_SIZEOF"
        else:  # strings and tables: a 32-bit offset each
            size = "4"
        return inline("sl_fb_vec_t", f"sl_fb_vector(fb, t, {id_name}, {size})")
    if t == "string":
        return inline("const char*", f"sl_fb_string(fb, t, {id_name})")
    if t in s["tables"]:
        return inline("sl_fb_table_t", f"sl_fb_table(fb, t, {id_name})")
    if t in s["structs"] or t in s["unions"]:
        raise SchemaError(f"{where}: gen_c.py writes no accessor for a struct or union field in an options table")
    base = s["enums"][t]["base"] if t in s["enums"] else t
    _, ctype, reader = SCALARS[base]
    if reader is None:
        raise SchemaError(f"{where}: fb_reader.h has no reader for {base}")
    dflt = c_default(s, tname, f)
    if base == "bool":
        return inline("bool", f"sl_fb_u8(fb, t, {id_name}, {int(dflt == 'true')}) != 0")
    # An enum field gives its raw value: a file may hold one this runtime does not know.
    return inline(ctype, f"{reader}(fb, t, {id_name}, {dflt})")


def backslashed(lines):
    width = max(len(l) for l in lines) + 1
    return "\n".join(l.ljust(width) + "\\" for l in lines[:-1]) + "\n" + lines[-1]


def c_enum(name, values, comment):
    """values: [(C name suffix, value, display name)]."""
    ctype, prefix = enum_c(name)
    out = [f"/* {comment} */", "typedef enum {"]
    out += [f"  {prefix}{n} = {v}," for n, v, _ in values]
    out += [f"  {prefix}COUNT", f"}} {ctype};"]
    xlist = f"{ctype[:-2].upper()}_LIST"
    out += [f"/* X({prefix}<NAME> without the prefix, its lower case, value) per value. */",
            backslashed([f"#define {xlist}(X)"] + [f"  X({n}, {n.lower()}, {v})" for n, v, _ in values])]
    fn = f"{ctype[:-2]}_name"
    out += [f"/* The schema's name of a value; NULL when it is not one. */",
            f"static inline const char* {fn}(uint32_t v) {{",
            f"  static const char* const names[{prefix}COUNT] = {{"]
    out += [f'      [{prefix}{n}] = "{d}",' for n, _, d in values]
    out += ["  };", f"  return v < {prefix}COUNT ? names[v] : NULL;", "}"]
    return "\n".join(out)


def header(s):
    guard = "SL_SPARSELITE_SCHEMA_H"
    parts = [f"""/* Generated by native/schema/gen_c.py from {SOURCE}: do not edit.
 * Run `python native/schema/gen_c.py` after changing the schema; a test checks this file. */
#ifndef {guard}
#define {guard}

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/fb_reader.h"
"""]
    if "file_identifier" in s:
        parts.append(f'#define SL_FILE_IDENTIFIER "{s["file_identifier"]}"\n')
    # Enums and union tags first: table accessors use them as defaults.
    for name, e in s["enums"].items():
        values = [(n, v, n) for n, v, _ in e["values"]]
        parts.append(c_enum(name, values, f"enum {name} : {e['base']}") + "\n")
    for name, members in s["unions"].items():
        values = [("NONE", 0, "NONE")] + [(snake(m).upper(), i + 1, m) for i, m in enumerate(members)]
        parts.append(c_enum(name, values, f"union {name}: the tag of each table") + "\n")
    parts.append(options_of(s) + "\n")
    for name in s["structs"]:
        size, fields = struct_layout(s, name)
        p = f"SL_{snake(name).upper()}_"
        lines = [f"/* struct {name}: its size and each field's byte offset */", f"#define {p}SIZEOF {size}"]
        lines += [f"#define {p}OFFSETOF_{f.upper()} {off} /* {t} */" for f, off, t in fields]
        parts.append("\n".join(lines) + "\n")
    for name in s["tables"]:
        parts.append(table(s, name) + "\n")
    parts.append(f"#endif /* {guard} */\n")
    return "\n".join(parts)


def options_of(s):
    """SL_OPTIONS_OF_<OP>: the union tag of the table the op reads, or the union's NONE."""
    prefix = enum_c(s["options_union"])[1]
    lines = [f"/* The {s['options_union']} table each {OPS_ENUM} reads (its ({OPTIONS_ATTRIBUTE}: ...) in the schema); "
             "NONE: it takes none. */"]
    for vname, _, attrs in s["enums"][OPS_ENUM]["values"]:
        table = attrs.get(OPTIONS_ATTRIBUTE)
        lines.append(f"#define SL_OPTIONS_OF_{vname} {prefix}{snake(table).upper() if table else 'NONE'}")
    return "\n".join(lines)


def table(s, tname):
    ids = field_ids(s, tname)
    union = [u for u, members in s["unions"].items() if tname in members]
    comment = f"table {tname}" + (f" (in {union[0]}): field ids, and accessors by name" if union else ": field ids")
    width = max(len(f"{c} = {i},") for _, c, i, _ in ids)
    lines = [f"/* {comment} */", "enum {"]
    lines += [f"  {(c + ' = ' + str(i) + ',').ljust(width)} /* {text} */" for _, c, i, text in ids]
    lines.append("};")
    if union:
        lines += [accessor(s, tname, f, c) for f, c, _, _ in ids if f is not None]
    return "\n".join(lines)


def python_module(s):
    lines = [f'"""Generated by native/schema/gen_c.py from {SOURCE}: do not edit.',
             "",
             f"OP_OPTIONS: the options table each {OPS_ENUM} reads (the schema's `{OPTIONS_ATTRIBUTE}` attribute);",
             "the runtime refuses any other. Ops not listed take no options.",
             '"""',
             "OP_OPTIONS = {"]
    for vname, _, attrs in s["enums"][OPS_ENUM]["values"]:
        if OPTIONS_ATTRIBUTE in attrs:
            lines.append(f'    "{vname}": "{attrs[OPTIONS_ATTRIBUTE]}",')
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate(text):
    """{output file name: contents} for the schema text."""
    s = Parser(text).schema()
    check(s)
    return {HEADER: header(s), PYTHON: python_module(s)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", help="write both files here instead of their committed places")
    args = ap.parse_args(argv)
    try:
        outputs = generate(open(SCHEMA, encoding="utf-8").read())
    except SchemaError as exc:
        sys.exit(f"{SCHEMA}: {exc}")
    for name, text in outputs.items():
        path = os.path.join(args.out_dir or OUTPUTS[name], name)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print(path)


if __name__ == "__main__":
    main()
