# The native build, stated once: read by native/Makefile (include), native/build_ffi.py (the
# cffi extension) and wasm/build.sh. Sources are glob patterns relative to native/.
SL_SOURCES = runtime/*.c ops/*.c kernels/*.c kernels/*/*.c
SL_WARN = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# No code here reads FP exception flags; without this GCC keeps float selects (clamps) as
# branches and leaves elementwise loops scalar (clang already assumes it).
SL_FP = -fno-trapping-math
SL_OPT = -O3
