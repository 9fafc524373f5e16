# The native build, stated once: read by native/Makefile (include), native/build_ffi.py (the
# cffi extension) and wasm/build.sh. Sources are glob patterns relative to native/.
SL_SOURCES = runtime/*.c ops/*.c kernels/*.c kernels/*/*.c
SL_WARN = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# No code here reads FP exception flags; without this GCC keeps float selects (clamps) as
# branches and leaves elementwise loops scalar (clang already assumes it).
SL_FP = -fno-trapping-math
SL_OPT = -O3
# Compiles go through ccache where it is installed: the tests build the same sources with the same
# flags in several build folders (and the WebAssembly build, wasm/build.sh, reads this too). Set
# SL_LAUNCHER= (empty) to compile without it.
SL_LAUNCHER = $(shell command -v ccache)
