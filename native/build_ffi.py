"""cffi build script (API mode, out of line): compiles the C runtime into sparselite._native.

The FFI declarations are read from native/include/sparselite.h, between its
SL_CDEF_BEGIN / SL_CDEF_END markers, so the header is their single source; sources
and flags come from native/build.mk, as for the Makefile and the WebAssembly build.
"""
import glob
import os
import re
import shlex

from cffi import FFI

NATIVE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(NATIVE, "include", "sparselite.h")


def build_settings():
    """native/build.mk's `NAME = value` lines as {NAME: [words]}."""
    settings = {}
    for line in open(os.path.join(NATIVE, "build.mk"), encoding="utf-8"):
        match = re.match(r"^(\w+)\s*=\s*(.*)$", line.strip())
        if match:
            settings[match.group(1)] = shlex.split(match.group(2))
    return settings


def _cdef():
    text = open(HEADER, encoding="utf-8").read()
    body = text.split("/* SL_CDEF_BEGIN */", 1)[1].split("/* SL_CDEF_END */", 1)[0]
    body = re.sub(r"#define\s+(\w+)\s+(\d+)", r"#define \1 \2", body)
    return body


def _sources(patterns):
    files = sorted(f for p in patterns for f in glob.glob(os.path.join(NATIVE, p)))
    # setuptools wants paths relative to the project root.
    root = os.path.dirname(NATIVE)
    return [os.path.relpath(f, root) for f in files]


settings = build_settings()
ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "sparselite._native",
    # cffi defines the module's init function without a prototype; -Wmissing-prototypes wants one.
    '#include "sparselite.h"\nPyMODINIT_FUNC PyInit__native(void);',
    sources=_sources(settings["SL_SOURCES"]),
    include_dirs=[os.path.relpath(os.path.join(NATIVE, "include"), os.path.dirname(NATIVE))],
    extra_compile_args=settings["SL_WARN"] + settings["SL_FP"] + settings["SL_OPT"],
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
