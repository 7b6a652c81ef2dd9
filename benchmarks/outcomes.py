"""Benchmark: one-year proven reoffending for a national-size cohort, three ways, on the same tables in one run.

    python benchmarks/outcomes.py                         # 1,000,000 people x 20,000,000 offence records
    python benchmarks/outcomes.py --people 100000 --offences 2000000

What is timed (the same for all three): from the loaded in-memory tables -- ``cohort`` (person_id, index_date) and
``offences`` (canonical columns, Arrow string ids, datetime64 dates, categorical disposal type), built once by
``evaluation.synth.national_tables(seed)`` -- to a per-person result (eligible, proven reoffence count, days to first)
in pandas. Building the tables is not timed. Each method runs in its own fresh (spawned) process that builds the
same tables from the same seed, so one method's freed memory does not flatter the next; peak memory is that
process's peak resident set size above its size once the tables are built, sampled every 2 ms with psutil (it
catches DuckDB's and numba's native allocations, which tracemalloc cannot see).

* naive pandas: merge offences to the cohort (the full join), filter the windows, group by person;
* DuckDB SQL: the same as one SQL query over the pandas frames (DuckDB uses all cores it sees);
* library: ``evaluation.outcomes.proven_reoffending`` (numba; compiled/loaded from cache before timing; the
  kernel splits the scan over the available threads).

All three must agree person by person (eligibility, counts, days to first) or the script exits with status 1.
"""
from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import sys
import threading
import time

import numpy as np
import pandas as pd
import psutil

from evaluation.outcomes import COUNTED_DISPOSALS, proven_reoffending

EXTRACT = "2024-12-31"


# ---------------------------------------------------------------------------------------------------------------
# the three implementations
# ---------------------------------------------------------------------------------------------------------------
def naive_pandas(cohort: pd.DataFrame, offences: pd.DataFrame) -> pd.DataFrame:
    c = cohort[["person_id", "index_date"]].copy()
    c["fu"] = c["index_date"] + pd.DateOffset(months=12)
    c["we"] = c["fu"] + pd.DateOffset(months=6)
    m = offences.merge(c, on="person_id", how="inner")
    m = m[m["disposal_type"].isin(COUNTED_DISPOSALS) & m["disposal_date"].notna()
          & (m["offence_date"] > m["index_date"]) & (m["offence_date"] <= m["fu"]) & (m["disposal_date"] <= m["we"])]
    g = m.groupby("person_id", observed=True).agg(reoffence_count=("offence_date", "size"),
                                                  first=("offence_date", "min"))
    out = c.merge(g, left_on="person_id", right_index=True, how="left")
    out["reoffence_count"] = out["reoffence_count"].fillna(0).astype(np.int64)
    out["days_to_first"] = (out["first"] - out["index_date"]).dt.days.astype(float)
    out["eligible"] = out["we"] <= pd.Timestamp(EXTRACT)
    return out[["person_id", "eligible", "reoffence_count", "days_to_first"]]


_SQL = f"""
WITH c AS (
    SELECT person_id, CAST(index_date AS DATE) AS idx,
           CAST(CAST(index_date AS DATE) + INTERVAL 12 MONTH AS DATE) AS fu
    FROM cohort
), c2 AS (
    SELECT *, CAST(fu + INTERVAL 6 MONTH AS DATE) AS we FROM c
), hits AS (
    SELECT c2.person_id, count(*) AS n, min(CAST(o.offence_date AS DATE) - c2.idx) AS days
    FROM c2 JOIN offences o ON o.person_id = c2.person_id
    WHERE o.disposal_type IN ({", ".join(repr(d) for d in COUNTED_DISPOSALS)})
      AND o.disposal_date IS NOT NULL
      AND CAST(o.offence_date AS DATE) > c2.idx AND CAST(o.offence_date AS DATE) <= c2.fu
      AND CAST(o.disposal_date AS DATE) <= c2.we
    GROUP BY c2.person_id
)
SELECT c2.person_id, c2.we <= DATE '{EXTRACT}' AS eligible, coalesce(h.n, 0) AS reoffence_count,
       CAST(h.days AS DOUBLE) AS days_to_first
FROM c2 LEFT JOIN hits h ON h.person_id = c2.person_id
"""


def duckdb_sql(cohort: pd.DataFrame, offences: pd.DataFrame) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    con.register("cohort", cohort)
    con.register("offences", offences)
    return con.execute(_SQL).df()


def library(cohort: pd.DataFrame, offences: pd.DataFrame) -> pd.DataFrame:
    return proven_reoffending(cohort, offences, extract_date=EXTRACT)


METHODS = {"naive pandas": naive_pandas, "DuckDB SQL": duckdb_sql, "library": library}


# ---------------------------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------------------------
def _phases(tables) -> None:
    """Where the library's time goes: one extra (untimed above) run under cProfile, top functions by own time."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    library(*tables)
    prof.disable()
    print("\nlibrary, where the time goes (cProfile, own time):")
    pstats.Stats(prof).sort_stats("tottime").print_stats(6)


def _child(name: str, sizes: tuple[int, int, int], conn, profile: bool = False) -> None:
    from evaluation.synth import national_tables

    seed, people, n_off = sizes
    tables = national_tables(seed=seed, n_people=people, n_offences=n_off)
    if name == "library":  # numba: compile or load the cached machine code before timing
        library(tables[0].head(100), tables[1].head(1000))
    proc = psutil.Process()
    gc.collect()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    result = METHODS[name](*tables)
    seconds = time.perf_counter() - t0
    stop.set()
    th.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    if profile and name == "library":
        _phases(tables)
    r = result.set_index("person_id")
    slim = pd.DataFrame({"eligible": r["eligible"].astype(bool).to_numpy(),
                         "count": r["reoffence_count"].astype("Int64").fillna(0).astype(np.int64).to_numpy(),
                         "days": r["days_to_first"].astype(float).to_numpy()},
                        index=r.index.astype(str))
    conn.send((seconds, (peak[0] - base) / 2**20, slim))
    conn.close()


def run(name: str, sizes: tuple[int, int, int], profile: bool = False):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(name, sizes, child, profile))
    p.start()
    seconds, mib, slim = parent.recv()
    p.join()
    return seconds, mib, slim


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--offences", type=int, default=20_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="runs per method (the best time is reported)")
    ap.add_argument("--skip-naive", action="store_true", help="leave out the naive pandas anchor")
    ap.add_argument("--profile", action="store_true", help="also print where the library's time goes")
    args = ap.parse_args(argv)

    print(f"tables: national_tables(seed={args.seed}): {args.people:,} people x {args.offences:,} offence records "
          f"(built in each process, not timed); cores: {os.cpu_count()}")
    sizes = (args.seed, args.people, args.offences)

    results = {}
    for name in METHODS:
        if name == "naive pandas" and args.skip_naive:
            continue
        runs = [run(name, sizes, args.profile and i == 0) for i in range(args.repeat)]
        best = min(runs, key=lambda r: r[0])
        results[name] = (best[0], max(r[1] for r in runs), best[2])
        print(f"  {name:13s} {best[0]:7.2f} s   peak +{results[name][1]:8.0f} MiB", flush=True)

    ref_name = "library"
    ref = results[ref_name][2]
    ok = True
    for name, (_, _, slim) in results.items():
        other = slim.reindex(ref.index)
        same = (other["eligible"].to_numpy() == ref["eligible"].to_numpy()).all() and \
            (other["count"].to_numpy() == ref["count"].to_numpy()).all() and \
            np.array_equal(other["days"].to_numpy(), ref["days"].to_numpy(), equal_nan=True) and \
            len(slim) == len(ref)
        ok &= bool(same)
        print(f"  agreement {name} vs library: {'identical' if same else 'DIFFERENT'}")
    lib_s, lib_m = results["library"][:2]
    print("\nratios (anchor / library):")
    for name in results:
        if name == "library":
            continue
        s, m = results[name][:2]
        print(f"  {name:13s} time x{s / lib_s:5.1f}   peak memory x{m / max(lib_m, 1):5.1f}")
    reoff = ref.loc[ref["eligible"], "count"].gt(0).mean()
    print(f"\nproven reoffending rate (eligible): {100 * reoff:.1f}%; eligible {ref['eligible'].mean():.1%}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
