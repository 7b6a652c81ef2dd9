"""Benchmark: proven reoffending for a national-size cohort, the library beside its anchors, in one run.

    python benchmarks/outcomes.py                  # full: 1M people x 20M offences in memory, 1M x 50M from parquet
    python benchmarks/outcomes.py --scale small    # smoke run: 20k x 400k in memory, 20k x 1M from parquet

Cases (each method runs in its own fresh spawned process that builds or opens the same data, so one method's freed
memory does not flatter the next; building tables and writing parquet are not timed):

* in memory, integer person ids: ``national_tables(seed)`` with ids turned into int64;
* in memory, string person ids (Arrow strings), the same tables;
* from a parquet folder (``national_tables`` written as several files, string ids), people in memory.

Methods:

* ``naive pandas`` (anchor): merge offences to the cohort (the full join), filter the windows, group by person;
  in memory only (from parquet it would first have to read all 50M rows into pandas);
* ``bare SQL`` (anchor): :data:`evaluation.outcomes.PROVEN_REOFFENDING_SQL` run on DuckDB over the same inputs,
  with none of the library's checks or conversions;
* ``library``: :func:`evaluation.outcomes.proven_reoffending` (checks its inputs, then the same SQL).

Printed per case and method: wall time, CPU time of the process (user + system, all threads: on a shared machine
it moves less with other work than the wall time does) and the load average after it, peak resident memory of the process (RSS, sampled every 2 ms with psutil;
it sees DuckDB's native allocations) above its size once the inputs were ready, and the absolute peak RSS; then
the ratios and whether every method agrees person by person (eligibility, counts, days to first). Goals (issue
12): in memory >= 5x naive pandas for every id type; from parquet <= 4 s and <= 1.5 GB peak RSS. The 4 s goal was
set where the bare SQL took 1.4 s, so it is also printed scaled to this machine (4 / 1.4 x the bare SQL of the same
run). Exit status 1 if any result differs.
"""
from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np
import pandas as pd
import psutil

EXTRACT = "2024-12-31"
#: Seconds the bare SQL took from parquet (1M x 50M) on the machine where issue 12 set the 4 s goal.
BARE_SQL_ON_GOAL_MACHINE = 1.4
SCALES = {"full": (1_000_000, 20_000_000, 50_000_000), "small": (20_000, 400_000, 1_000_000)}


# ---------------------------------------------------------------------------------------------------------------
# the methods
# ---------------------------------------------------------------------------------------------------------------
def naive_pandas(cohort: pd.DataFrame, offences) -> pd.DataFrame:
    from evaluation.outcomes import COUNTED_DISPOSALS

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


def bare_sql(cohort: pd.DataFrame, offences) -> pd.DataFrame:
    """The library's SQL text on DuckDB, inputs registered as they come (no checks, no conversions)."""
    import duckdb

    from evaluation.outcomes import BOUNDS_SQL, COUNTED_DISPOSALS, PROVEN_REOFFENDING_SQL, _sql

    con = duckdb.connect()
    c = cohort.assign(row_id=np.arange(len(cohort)))
    con.register("cohort_in", c)
    con.execute("CREATE VIEW cohort AS SELECT row_id, person_id AS person_key, CAST(index_date AS DATE) AS index_date "
                "FROM cohort_in")
    if isinstance(offences, pd.DataFrame):
        con.register("offences_in", offences)
        src = "offences_in"
    else:
        src = f"read_parquet('{offences}/**/*.parquet')"
    con.execute(f"CREATE VIEW offences AS SELECT person_id AS person_key, CAST(offence_date AS DATE) AS offence_date, "
                f"CAST(disposal_date AS DATE) AS disposal_date, CAST(disposal_type AS VARCHAR) AS disposal_type "
                f"FROM {src}")
    months = {"follow_up_months": 12, "waiting_months": 6}
    b = con.execute(BOUNDS_SQL, months).fetchall()[0]
    params = {**months, "first_index": b[0], "last_follow_up_end": b[1], "last_waiting_end": b[2],
              "extract_date": pd.Timestamp(EXTRACT).date()}
    r = con.execute(_sql(PROVEN_REOFFENDING_SQL, COUNTED_DISPOSALS), params).df().sort_values("row_id")
    return pd.DataFrame({"person_id": cohort["person_id"].to_numpy()[r["row_id"].to_numpy()],
                         "eligible": r["eligible"].to_numpy(), "reoffence_count": r["reoffence_count"].to_numpy(),
                         "days_to_first": (r["first_day"] - (cohort["index_date"].to_numpy()[r["row_id"].to_numpy()]
                                           .astype("datetime64[D]").astype(np.int64))).astype(float).to_numpy()})


def library(cohort: pd.DataFrame, offences) -> pd.DataFrame:
    from evaluation.outcomes import proven_reoffending

    return proven_reoffending(cohort, offences, extract_date=EXTRACT)


METHODS = {"naive pandas": naive_pandas, "bare SQL": bare_sql, "library": library}


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------
def _tables(case: str, people: int, n_off: int, seed: int, folder: str):
    from evaluation.synth import national_tables

    if case == "parquet":  # the cohort only (drawn before the offences, so the same for any number of them)
        return national_tables(seed=seed, n_people=people, n_offences=0)[0], folder
    cohort, offences = national_tables(seed=seed, n_people=people, n_offences=n_off)
    offences = offences[["person_id", "offence_date", "disposal_date", "disposal_type"]]
    if case == "int ids":
        cohort = cohort.assign(person_id=cohort["person_id"].str[1:].astype("int64"))
        offences = offences.assign(person_id=offences["person_id"].str[1:].astype("int64"))
    return cohort, offences


def write_parquet(folder: str, people: int, n_off: int, seed: int, parts: int = 10) -> None:
    from evaluation.synth import national_tables

    _, offences = national_tables(seed=seed, n_people=people, n_offences=n_off)
    offences = offences[["person_id", "offence_date", "disposal_date", "disposal_type"]]
    os.makedirs(folder, exist_ok=True)
    for i, idx in enumerate(np.array_split(np.arange(len(offences)), parts)):
        offences.iloc[idx].to_parquet(os.path.join(folder, f"part-{i:02d}.parquet"), index=False)
    del offences
    gc.collect()


# ---------------------------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------------------------
def _child(case, name, people, n_off, seed, folder, conn) -> None:
    cohort, offences = _tables(case, people, n_off, seed, folder)
    METHODS[name](cohort.head(50), offences.head(500) if isinstance(offences, pd.DataFrame) else offences)  # warm
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
    cpu0 = proc.cpu_times()
    t0 = time.perf_counter()
    result = METHODS[name](cohort, offences)
    seconds = time.perf_counter() - t0
    cpu1 = proc.cpu_times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)  # all threads (DuckDB's too)
    stop.set()
    th.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    r = result.set_index("person_id")
    slim = pd.DataFrame({"eligible": r["eligible"].astype(bool).to_numpy(),
                         "count": r["reoffence_count"].astype("Int64").fillna(0).astype(np.int64).to_numpy(),
                         "days": r["days_to_first"].astype(float).to_numpy()}, index=r.index.astype(str))
    conn.send((seconds, (peak[0] - base) / 2**30, peak[0] / 2**30, slim, cpu))
    conn.close()


def run(case, name, people, n_off, seed, folder):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(case, name, people, n_off, seed, folder, child))
    p.start()
    out = parent.recv()
    p.join()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-naive", action="store_true", help="leave out the naive pandas anchor")
    ap.add_argument("--folder", default=None, help="parquet folder to use/keep (default: a temporary one)")
    ap.add_argument("--cases", nargs="+", choices=["int", "string", "parquet"], default=["int", "string", "parquet"],
                    help="which cases to run (default all three)")
    args = ap.parse_args(argv)
    people, n_mem, n_pq = SCALES[args.scale]
    print(f"scale {args.scale}: in memory {people:,} people x {n_mem:,} offences; parquet {people:,} people x "
          f"{n_pq:,} offences; cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    print("DuckDB threads: " + str(__import__("duckdb").connect().execute("SELECT current_setting('threads')")
                                   .fetchall()[0][0]), flush=True)
    tmp = None
    folder = args.folder
    if folder is None:
        tmp = tempfile.mkdtemp(prefix="outcomes-bench-")
        folder = os.path.join(tmp, "offences")
    if "parquet" in args.cases and not os.path.isdir(folder):
        write_parquet(folder, people, n_pq, args.seed)
    ok = True
    try:
        for case, n_off in (("int ids", n_mem), ("string ids", n_mem), ("parquet", n_pq)):
            if case.split()[0] not in args.cases:
                continue
            print(f"\n{case} ({people:,} x {n_off:,}):", flush=True)
            results = {}
            for name in METHODS:
                if name == "naive pandas" and (args.skip_naive or case == "parquet"):
                    continue
                seconds, extra, absolute, slim, cpu = run(case, name, people, n_off, args.seed, folder)
                results[name] = (seconds, extra, absolute, slim)
                print(f"  {name:13s} {seconds:7.2f} s  (CPU {cpu:6.2f} s, all threads; load average "
                      f"{os.getloadavg()[0]:.1f})   peak RSS +{extra:5.2f} GB (absolute {absolute:5.2f} GB)",
                      flush=True)
            ref = results["library"][3]
            for name, (_, _, _, slim) in results.items():
                other = slim.reindex(ref.index)
                same = len(slim) == len(ref) and (other["eligible"].to_numpy() == ref["eligible"].to_numpy()).all() \
                    and (other["count"].to_numpy() == ref["count"].to_numpy()).all() \
                    and np.array_equal(other["days"].to_numpy(), ref["days"].to_numpy(), equal_nan=True)
                ok &= bool(same)
                if name != "library":
                    s = results[name][0]
                    print(f"  library vs {name:13s}: {'identical' if same else 'DIFFERENT'}; "
                          f"{s / results['library'][0]:5.1f}x faster")
            if case == "parquet":
                s, _, absolute, _ = results["library"]
                print(f"  goals from parquet: time {s:.2f} s (<= 4 s: {'met' if s <= 4 else 'NOT met'}), peak RSS "
                      f"{absolute:.2f} GB (<= 1.5 GB: {'met' if absolute <= 1.5 else 'NOT met'})")
                # The 4 s goal was set on a machine where the bare SQL took 1.4 s (issue 12), so on another machine
                # it reads as "within 4 / 1.4 = 2.9x of the bare SQL run in the same run"; both are printed.
                bare = results.get("bare SQL", (None,))[0]
                if bare:
                    scaled = 4 / BARE_SQL_ON_GOAL_MACHINE * bare
                    print(f"  the same goal on this machine (4 s x bare SQL here / {BARE_SQL_ON_GOAL_MACHINE} s on the "
                          f"goal's machine = {scaled:.2f} s): library {s:.2f} s = {s / bare:.2f}x bare SQL "
                          f"({'met' if s <= scaled else 'NOT met'})")
            elif "naive pandas" in results:
                ratio = results["naive pandas"][0] / results["library"][0]
                print(f"  goal in memory: >= 5x naive pandas: {ratio:.1f}x ({'met' if ratio >= 5 else 'NOT met'})")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\nall results identical" if ok else "\nRESULTS DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
