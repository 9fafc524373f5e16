"""cffi build script (API mode, out of line): compiles the C runtime into sparselite._native.

The FFI declarations are read from native/include/sparselite.h, between its
SL_CDEF_BEGIN / SL_CDEF_END markers, so the header is their single source.
"""
import glob
import os
import re

from cffi import FFI

NATIVE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(NATIVE, "include", "sparselite.h")


def _cdef():
    text = open(HEADER, encoding="utf-8").read()
    body = text.split("/* SL_CDEF_BEGIN */", 1)[1].split("/* SL_CDEF_END */", 1)[0]
    body = re.sub(r"#define\s+(\w+)\s+(\d+)", r"#define \1 \2", body)
    return body


def _sources():
    patterns = ["runtime/*.c", "ops/*.c", "kernels/*.c", "kernels/*/*.c"]
    files = sorted(f for p in patterns for f in glob.glob(os.path.join(NATIVE, p)))
    # setuptools wants paths relative to the project root.
    root = os.path.dirname(NATIVE)
    return [os.path.relpath(f, root) for f in files]


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "sparselite._native",
    '#include "sparselite.h"',
    sources=_sources(),
    include_dirs=[os.path.relpath(os.path.join(NATIVE, "include"), os.path.dirname(NATIVE))],
    extra_compile_args=["-std=c11", "-O3", "-fno-trapping-math"],  # see the Makefile's FP
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
