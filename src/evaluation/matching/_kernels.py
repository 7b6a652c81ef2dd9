"""The kernels of the default matching path (:mod:`._nn`), compiled ahead of time where possible.

Why: loading numba-compiled kernels costs a fresh process about 0.9 s before any work (importing numba, then
initialising its compiler and type registries even to load kernels from its on-disk cache), while
``match()`` itself takes about 0.25 s at 2,000 treated vs 1,000,000 controls. ``numba.pycc`` compiles the same
Python source (:mod:`._nn`, unchanged) into an ordinary extension module that imports in under a millisecond and
without numba. ``python -m evaluation.matching --warm`` builds it (``make venv`` runs that); its results are the
JIT kernels' bit for bit (``tests/test_matching_kernels.py``).

- The module's name carries a hash of ``_nn.py``, numba's version and the CPU it was built for, so a build from
  older source (or another machine) is never loaded; then the JIT kernels are used, as they are when the
  build is missing (no C compiler, say).
- The ahead-of-time functions hold the GIL, so on pools of more than :data:`THREADED_ROWS` rows the JIT
  kernels are used instead: their passes over the rows run in parallel threads, which saves more than
  numba's start-up there.
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

#: above this many rows (treated + controls) ``auto`` uses the JIT kernels in threads (see the module docstring)
THREADED_ROWS = 4_000_000

# Each kernel's arguments as the callers in distance.py and nearest.py pass them: arrays as (dtype, ndim, layout:
# "C" contiguous or "A" any), scalars as bool / int / float; and its return type. They make the one signature
# each function is compiled for, and :func:`_with_fallback` checks every call against them (an array of another
# dtype is not converted by the compiled module: it would be read as the wrong type).
_ARGS = {
    "irls_pass": ((("f8", 2, "C"), ("i1", 1, "C"), ("f8", 1, "C"), bool, int, int), "Tuple((f8[:,:], f8[:], f8))"),
    "scores": ((("f8", 2, "C"), ("f8", 1, "C"), ("f8", 1, "C"), ("f8", 1, "C"), int, int), "void"),
    "group_minmax": ((("f8", 2, "A"), ("i1", 1, "C")), "Tuple((f8[:,:], f8[:,:]))"),
    "sort_split": ((("f8", 1, "C"), ("i1", 1, "C"), ("b1", 1, "C")), "Tuple((i8[:], i8[:], i8[:], f8[:]))"),
    "nn_match": ((("i8", 1, "A"), ("f8", 1, "A"), ("i8", 1, "A"), ("i8", 1, "A"), int, bool, float,
                  ("i8", 1, "A"), ("i8", 1, "A"), ("f8", 1, "A")), "i8[:,:]"),
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
    """Whether ``value`` is what the compiled signature takes for ``spec``."""
    import numpy as np

    if spec is bool:
        return isinstance(value, (bool, np.bool_))
    if spec is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if spec is float:
        return isinstance(value, (float, np.floating))
    code, ndim, layout = spec
    return (type(value) is np.ndarray and value.dtype == _DTYPES[code] and value.ndim == ndim
            and value.flags.writeable and (layout == "A" or value.flags.c_contiguous))


_SOURCE = Path(__file__).with_name("_nn.py")
_cache: dict[str, SimpleNamespace] = {}


def _cpu() -> str:
    """The host CPU's model and instruction-set flags (the build targets them), or the machine type."""
    import platform

    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
    except OSError:
        first = []
    return "|".join([platform.machine()] + [ln for ln in first if ln.startswith(("model name", "flags"))])


def _numba_version() -> str:
    # importlib.metadata, not ``import numba``: that import is what the ahead-of-time module avoids
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("numba")
    except PackageNotFoundError:  # pragma: no cover - numba is a dependency
        return "none"


def aot_module_name() -> str:
    """``_nn_aot_<hash>``: the hash of ``_nn.py``, the export signatures, numba's version and the CPU."""
    h = hashlib.sha256(_SOURCE.read_bytes())
    h.update(repr(sorted(_EXPORTS.items())).encode())
    h.update(_numba_version().encode())
    h.update(_cpu().encode())
    return f"_nn_aot_{h.hexdigest()[:12]}"


def _load_aot():
    try:
        return importlib.import_module(f"{__package__}.{aot_module_name()}")
    except ImportError:
        return None


def aot_available() -> bool:
    """Whether the ahead-of-time module for the current ``_nn.py`` is built."""
    return _load_aot() is not None


def kernels(n_rows: int = 0) -> SimpleNamespace:
    """The kernels for a problem of ``n_rows`` rows: a namespace with ``irls_pass``, ``scores``,
    ``group_minmax``, ``sort_split``, ``nn_match`` and ``threads`` (whether calls may run in parallel threads)."""
    mode = os.environ.get("EVALUATION_MATCHING_KERNELS", "auto").strip().lower()
    if mode not in ("auto", "aot", "jit"):
        from ._inputs import MatchingError

        raise MatchingError(f"EVALUATION_MATCHING_KERNELS must be 'auto', 'aot' or 'jit', not {mode!r}")
    kind = "jit" if mode == "jit" or (mode == "auto" and n_rows > THREADED_ROWS) else "aot"
    if kind == "aot" and "aot" not in _cache:
        if "aot_missing" not in _cache:
            mod = _load_aot()
            if mod is not None:
                _cache["aot"] = SimpleNamespace(threads=False, kind="aot",
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

        _cache["jit"] = SimpleNamespace(threads=True, kind="jit", **{k: getattr(_nn, k) for k in _EXPORTS})
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
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".aot-build-", dir=out))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba.pycc's pending-deprecation and distutils warnings
            from numba.pycc import CC

            from . import _nn

            cc = CC(name)
            cc.output_dir = str(tmp)
            cc.target_cpu = "host"  # as the JIT compiles: same vector width, so the same sums bit for bit
            cc.verbose = verbose
            for fname, sig in _EXPORTS.items():
                cc.export(fname, sig)(getattr(_nn, fname).py_func)
            cc.compile()
        os.replace(tmp / target.name, target)
    except Exception as exc:  # noqa: BLE001 - any build failure leaves the JIT kernels in use
        print(f"evaluation.matching: ahead-of-time kernels not built ({type(exc).__name__}: {exc}); the JIT "
              "kernels are used (about 0.9 s more on a fresh process's first match)", file=sys.stderr)
        return None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    for old in out.glob(f"_nn_aot_*{suffix}"):
        if old != target:
            old.unlink(missing_ok=True)
    _cache.pop("aot", None)
    _cache.pop("aot_missing", None)
    importlib.invalidate_caches()
    return target
