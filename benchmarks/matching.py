"""Benchmark: 1:1 nearest-neighbour propensity-score matching with caliper 0.2 SD, evaluation.matching vs
R MatchIt 4.7.2 side by side in one run.

    python benchmarks/matching.py                 # 2,000 treated vs 1,000,000 pool, then 10,000 vs 5,000,000
    python benchmarks/matching.py --sizes small   # only the first
    R_LIBS=/path/to/lib python benchmarks/matching.py   # where MatchIt 4.7.2 is installed

The pool has five covariates (two normal, one uniform, one binary, one Poisson count); treatment follows a
logistic model in them. Times are wall-clock seconds for the whole ``match()`` / ``matchit()`` call
(propensity model + matching + weights), not data generation or I/O. Peak memory: Python is the peak resident
set size of a fresh subprocess running only ``match()`` on data it loads from a .npy file, minus its size
before the call (psutil, sampled every 10 ms) and tracemalloc's peak of Python/numpy allocations; R is
``gc()``'s "max used" (Ncells + Vcells) over the ``matchit()`` call, a lower bound of R's RSS growth.
CPU seconds (user + system, all threads) are printed beside wall times: on a machine shared with other work they
move less. Cold: a fresh process's first call (Python: import of evaluation.matching plus ``match()``, which runs
the kernels that ``make venv`` compiled ahead of time, so no numba start-up: see
``evaluation/matching/_kernels.py``; R: ``library(MatchIt)`` plus ``matchit()``). Warm: a second call in the same
process. ``EVALUATION_MATCHING_KERNELS=jit`` in the environment times the numba JIT kernels instead (their
start-up, ~0.9 s, then falls in the cold call).

Goals (issue 14), checked on the last line of each size: cold at least 10x faster than MatchIt's cold, and 10,000
treated vs 5,000,000 in at most 2 s warm. Matched pairs must be MatchIt's (compared pair by pair).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

COVS = ["x1", "x2", "x3", "x4", "x5"]


def make_pool(n_treated: int, n_pool: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_treated + n_pool
    X = np.empty((n, 5))
    X[:, 0] = rng.normal(size=n)
    X[:, 1] = rng.normal(size=n)
    X[:, 2] = rng.random(n)
    X[:, 3] = rng.random(n) < 0.4
    X[:, 4] = rng.poisson(2.0, size=n)
    lin = 0.5 * X[:, 0] - 0.4 * X[:, 1] + 0.6 * X[:, 2] + 0.7 * X[:, 3] + 0.15 * X[:, 4]
    p = np.exp(lin)
    treated = rng.choice(n, size=n_treated, replace=False, p=p / p.sum())
    t = np.zeros(n, dtype=np.int64)
    t[treated] = 1
    d = pd.DataFrame(X, columns=COVS)
    d.insert(0, "treat", t)
    return d


_PY_CHILD = textwrap.dedent("""
    import sys, time, threading, tracemalloc, numpy as np, pandas as pd, psutil
    arr = np.load(sys.argv[1])
    d = pd.DataFrame(arr[:, 1:], columns=["x1", "x2", "x3", "x4", "x5"])
    d.insert(0, "treat", arr[:, 0].astype(np.int64))
    del arr
    # cold: the researcher's first call in a fresh process (import of the package and loading the kernels that
    # `make venv` built included), no warm-up
    proc = psutil.Process()
    c0 = sum(proc.cpu_times()[:2])
    t0 = time.perf_counter()
    from evaluation.matching import match
    match(d, "treat", ["x1", "x2", "x3", "x4", "x5"], caliper=0.2)
    cold = time.perf_counter() - t0
    cold_cpu = sum(proc.cpu_times()[:2]) - c0
    base = proc.memory_info().rss
    peak = [base]
    stop = False
    def sample():
        while not stop:
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)
    th = threading.Thread(target=sample); th.start()
    c0 = sum(proc.cpu_times()[:2])
    t0 = time.perf_counter()
    m = match(d, "treat", ["x1", "x2", "x3", "x4", "x5"], caliper=0.2)
    el = time.perf_counter() - t0
    warm_cpu = sum(proc.cpu_times()[:2]) - c0
    stop = True; th.join()
    tracemalloc.start()
    match(d, "treat", ["x1", "x2", "x3", "x4", "x5"], caliper=0.2)
    tm_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    md = m.matched
    pairs = np.array([(t, c[0]) for t, c in m.match_matrix.items() if c], dtype=np.int64)
    np.save(sys.argv[1] + ".pairs.npy", pairs)
    print(cold, el, (peak[0] - base) / 1e9, tm_peak / 1e9, int((md.treat == 1).sum()), int(len(md)), base / 1e9,
          cold_cpu, warm_cpu)
""")

_R_SCRIPT = textwrap.dedent("""
    cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }
    t00 <- proc.time()[["elapsed"]]
    c00 <- cpu()
    suppressMessages(library(MatchIt))
    lib_s <- proc.time()[["elapsed"]] - t00
    lib_cpu <- cpu() - c00
    args <- commandArgs(TRUE)
    d <- read.csv(args[1])
    invisible(gc(reset = TRUE))
    t0 <- proc.time()[["elapsed"]]
    c0 <- cpu()
    m <- matchit(treat ~ x1 + x2 + x3 + x4 + x5, data = d, method = "nearest", distance = "glm", caliper = 0.2)
    el <- proc.time()[["elapsed"]] - t0
    el_cpu <- cpu() - c0
    g <- gc()
    maxmb <- sum(g[, ncol(g)])  # "max used" (Mb) for Ncells and Vcells
    mm <- m$match.matrix
    ok <- !is.na(mm[, 1])
    write.csv(data.frame(t = as.integer(rownames(mm)[ok]) - 1L, c = as.integer(mm[ok, 1]) - 1L),
              paste0(args[1], ".pairs.csv"), row.names = FALSE)
    cat(el, maxmb / 1000, sum(m$weights[m$treat == 1] > 0), sum(m$weights > 0), as.character(packageVersion("MatchIt")), el + lib_s,
        el_cpu, el_cpu + lib_cpu, "\\n")
""")


def r_available() -> str | None:
    if shutil.which("Rscript") is None:
        return None
    r = subprocess.run(["Rscript", "-e", "cat(as.character(packageVersion('MatchIt')))"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def run(n_treated: int, n_pool: int, tmp: Path, r_version: str | None) -> dict:
    d = make_pool(n_treated, n_pool)
    npy = tmp / f"pool_{n_pool}.npy"
    np.save(npy, d.to_numpy(dtype=float))
    out = subprocess.run([sys.executable, "-c", _PY_CHILD, str(npy)], capture_output=True, text=True, check=True)
    cold, el, rss, tm, mt, mn, base, cold_cpu, warm_cpu = map(float, out.stdout.split())
    res = {"n_treated": n_treated, "n_pool": n_pool, "python_cold_s": cold, "python_s": el, "python_peak_gb": rss,
           "python_rss_before_gb": base, "python_peak_total_gb": base + rss,
           "python_tracemalloc_gb": tm, "python_cold_cpu_s": cold_cpu, "python_cpu_s": warm_cpu,
           "load_average": os.getloadavg()[0], "python_matched_treated": int(mt), "python_matched": int(mn)}
    if r_version:
        csv = tmp / f"pool_{n_pool}.csv"
        d.to_csv(csv, index=False, float_format="%.17g")
        rs = tmp / "bench.R"
        rs.write_text(_R_SCRIPT)
        rout = subprocess.run(["Rscript", str(rs), str(csv)], capture_output=True, text=True)
        if rout.returncode == 0:
            r_el, r_gb, r_mt, r_mn, ver, r_cold, r_cpu, r_cold_cpu = rout.stdout.split()
            res.update(r_s=float(r_el), r_cold_s=float(r_cold), r_cpu_s=float(r_cpu), r_cold_cpu_s=float(r_cold_cpu),
                       r_load_average=os.getloadavg()[0], r_max_used_gb=float(r_gb), r_matched_treated=int(r_mt),
                       r_matched=int(r_mn), matchit=ver)
            # same matched pairs? (0-based row numbers of treated and control)
            ours = {tuple(x) for x in np.load(str(npy) + ".pairs.npy").tolist()}
            theirs = {tuple(x) for x in pd.read_csv(str(csv) + ".pairs.csv").to_numpy().tolist()}
            res["pairs_identical"] = ours == theirs
            res["pairs_differing"] = len(ours ^ theirs) // 2
        else:
            res["r_error"] = rout.stderr[-500:]
        csv.unlink(missing_ok=True)
    npy.unlink(missing_ok=True)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", choices=["small", "large", "all"], default="all")
    ap.add_argument("--no-r", action="store_true", help="skip R even if installed")
    args = ap.parse_args(argv)
    sizes = {"small": [(2_000, 1_000_000)], "large": [(10_000, 5_000_000)],
             "all": [(2_000, 1_000_000), (10_000, 5_000_000)]}[args.sizes]
    r_version = None if args.no_r else r_available()
    print(f"R MatchIt: {r_version or 'not available (Python figures only)'}")
    with tempfile.TemporaryDirectory() as tmp:
        for n1, n0 in sizes:
            res = run(n1, n0, Path(tmp), r_version)
            line = (f"{n1:>6,} treated vs {n0:>9,} pool | Python cold {res['python_cold_s']:6.2f} s, warm "
                    f"{res['python_s']:6.2f} s, peak +"
                    f"{res['python_peak_gb']:.2f} GB RSS (process peak {res['python_peak_total_gb']:.2f} GB incl. the data; "
                    f"tracemalloc {res['python_tracemalloc_gb']:.2f} GB), "
                    f"{res['python_matched_treated']:,} treated matched")
            if "r_s" in res:
                line += (f" | MatchIt {res['matchit']} cold {res['r_cold_s']:6.2f} s (library() + matchit()), warm "
                         f"{res['r_s']:6.2f} s, max used {res['r_max_used_gb']:.2f} GB, "
                         f"{res['r_matched_treated']:,} treated matched | ratio cold "
                         f"{res['r_cold_s'] / res['python_cold_s']:.1f}x, warm {res['r_s'] / res['python_s']:.1f}x | "
                         f"matched pairs identical: {res['pairs_identical']}")
                line += (f"\n  CPU seconds (less moved by other work on a shared machine): Python cold "
                         f"{res['python_cold_cpu_s']:.2f}, warm {res['python_cpu_s']:.2f}; MatchIt cold "
                         f"{res['r_cold_cpu_s']:.2f}, warm {res['r_cpu_s']:.2f}; ratio cold "
                         f"{res['r_cold_cpu_s'] / res['python_cold_cpu_s']:.1f}x, warm "
                         f"{res['r_cpu_s'] / res['python_cpu_s']:.1f}x; load average {res['load_average']:.1f} "
                         f"(Python), {res['r_load_average']:.1f} (R), {os.cpu_count()} cores")
                met = "met" if res["r_cold_s"] >= 10 * res["python_cold_s"] else "not met"
                line += (f"\n  goals: cold >= 10x MatchIt (wall): {met} (wall "
                         f"{res['r_cold_s'] / res['python_cold_s']:.1f}x, CPU "
                         f"{res['r_cold_cpu_s'] / res['python_cold_cpu_s']:.1f}x)")
                if n0 >= 5_000_000:
                    met = "met" if res["python_s"] <= 2.0 else "not met"
                    line += f"; warm <= 2 s: {met} ({res['python_s']:.2f} s)"
            elif "r_error" in res:
                line += f" | R failed: {res['r_error']}"
            print(line, flush=True)
            print("  " + json.dumps(res))


if __name__ == "__main__":
    main()
