"""Calibration: does the whole pipeline recover the synthetic world's true effects?

For each seed a synthetic world is generated (:func:`evaluation.synth.generate_world`), validated
(:func:`evaluation.validate.load_world`) and every individual-impact programme is evaluated exactly as its report
does (:func:`evaluation.estimates.evaluate_programme`). The headline estimate, the matched difference in one-year
proven reoffending rates (participants − comparison, a proportion), is compared with the generator's true ATT for
the same people (``truth.json``: ``att_risk_difference``; for a completers analysis the completers' ATT).

:func:`calibrate` returns one row per (seed, programme); :func:`summarise` gives per programme the mean bias, the
empirical SD of the estimates beside the mean reported SE (an honest SE has the two close), the coverage of the
95% CIs with its Monte Carlo standard error, and how often the report called the difference significant.

    python -m evaluation calibrate --seeds 20 [--scale 0.5] [--programme wonder-plus ...] [--out calib.csv]

The worlds differ in people, offences and selection draws, not in the true effect sizes, so coverage near 0.95
says the intervals are honest for effects of this size and samples of these sizes. With few participants
(Pathways Out, n ≈ 45) the cluster-robust SE is known to be small (few clusters), and coverage falls short.
"""
from __future__ import annotations

import json
import math
import tempfile
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from evaluation.config import PROGRAMME_IDS, load_programme

def individual_programmes() -> tuple[str, ...]:
    """Programmes with individual participants (the ones with a matched estimate), from their configs.

    A function, not a module constant: the CLI imports every command's module, and reading the configs at import
    would make a broken config fail every command, not just the ones that use it."""
    return tuple(p for p in PROGRAMME_IDS if load_programme(p).is_individual)


def calibrate(seeds: Iterable[int], programmes: Iterable[str] | None = None, *, scale: float = 1.0,
              progress: bool = False) -> pd.DataFrame:
    """Evaluate each programme on the synthetic world of each seed; one row per (seed, programme).

    Columns: ``seed``, ``programme_id``, ``n_treated`` (participants matched), ``estimate``, ``se``, ``lower``,
    ``upper`` (95% CI of the matched risk difference, a proportion), ``truth`` (the generator's ATT), ``covered``,
    ``significant`` (the report's JDL call), ``error`` (why a programme could not be evaluated, else empty).
    """
    from tqdm.auto import tqdm

    from evaluation.estimates import evaluate_programme
    from evaluation.synth import generate_world
    from evaluation.validate import load_world

    seeds = list(seeds)
    programmes = list(programmes or individual_programmes())
    rows = []
    bar = tqdm(total=len(seeds) * len(programmes), desc="calibration", unit="evaluation", disable=not progress)
    with tempfile.TemporaryDirectory(prefix="calibration-") as tmp:
        for seed in seeds:
            out = Path(tmp) / f"seed-{seed}"
            generate_world(seed, out=out, scale=scale, fmt="parquet")
            world = load_world(out)
            truth = json.loads((out / "truth.json").read_text())["programmes"]
            for pid in programmes:
                row = {"seed": seed, "programme_id": pid, "error": ""}
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        ev = evaluate_programme(world, pid, seed=seed)
                    eff = ev.effects["reoffended"]
                    t = truth[pid]
                    true = t["att_risk_difference"]
                    row.update(n_treated=int(ev.design.matched["treat"].sum()) if ev.design is not None else None,
                               estimate=eff.estimate, se=eff.se, lower=eff.ci_low, upper=eff.ci_high, truth=true,
                               covered=bool(eff.ci_low <= true <= eff.ci_high),
                               significant=bool(ev.headline_table().iloc[0]["significant"]))
                except Exception as exc:  # noqa: BLE001 - one failed evaluation is a finding, not a crash
                    row["error"] = f"{type(exc).__name__}: {exc}"
                rows.append(row)
                bar.update(1)
            world = None
    bar.close()
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per programme: ``worlds``, ``truth`` (mean true ATT), ``bias`` (mean estimate − truth), ``sd_estimate``
    (empirical SD of the estimates around the truth of each world), ``mean_se``, ``coverage`` and ``coverage_mcse``
    (its Monte Carlo SE, sqrt(p(1−p)/n)), ``significant`` (share called significant); proportions throughout."""
    ok = runs[runs["error"].eq("") & runs["estimate"].notna()] if "estimate" in runs else runs.iloc[0:0]
    out = []
    for pid, g in ok.groupby("programme_id", sort=False):
        err = g["estimate"] - g["truth"]
        cover = g["covered"].mean()
        out.append({"programme_id": pid, "worlds": len(g), "truth": g["truth"].mean(), "bias": err.mean(),
                    "sd_estimate": err.std(ddof=1) if len(g) > 1 else np.nan, "mean_se": g["se"].mean(),
                    "coverage": cover, "coverage_mcse": math.sqrt(cover * (1 - cover) / len(g)),
                    "significant": g["significant"].mean()})
    return pd.DataFrame(out).set_index("programme_id") if out else pd.DataFrame()


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("calibrate", help="check that the pipeline recovers the synthetic world's true effects",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20, help="number of synthetic worlds (seeds 1..N; default 20)")
    p.add_argument("--first-seed", type=int, default=1, help="first seed (default 1)")
    p.add_argument("--scale", type=float, default=1.0, help="comparison-pool scale of each world (default 1.0)")
    p.add_argument("--programme", action="append", default=None, metavar="ID",
                   help="programme id (repeatable; default: every individual-impact programme)")
    p.add_argument("--out", default=None, help="write the per-world rows to this CSV")
    p.set_defaults(func=_run_cli)


def _run_cli(args) -> int:
    import sys

    individual = individual_programmes()
    unknown = [p for p in (args.programme or []) if p not in individual]
    if unknown:
        print(f"calibrate: --programme: {', '.join(unknown)} has no individual impact estimate; choose from "
              f"{', '.join(individual)}", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print("calibrate: --seeds must be at least 1", file=sys.stderr)
        return 2
    runs = calibrate(range(args.first_seed, args.first_seed + args.seeds), args.programme, scale=args.scale,
                     progress=True)
    if args.out:
        runs.to_csv(args.out, index=False)
    failed = runs[runs["error"].ne("")]
    for _, r in failed.iterrows():
        print(f"seed {r['seed']} {r['programme_id']}: {r['error']}", file=sys.stderr)
    s = summarise(runs)
    if s.empty:
        return 1
    shown = s.copy()
    for c in ("truth", "bias", "sd_estimate", "mean_se"):
        shown[c] = (100 * shown[c]).map(lambda v: f"{v:+.1f} pp" if c in ("truth", "bias") else f"{v:.1f} pp")
    shown["coverage"] = [f"{c:.2f} ± {m:.2f}" for c, m in zip(s["coverage"], s["coverage_mcse"])]
    shown["significant"] = s["significant"].map(lambda v: f"{v:.0%}")
    print(shown.drop(columns="coverage_mcse").to_string())
    pooled = runs.loc[runs["error"].eq(""), "covered"].mean()
    print(f"\npooled coverage of the 95% CIs: {pooled:.3f} over {int(runs['error'].eq('').sum())} evaluations")
    return 0 if failed.empty else 1
