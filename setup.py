"""Build glue: cffi compiles native/ into sparselite._native (metadata lives in pyproject.toml)."""
from setuptools import setup

setup(
    package_dir={"sparselite": "sdk/sparselite", "sparselite.converters": "converters"},
    packages=["sparselite", "sparselite.converters", "sparselite.prune"],
    cffi_modules=["native/build_ffi.py:ffibuilder"],
)
