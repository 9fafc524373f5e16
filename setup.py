"""Build glue: cffi compiles native/ into sparselite._native (metadata lives in pyproject.toml)."""
from setuptools import setup

setup(
    package_dir={"sparselite": "sdk/sparselite", "sparselite.converters": "converters"},
    packages=["sparselite", "sparselite.converters", "sparselite.prune"],
    cffi_modules=["native/build_ffi.py:ffibuilder"],
    # cffi compiles against the stable ABI: one wheel serves every CPython from 3.9 on.
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
