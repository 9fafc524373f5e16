"""Build glue: cffi compiles native/ into sparselite._native (metadata lives in pyproject.toml)."""
import os
from concurrent.futures import ThreadPoolExecutor

from setuptools import setup
from setuptools.command.build_ext import build_ext


class build_ext_on_every_core(build_ext):
    """Compiles the extension's C files in parallel: setuptools compiles one extension's sources one
    after another, and the runtime is ~60 files, the AVX-512 kernels alone a third of the time."""

    def build_extension(self, ext):
        compile_files = self.compiler.compile

        def compile_each(sources, *args, **kwargs):
            with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                done = pool.map(lambda source: compile_files([source], *args, **kwargs), sources)
                return [obj for objects in done for obj in objects]

        self.compiler.compile = compile_each
        try:
            super().build_extension(ext)
        finally:
            del self.compiler.compile   # the class's method again


setup(
    package_dir={"sparselite": "sdk/sparselite", "sparselite.converters": "converters"},
    packages=["sparselite", "sparselite.converters", "sparselite.prune"],
    cffi_modules=["native/build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": build_ext_on_every_core},
    # cffi compiles against the stable ABI: one wheel serves every CPython from 3.9 on.
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
