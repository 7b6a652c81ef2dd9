"""The default matching path's kernels compiled ahead of time (evaluation.matching._kernels) are the JIT kernels
bit for bit, are what a small problem uses, and spare a fresh process numba's start-up.

No timing is asserted here (benchmarks/matching.py measures it); what is checked is that the module is built,
that its results are identical to the JIT kernels' on inputs with ties, signed zeros, infinities, strata, ratios
and replacement, and that a fresh process matching a small problem never imports numba.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.matching import MatchingError, _kernels, _nn, match

HERE = Path(__file__).parent / "results" / "matchit"


@pytest.fixture(scope="module")
def aot():
    if not _kernels.aot_available():
        why = _kernels._cannot_build()
        if why:  # without a compiler matching uses the JIT kernels (the rest of the matching tests)
            pytest.skip(f"the ahead-of-time kernels cannot be built here: {why}")
        pytest.fail("the ahead-of-time matching kernels are not built for this source: run "
                    "`python -m evaluation.matching --warm` (make venv / make test do)")
    return _kernels.kernels()


def test_the_ahead_of_time_kernels_are_the_default(aot, monkeypatch):
    monkeypatch.delenv("EVALUATION_MATCHING_KERNELS", raising=False)
    assert aot.kind == "aot"
    monkeypatch.setenv("EVALUATION_MATCHING_KERNELS", "jit")
    assert _kernels.kernels().kind == "jit"
    monkeypatch.setenv("EVALUATION_MATCHING_KERNELS", "fast")
    with pytest.raises(MatchingError, match="EVALUATION_MATCHING_KERNELS"):
        _kernels.kernels()


def test_the_compiled_module_releases_the_gil(aot):
    """The chunks of a large pool run in parallel threads only if the compiled wrapper releases the GIL: it then
    calls PyEval_SaveThread, which a build without it does not reference (checked in the file, not by timing)."""
    path = Path(_kernels.__file__).parent
    (so,) = [p for p in path.glob(f"{_kernels.aot_module_name()}.*") if p.suffix in (".so", ".pyd")]
    data = so.read_bytes()
    assert b"PyEval_SaveThread" in data and b"PyEval_RestoreThread" in data


def test_a_stale_build_is_never_loaded(tmp_path, monkeypatch):
    """The module name carries a hash of _nn.py: changed source means another name, so the old build is not
    found and the JIT kernels are used (and 'aot' says how to rebuild)."""
    name = _kernels.aot_module_name()
    changed = tmp_path / "_nn.py"
    changed.write_text(_kernels._SOURCE.read_text() + "\n# changed\n")
    monkeypatch.setattr(_kernels, "_SOURCE", changed)
    monkeypatch.setattr(_kernels, "_cache", {})
    assert _kernels.aot_module_name() != name
    assert not _kernels.aot_available()
    monkeypatch.delenv("EVALUATION_MATCHING_KERNELS", raising=False)
    assert _kernels.kernels().kind == "jit"
    monkeypatch.setenv("EVALUATION_MATCHING_KERNELS", "aot")
    with pytest.raises(MatchingError, match="--warm"):
        _kernels.kernels()


def _design(rng, n, k=5):
    X = np.empty((n, k + 1), order="F")
    X[:, 0] = 1.0
    X[:, 1:] = rng.normal(size=(n, k))
    X[:, 2] = np.round(X[:, 2], 1)  # repeated values: identical rows
    X[: n // 10, 1:] = X[0, 1:]
    return X


@pytest.mark.parametrize("n", [1, 511, 513, 20_000])
def test_irls_scores_and_minmax_are_the_jit_kernels_bit_for_bit(aot, n):
    rng = np.random.default_rng(n)
    X = _design(rng, n)
    Xt = np.ascontiguousarray(X.T)
    y = (rng.random(n) < 0.3).astype(np.int8)
    for b, first in ((np.zeros(6), True), (rng.normal(size=6) * 0.3, False), (np.full(6, 40.0), False)):
        for a0, a1 in ((0, n), (n // 3, n)):
            ours = aot.irls_pass(Xt, y, b, first, a0, a1)
            jit = _nn.irls_pass(Xt, y, b, first, a0, a1)
            for u, v in zip(ours, jit):
                np.testing.assert_array_equal(u, v)
        e1, p1, e2, p2 = (np.empty(n) for _ in range(4))
        aot.scores(Xt, b, e1, p1, 0, n)
        _nn.scores(Xt, b, e2, p2, 0, n)
        np.testing.assert_array_equal(e1, e2)
        np.testing.assert_array_equal(p1, p2)
    for u, v in zip(aot.group_minmax(Xt[1:], y), _nn.group_minmax(Xt[1:], y)):
        np.testing.assert_array_equal(u, v)


def test_sort_split_is_the_jit_kernel_bit_for_bit(aot):
    rng = np.random.default_rng(3)
    for d in (rng.choice(np.array([-1.5, -0.0, 0.0, 5e-324, 2.0, np.inf, -np.inf]), 3000),
              np.round(rng.random(50_000), 3), rng.normal(size=7) * 1e300, np.zeros(4)):
        n = len(d)
        tt = (rng.random(n) < 0.2).astype(np.int8)
        disc = rng.random(n) < 0.1
        for u, v in zip(aot.sort_split(d, tt, disc), _nn.sort_split(d, tt, disc)):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("ratio, replace, caliper, strata", [
    (1, False, np.inf, 1), (1, False, 0.002, 1), (3, False, 0.01, 1), (2, True, np.inf, 1), (1, False, 0.05, 4),
    (2, True, 0.003, 3)])
def test_nn_match_is_the_jit_kernel(aot, ratio, replace, caliper, strata):
    rng = np.random.default_rng(ratio * 10 + strata)
    n = 6000
    d = np.round(rng.random(n), 3)  # many exact ties between candidate controls
    tt = (rng.random(n) < 0.1).astype(np.int8)
    disc = np.zeros(n, dtype=bool)
    t_rank, c_idx, c_rank, c_dist = _nn.sort_split(d, tt, disc)
    seg = rng.integers(0, strata, n).astype(np.int64)
    perm = np.argsort(seg[c_idx], kind="stable")
    c_idx, c_rank, c_dist = c_idx[perm], c_rank[perm], c_dist[perm]
    seg_off = np.zeros(strata + 1, dtype=np.int64)
    np.cumsum(np.bincount(seg[c_idx], minlength=strata), out=seg_off[1:])
    t_idx = np.flatnonzero(tt == 1)
    t_seg = seg[t_idx].copy()
    t_seg[::17] = -1  # discarded treated units
    td = d[t_idx]
    order = np.argsort(-td, kind="stable").astype(np.int64)
    args = (t_rank, td, t_seg, order, ratio, replace, caliper, seg_off, c_rank, c_dist)
    np.testing.assert_array_equal(aot.nn_match(*args), _nn.nn_match(*args))


@pytest.mark.filterwarnings("ignore:exact=", "ignore:fewer units to match")
@pytest.mark.parametrize("kw", [{}, {"caliper": 0.1}, {"ratio": 2}, {"replace": True, "ratio": 3},
                                {"exact": "male", "caliper": 0.2}, {"link": "linear.logit", "order": "smallest"},
                                {"estimand": "ATC"}])
def test_match_is_the_same_with_either_kind_of_kernel(aot, monkeypatch, kw):
    cohort = pd.read_csv(HERE / "synthetic_cohort.csv").set_index("id")
    covs = ["age", "male", "prior", "drug", "norwich", "yarmouth"]
    out = {}
    for kind in ("aot", "jit"):
        monkeypatch.setenv("EVALUATION_MATCHING_KERNELS", kind)
        m = match(cohort, "treat", covs, **kw)
        out[kind] = m
    a, j = out["aot"], out["jit"]
    np.testing.assert_array_equal(a.distance.to_numpy(), j.distance.to_numpy())
    np.testing.assert_array_equal(a.weights.to_numpy(), j.weights.to_numpy())
    np.testing.assert_array_equal(a.subclass.to_numpy(), j.subclass.to_numpy())
    assert a.match_matrix == j.match_matrix


def test_other_argument_types_fall_back_to_the_jit_kernel(aot, monkeypatch):
    monkeypatch.setattr(_kernels, "FALLBACKS", {})
    d = np.array([0.3, 0.1, 0.2, 0.2], dtype=np.float32)  # not the exported float64
    tt = np.array([1, 0, 0, 1], dtype=np.int8)
    disc = np.zeros(4, dtype=bool)
    for u, v in zip(aot.sort_split(d, tt, disc), _nn.sort_split(d, tt, disc)):
        np.testing.assert_array_equal(u, v)
    assert _kernels.FALLBACKS == {"sort_split": 1}


def test_argument_checks(aot):
    """Only exactly the compiled signature reaches the compiled module; read-only arrays only where read."""
    f8 = ("f8", 1, "C", False)
    assert _kernels._fits(f8, np.zeros(3))
    ro = np.zeros(3)
    ro.setflags(write=False)
    assert _kernels._fits(f8, ro) and not _kernels._fits(("f8", 1, "C", True), ro)
    assert not _kernels._fits(f8, np.zeros(3, np.float32))
    assert not _kernels._fits(f8, np.zeros(6)[::2]) and _kernels._fits(("f8", 1, "A", False), np.zeros(6)[::2])
    assert not _kernels._fits(f8, np.zeros((3, 1)))
    assert not _kernels._fits(f8, [0.0, 1.0])
    assert _kernels._fits(int, 2 ** 63 - 1) and not _kernels._fits(int, 2 ** 63) and not _kernels._fits(int, True)
    assert _kernels._fits(bool, np.bool_(True)) and not _kernels._fits(bool, 1)
    assert _kernels._fits(float, np.inf) and not _kernels._fits(float, 1)


def test_the_module_name_covers_source_versions_and_cpu_settings(monkeypatch):
    name = _kernels.aot_module_name()
    assert name.startswith(f"_nn_aot_{_kernels._source_hash()}_")
    monkeypatch.setenv("NUMBA_CPU_NAME", "generic")  # the JIT would then compile for another CPU
    assert _kernels.aot_module_name() != name
    monkeypatch.delenv("NUMBA_CPU_NAME")
    monkeypatch.setattr(_kernels, "_version", lambda package: "0.0")
    assert _kernels.aot_module_name() != name


@pytest.mark.parametrize("copy_on_write", [False, True])
def test_a_fresh_process_matches_without_numba(aot, copy_on_write):
    """What the cold-start speed rests on: importing evaluation.matching and nearest-neighbour matching on a
    propensity score (the default, and with ratio, order and exact) never import numba."""
    code = textwrap.dedent("""
        import sys
        import numpy as np, pandas as pd
        if COW:
            pd.set_option("mode.copy_on_write", True)  # read-only arrays from to_numpy()
        from evaluation.matching import match, _kernels
        rng = np.random.default_rng(0)
        n = 3000
        d = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.random(n)})
        d["treat"] = (rng.random(n) < 0.1 + 0.2 * d.x2).astype(int)
        d["x3"] = rng.integers(0, 3, n)
        m = match(d, "treat", ["x1", "x2"], caliper=0.2)
        m = match(d, "treat", ["x1", "x2"], ratio=2, order="smallest", exact="x3")
        s = pd.Series(np.random.default_rng(1).random(n), index=d.index)
        m = match(d, "treat", ["x1", "x2"], distance=s.to_numpy(), replace=True)
        print(sorted(k for k in sys.modules if k == "numba" or k.startswith("numba.")), _kernels.FALLBACKS)
    """).replace("COW", str(copy_on_write))
    env = {k: v for k, v in os.environ.items() if k != "EVALUATION_MATCHING_KERNELS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[] {}", out.stdout[-500:]


def test_a_build_that_cannot_run_says_why_and_leaves_the_jit_kernels(monkeypatch, capsys):
    monkeypatch.setattr(_kernels, "aot_module_name", lambda: "_nn_aot_notbuilt_00000000")
    monkeypatch.setattr(_kernels, "c_compiler", lambda: None)
    assert _kernels._cannot_build() == "no C compiler found"
    assert _kernels.build_aot() is None
    assert "ahead-of-time kernels not built (no C compiler found); the JIT kernels are used" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "setuptools", None)  # import fails
    monkeypatch.setattr(_kernels, "c_compiler", lambda: "/usr/bin/cc")
    assert "setuptools" in _kernels._cannot_build()


def test_warm_up_command_rebuilds_only_what_is_missing(aot, capsys):
    from evaluation.matching.__main__ import main

    assert main(["--aot-if-missing"]) == 0  # built already: nothing to do, nothing said
    assert capsys.readouterr().out == ""
