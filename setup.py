"""Builds the C kernels when the package is installed (the rest of the build is pyproject.toml).

The kernels are plain C libraries that biolstm loads with ctypes (biolstm/nn/native/build.py
says which build it loads, and compiles one at first use where none was installed). Each is
built once per instruction-set level on x86-64, so that one wheel runs on any x86-64 CPU at
the best speed it allows, with OpenMP where the compiler has it. A kernel that does not build
is left out with a warning and the install goes on: biolstm then compiles it at first use, or
runs the same computation in PyTorch.
"""

import importlib.util
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_spec = importlib.util.spec_from_file_location("_kernel_build", Path("src/biolstm/nn/native/build.py"))
kernels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kernels)  # standard library only: no torch in the build environment



class BuildKernels(build_ext):
    """ctypes libraries, not Python modules: nothing to export, one temporary folder per build
    (the same source is compiled with different flags), OpenMP dropped where it fails, and a
    kernel that cannot be built skipped."""

    def get_export_symbols(self, ext):
        return []

    def build_extension(self, ext):
        base_temp = self.build_temp
        self.build_temp = str(Path(base_temp) / ext.name)
        try:
            for openmp in (True, False):
                if not openmp:
                    ext.extra_compile_args = [a for a in ext.extra_compile_args if a not in kernels.OPENMP]
                    ext.extra_link_args = [a for a in ext.extra_link_args if a not in kernels.OPENMP]
                try:
                    return super().build_extension(ext)
                except Exception as err:  # CompileError, LinkError, a compiler missing
                    error = err
            self.warn(f"{ext.name} not built ({error}); biolstm compiles it at first use or runs PyTorch instead")
        finally:
            self.build_temp = base_temp


def _extensions():
    exts = []
    for source in sorted(kernels.KERNEL_DIR.glob("*.c")):
        for tag, target in kernels.variants():
            exts.append(
                Extension(
                    f"biolstm.nn.kernels._{source.stem}_{tag}",
                    [f"src/biolstm/nn/kernels/{source.name}"],
                    depends=[f"src/biolstm/nn/kernels/{h.name}" for h in kernels.headers()],
                    extra_compile_args=[*kernels.COMMON_FLAGS, *target, *kernels.OPENMP,
                                        kernels.source_define(source.stem)],
                    extra_link_args=list(kernels.OPENMP),
                )
            )
    return exts


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildKernels})
