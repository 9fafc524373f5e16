"""cffi build script (API mode, out of line): compiles the C runtime into sparselite._native.

The FFI declarations are read from native/include/sparselite.h, between its
SL_CDEF_BEGIN / SL_CDEF_END markers, so the header is their single source; sources
and flags come from native/build.mk, as for the Makefile and the WebAssembly build.
"""
import glob
import json
import os
import re
import shlex
import sysconfig

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


def package_version():
    """The version, stated once: sdk/sparselite/__init__.py's __version__."""
    text = open(os.path.join(os.path.dirname(NATIVE), "sdk", "sparselite", "__init__.py"), encoding="utf-8").read()
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def _build_info(compile_args):
    """C source of sl_ffi_build_info(): the compiler and flags this extension is built with, as JSON
    (`sparselite doctor` shows it). Folders (include paths, where the compiler is) are left out: they name the
    build machine's."""
    program, *args = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    cc = " ".join([os.path.basename(program), *args])
    words = shlex.split(sysconfig.get_config_var("CFLAGS") or "") + shlex.split(os.environ.get("CFLAGS", ""))
    flags = [w for w in words + compile_args if not w.startswith("-I")]
    before, after = json.dumps({"cc": cc, "flags": " ".join(flags), "compiler": "@"}).split('"@"')
    # The compiler's own version (__VERSION__) goes in between; these JSON strings are also C string literals.
    return ("const char* sl_ffi_build_info(void);\n"
            "const char* sl_ffi_build_info(void) { return " + json.dumps(before + '"') + " __VERSION__ "
            + json.dumps('"' + after) + "; }\n")


def _sources(patterns):
    files = sorted(f for p in patterns for f in glob.glob(os.path.join(NATIVE, p)))
    # setuptools wants paths relative to the project root.
    root = os.path.dirname(NATIVE)
    return [os.path.relpath(f, root) for f in files]


settings = build_settings()
compile_args = settings["SL_WARN"] + settings["SL_FP"] + settings["SL_OPT"]
ffibuilder = FFI()
ffibuilder.cdef(_cdef() + "const char* sl_ffi_build_info(void);")
ffibuilder.set_source(
    "sparselite._native",
    # cffi defines the module's init function without a prototype; -Wmissing-prototypes wants one.
    '#include "sparselite.h"\nPyMODINIT_FUNC PyInit__native(void);\n' + _build_info(compile_args),
    sources=_sources(settings["SL_SOURCES"]),
    include_dirs=[os.path.relpath(os.path.join(NATIVE, "include"), os.path.dirname(NATIVE))],
    define_macros=[("SL_VERSION", json.dumps(package_version()))],
    extra_compile_args=compile_args,
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
