"""The kernels of the default matching path (:mod:`._nn`), compiled ahead of time where possible.

Why: loading numba-compiled kernels costs a fresh process about 0.9 s before any work (importing numba, then
initialising its compiler and type registries even to load kernels from its on-disk cache), while
``match()`` itself takes about 0.25 s at 2,000 treated vs 1,000,000 controls. ``numba.pycc`` compiles the same
Python source (:mod:`._nn`, unchanged) into an ordinary extension module that imports in under a millisecond and
without numba. ``python -m evaluation.matching --warm`` builds it (``make`` runs that whenever the module is
missing); its results are the JIT kernels' bit for bit (``tests/test_matching_kernels.py``). The path it serves:
nearest-neighbour matching on a propensity score or a given distance (with ratio, replacement, caliper in SD or
distance units, exact, discard, any order and estimand), the propensity model of every method. Covariate
distances (``mahalanobis`` and the others, ``mahvars``), ``antiexact`` and calipers on covariates use other
numba kernels (:mod:`._nn_general`), which load numba.

- The module's name is ``_nn_aot_<source hash>_<target hash>``: a hash of ``_nn.py``, the export signatures and
  the build recipe,
  and a hash of the versions of numba, llvmlite and numpy, numba's CPU settings (``NUMBA_CPU_NAME``,
  ``NUMBA_CPU_FEATURES``, ``NUMBA_OPT``) and the CPU's model and instruction-set flags. A build for other source,
  versions or another kind of CPU is therefore never loaded; then, and when the build is missing (no C
  compiler, say), the JIT kernels are used.
- The compiled functions release the GIL while they run, as the JIT kernels do (``nogil``), so the propensity
  model's passes over the chunks of a large pool run in parallel threads either way (see :func:`build_aot`).
- Every call is checked against the one signature the module was compiled for (:func:`_fits`): the compiled
  module does not check argument types itself (an array of another dtype is read as the wrong type, a crash),
  so any other argument goes to the JIT kernel, which compiles for it.
- ``EVALUATION_MATCHING_KERNELS=jit`` (or ``aot``) forces one kind; the default is ``auto``.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import sys
from pathlib import Path
from types import SimpleNamespace

__all__ = ["kernels", "aot_module_name", "build_aot", "aot_available"]


# Each kernel's arguments as the callers in distance.py and nearest.py pass them: arrays as (dtype, ndim, layout:
# "C" contiguous or "A" any, written: whether the kernel writes into it), scalars as bool / int / float; and its
# return type. They make the one signature each function is compiled for, and :func:`_with_fallback` checks every
# call against them: the compiled module converts nothing and checks no dtype (a float32 array given for float64
# is read as the wrong type: a crash), so the check must never be bypassed.
_ARGS = {
    "irls_pass": ((("f8", 2, "C", False), ("i1", 1, "C", False), ("f8", 1, "C", False), bool, int, int),
                  "Tuple((f8[:,:], f8[:], f8))"),
    "scores": ((("f8", 2, "C", False), ("f8", 1, "C", False), ("f8", 1, "C", True), ("f8", 1, "C", True), int, int),
               "void"),
    "group_minmax": ((("f8", 2, "A", False), ("i1", 1, "C", False)), "Tuple((f8[:,:], f8[:,:]))"),
    "sort_split": ((("f8", 1, "C", False), ("i1", 1, "C", False), ("b1", 1, "C", False)),
                   "Tuple((i8[:], i8[:], i8[:], f8[:]))"),
    "nn_match": ((("i8", 1, "A", False), ("f8", 1, "A", False), ("i8", 1, "A", False), ("i8", 1, "A", False), int,
                  bool, float, ("i8", 1, "A", False), ("i8", 1, "A", False), ("f8", 1, "A", False)), "i8[:,:]"),
}
_NUMBA_SCALAR = {bool: "b1", int: "i8", float: "f8"}


def _signature(name: str) -> str:
    args, ret = _ARGS[name]
    parts = [_NUMBA_SCALAR[a] if isinstance(a, type) else
             f"{a[0]}[{', '.join([':'] * (a[1] - 1) + ['::1' if a[2] == 'C' else ':'])}]" for a in args]
    return f"{ret}({', '.join(parts)})"


_EXPORTS = {name: _signature(name) for name in _ARGS}
_DTYPES = {"f8": "float64", "i8": "int64", "i1": "int8", "b1": "bool"}


def _fits(spec, value) -> bool:
    """Whether ``value`` is what the compiled signature takes for ``spec`` (a read-only array is fine where the
    kernel only reads it: pandas' copy-on-write hands those out)."""
    import numpy as np

    if spec is bool:
        return isinstance(value, (bool, np.bool_))
    if spec is int:
        return (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
                and -(2 ** 63) <= int(value) < 2 ** 63)
    if spec is float:
        return isinstance(value, (float, np.floating))
    code, ndim, layout, written = spec
    return (type(value) is np.ndarray and value.dtype == _DTYPES[code] and value.ndim == ndim
            and (value.flags.writeable or not written) and (layout == "A" or value.flags.c_contiguous))


_SOURCE = Path(__file__).with_name("_nn.py")
_cache: dict[str, SimpleNamespace] = {}


_CPU_KEYS = ("model name", "flags", "Features", "CPU implementer", "CPU architecture", "CPU variant", "CPU part")


def _cpu() -> str:
    """The CPU the build targets: its model and instruction-set flags from /proc/cpuinfo (x86 and Arm names),
    elsewhere LLVM's name and features of the host CPU."""
    import platform

    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
    except OSError:
        first = []
    lines = [ln for ln in first if ln.startswith(_CPU_KEYS)]
    if not lines:  # no /proc/cpuinfo (macOS, Windows): ask LLVM (loads llvmlite, ~0.1 s, only here)
        try:
            import llvmlite.binding as llvm

            lines = [llvm.get_host_cpu_name(), str(llvm.get_host_cpu_features().flatten())]
        except Exception:  # noqa: BLE001 - then the build is named for the machine type only
            lines = ["unknown"]
    return "|".join([platform.machine()] + lines)


def _version(package: str) -> str:
    # importlib.metadata, not ``import numba``: that import is what the ahead-of-time module avoids
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - numba, llvmlite and numpy are dependencies
        return "none"


#: how the module is built (bumped when :func:`build_aot` changes what it makes from the same source)
_BUILD = "pycc, host CPU, GIL released"


def _source_hash() -> str:
    h = hashlib.sha256(_SOURCE.read_bytes())
    h.update(_BUILD.encode())
    h.update(repr(sorted(_EXPORTS.items())).encode())
    return h.hexdigest()[:12]


def _target_hash() -> str:
    h = hashlib.sha256()
    for part in (_version("numba"), _version("llvmlite"), _version("numpy"), _cpu(),
                 *(os.environ.get(v, "") for v in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_OPT"))):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:8]


def aot_module_name() -> str:
    """``_nn_aot_<source hash>_<target hash>`` (see the module docstring)."""
    return f"_nn_aot_{_source_hash()}_{_target_hash()}"


def _load_aot():
    try:
        return importlib.import_module(f"{__package__}.{aot_module_name()}")
    except ImportError:
        return None


def aot_available() -> bool:
    """Whether the ahead-of-time module for the current ``_nn.py`` is built."""
    return _load_aot() is not None


def kernels() -> SimpleNamespace:
    """The kernels: a namespace with ``irls_pass``, ``scores``, ``group_minmax``, ``sort_split``, ``nn_match`` and
    ``kind`` ("aot" or "jit"). Both kinds release the GIL, so calls may run in parallel threads."""
    mode = os.environ.get("EVALUATION_MATCHING_KERNELS", "auto").strip().lower()
    if mode not in ("auto", "aot", "jit"):
        from ._inputs import MatchingError

        raise MatchingError(f"EVALUATION_MATCHING_KERNELS must be 'auto', 'aot' or 'jit', not {mode!r}")
    kind = "jit" if mode == "jit" else "aot"
    if kind == "aot" and "aot" not in _cache:
        if "aot_missing" not in _cache:
            mod = _load_aot()
            if mod is not None:
                _cache["aot"] = SimpleNamespace(kind="aot",
                                                **{k: _with_fallback(k, getattr(mod, k)) for k in _EXPORTS})
            else:
                _cache["aot_missing"] = SimpleNamespace()
        if "aot" not in _cache and mode == "aot":
            from ._inputs import MatchingError

            raise MatchingError("EVALUATION_MATCHING_KERNELS=aot but the ahead-of-time kernels are not built for "
                                "this source; run: python -m evaluation.matching --warm")
    if kind == "aot" and "aot" in _cache:
        return _cache["aot"]
    if "jit" not in _cache:
        from . import _nn

        _cache["jit"] = SimpleNamespace(kind="jit", **{k: getattr(_nn, k) for k in _EXPORTS})
    return _cache["jit"]


def _with_fallback(name: str, fn):
    """``fn`` (ahead of time) for arguments of its one signature; any others (another dtype, a read-only or
    non-contiguous array) go to the JIT kernel, which compiles for them: the same result, with numba's start-up."""
    specs = _ARGS[name][0]

    def call(*args):
        if len(args) == len(specs) and all(_fits(s, a) for s, a in zip(specs, args)):
            return fn(*args)
        FALLBACKS[name] = FALLBACKS.get(name, 0) + 1
        from . import _nn

        return getattr(_nn, name)(*args)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = fn.__doc__
    return call


#: calls that went to the JIT kernel because the ahead-of-time one did not take their argument types
FALLBACKS: dict[str, int] = {}


def c_compiler() -> str | None:
    """The C compiler numba.pycc would call (Python's configured ``CC``, else ``cc`` or ``gcc``), or None."""
    import shutil
    import sysconfig

    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc") or shutil.which("gcc")


def _cannot_build() -> str | None:
    """Why the ahead-of-time module cannot be built here (None when it can)."""
    if c_compiler() is None:
        return "no C compiler found"
    try:
        import setuptools  # noqa: F401 - numba.pycc needs it at build time
    except ImportError:
        return "setuptools is not installed (numba.pycc needs it)"
    return None


def build_aot(*, verbose: bool = False) -> Path | None:
    """Compile :mod:`._nn`'s kernels ahead of time into ``<package>/_nn_aot_<hash>.<ext>`` (a C compiler is
    needed). The module is built in a temporary folder and moved into place in one step, so a process matching
    meanwhile never loads half a file; older builds are removed. Returns the path, or None (with a message on
    stderr) when it cannot be built, in which case matching uses the JIT kernels."""
    import shutil
    import sysconfig
    import tempfile
    import warnings

    out = Path(__file__).parent
    name = aot_module_name()
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = out / f"{name}{suffix}"
    if target.exists():
        return target
    why = _cannot_build()
    if why:
        print(f"evaluation.matching: ahead-of-time kernels not built ({why}); the JIT kernels are used (about "
              "0.9 s more on a fresh process's first match)", file=sys.stderr)
        return None
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".aot-build-", dir=out))
        # numba.pycc's compiler probe (platform._gentmpfile) passes a file object to os.remove and so never removes
        # its temporary folder (temp.c, temp.o): while it runs, temporary files go into this build's folder, which
        # is removed below
        saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
        tempfile.tempdir = str(tmp)
        os.environ["TMPDIR"] = str(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba.pycc's pending-deprecation and distutils warnings
            from numba.pycc import CC

            from . import _nn

            import numba.pycc.compiler as pycc_compiler

            cc = CC(name)
            cc.output_dir = str(tmp)
            cc.target_cpu = "host"  # as the JIT compiles: same vector width, so the same sums bit for bit
            cc.verbose = verbose
            for fname, sig in _EXPORTS.items():
                cc.export(fname, sig)(getattr(_nn, fname).py_func)
            # numba.pycc has no ``nogil`` option: its compiler makes a fresh ``Flags()`` for the exported functions.
            # ``release_gil`` is the flag ``@njit(nogil=True)`` sets; with it the generated CPython wrapper releases
            # the GIL around the native call (PyEval_SaveThread), so the chunks of a large pool run in parallel
            # threads as with the JIT kernels. The kernels touch no Python object, so that is safe.
            plain = pycc_compiler.Flags

            class _NoGil(plain):
                def __init__(self, *args, **kwargs):
                    super().__init__(*args, **kwargs)
                    self.release_gil = True

            pycc_compiler.Flags = _NoGil
            try:
                cc.compile()
            finally:
                pycc_compiler.Flags = plain
        os.replace(tmp / target.name, target)
    except Exception as exc:  # noqa: BLE001 - any build failure leaves the JIT kernels in use
        print(f"evaluation.matching: ahead-of-time kernels not built ({type(exc).__name__}: {exc}); the JIT "
              "kernels are used (about 0.9 s more on a fresh process's first match)", file=sys.stderr)
        return None
    finally:
        if tmp is not None:
            tempfile.tempdir = saved_tempdir
            if saved_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved_env
            shutil.rmtree(tmp, ignore_errors=True)
    # builds of older source go; builds of this source for other CPUs or versions stay (a shared file system)
    for old in out.glob(f"_nn_aot_*{suffix}"):
        if not old.name.startswith(f"_nn_aot_{_source_hash()}_"):
            old.unlink(missing_ok=True)
    _cache.pop("aot", None)
    _cache.pop("aot_missing", None)
    importlib.invalidate_caches()
    return target
