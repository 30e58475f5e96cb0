import importlib.util
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# --- Native kernels (sparse_orl.kernels): built at install time, optional. -------------------
# The C++ XLA FFI kernels are compiled by csrc/build.py with the machine's compiler and
# jaxlib's bundled FFI headers into sparse_orl/kernels/_sparse_linear.so (in place for
# editable installs). Without a compiler or jaxlib the install still succeeds with one warning
# line, and sparse_orl.kernels falls back to pure JAX at run time.
_ROOT = os.path.dirname(os.path.abspath(__file__))
_KERNEL_EXT = "sparse_orl.kernels._sparse_linear"


def _kernel_builder():
    spec = importlib.util.spec_from_file_location("_sparse_orl_csrc_build", os.path.join(_ROOT, "csrc", "build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildKernels(build_ext):
    """build_ext that compiles the kernel library with csrc/build.py and never fails the install."""

    def get_ext_filename(self, fullname):
        # Loaded by ctypes, not imported: a plain name. (distutils passes the dotted or the last name.)
        if fullname in (_KERNEL_EXT, _KERNEL_EXT.rpartition(".")[2]):
            return os.path.join(*fullname.split(".")) + ".so"
        return super().get_ext_filename(fullname)

    def build_extension(self, ext):
        if ext.name != _KERNEL_EXT:
            return super().build_extension(ext)
        target = self.get_ext_fullpath(ext.name)
        try:
            builder = _kernel_builder()
            os.makedirs(self.build_temp, exist_ok=True)
            builder.build_library(target, build_temp=self.build_temp, verbose=self.verbose > 1)
        except Exception as err:  # noqa: BLE001 - any failure leaves the pure-JAX fallback
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"WARNING: sparse_orl kernels not built ({reason}); the pure-JAX fallback will be used",
                  file=sys.stderr)


_KERNEL_SOURCES = [os.path.join("csrc", n) for n in
                   ("sparse_linear.cc", "sparse_linear_generic.cc", "sparse_linear_avx2.cc", "sparse_linear_avx512.cc")]
_KERNEL_DEPENDS = [os.path.join("csrc", n) for n in ("sparse_linear_kernels.h", "sparse_linear_impl.inc", "build.py")]
# ------------------------------------------------------------------------------------------------

# The project's metadata and dependencies are in pyproject.toml; this file only builds the kernels.
setup(
    ext_modules=[Extension(_KERNEL_EXT, sources=_KERNEL_SOURCES, depends=_KERNEL_DEPENDS, optional=True)],
    cmdclass={"build_ext": BuildKernels},
)
