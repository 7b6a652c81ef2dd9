"""Benchmark: link 1,000 referrals to a 1,000,000-person nominal index (goal <= 120 s and <= 4 GB on 2 cores).

Prints time (linkage only, after the synthetic data are built), the process's peak resident memory, precision and
recall against the synthetic truth, and the same for Splink's own library comparisons (``NameComparison``,
``DateOfBirthComparison``, exact sex and postcode, best candidate at p >= 0.95) as the anchor, side by side.

    python benchmarks/linkage.py [--referrals 1000] [--nominals 1000000] [--no-anchor]
"""
from __future__ import annotations

import argparse
import logging
import resource
import sys
import time

import numpy as np
import pandas as pd

from evaluation.linkage import link
from evaluation.synth_names import synthetic_pair


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def _anchor(refs: pd.DataFrame, noms: pd.DataFrame, truth: pd.DataFrame) -> tuple[float, float, float]:
    """Splink's library comparisons on lightly cleaned columns, trained the same way; best candidate >= 0.95."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    def prep(df, idc):
        out = pd.DataFrame({"unique_id": df[idc].astype(str),
                            "first_name": df["first_name"].str.strip().str.lower(),
                            "surname": df["surname"].str.strip().str.lower(),
                            "dob": pd.to_datetime(df["date_of_birth"], format="mixed", dayfirst=True,
                                                  errors="coerce").dt.strftime("%Y-%m-%d"),
                            "sex": df["sex"].replace("", None),
                            "postcode": df["postcode"].str.upper().str.replace(" ", "").replace("", None)})
        return out.where(out.notna(), None)

    t0 = time.perf_counter()
    db = DuckDBAPI()
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[cl.NameComparison("first_name"), cl.NameComparison("surname"),
                     cl.DateOfBirthComparison("dob", input_is_string=True), cl.ExactMatch("sex"),
                     cl.ExactMatch("postcode")],
        blocking_rules_to_generate_predictions=[block_on("dob"), block_on("first_name", "surname"),
                                                block_on("postcode")])
    linker = Linker([db.register(prep(refs, "referral_id"), dataset_display_name="referrals"),
                     db.register(prep(noms, "person_id"), dataset_display_name="nominals")], settings,
                    log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match([block_on("first_name", "surname", "dob")],
                                                                  recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=3e5, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "surname"))
    p = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    secs = time.perf_counter() - t0
    left = p["source_dataset_l"] == "referrals"
    p = pd.DataFrame({"rid": np.where(left, p["unique_id_l"], p["unique_id_r"]),
                      "pid": np.where(left, p["unique_id_r"], p["unique_id_l"]), "p": p["match_probability"]})
    best = p.sort_values("p", ascending=False).drop_duplicates("rid")
    best = best[best["p"] >= 0.95]
    t = truth.set_index("referral_id")["person_id"]
    correct = int((best["pid"].to_numpy() == t.reindex(best["rid"]).to_numpy()).sum())
    return secs, correct / max(len(best), 1), correct / int(t.notna().sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--referrals", type=int, default=1000)
    ap.add_argument("--nominals", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-anchor", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    refs, noms, truth = synthetic_pair(a.referrals, a.nominals, a.seed)
    print(f"synthetic case: {len(refs):,} referral rows (incl. repeats and people not in records) vs "
          f"{len(noms):,} nominals, built in {time.perf_counter() - t0:.1f} s")
    import os

    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    t0 = time.perf_counter()
    res = link(refs, noms)
    secs = time.perf_counter() - t0
    ev = res.evaluate(truth).set_index("measure")["value"]
    print(res)
    print(f"evaluation.linkage: {secs:7.1f} s  precision {ev['precision']:.4f}  recall {ev['recall']:.4f}  "
          f"(false links {int(ev['false links'])}, links {int(ev['links made'])})")
    for step, sec in res.timings.items():
        print(f"  {step:<40} {sec:7.1f} s")
    print(f"peak memory so far: {_peak_gb():.2f} GB (goal <= 4 GB); goal <= 120 s")
    if not a.no_anchor:
        s2, p2, r2 = _anchor(refs, noms, truth)
        print(f"anchor (Splink library comparisons): {s2:7.1f} s  precision {p2:.4f}  recall {r2:.4f}")
        print(f"time ratio evaluation.linkage / anchor: {secs / s2:.2f}")
        print(f"peak memory: {_peak_gb():.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
