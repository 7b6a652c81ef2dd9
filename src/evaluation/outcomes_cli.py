"""``python -m evaluation outcomes``: headline proven-reoffending tables for each individual programme of a world.

The command lives here, not in :mod:`evaluation.outcomes`, because it builds cohorts: :mod:`evaluation.cohort`
imports :mod:`evaluation.outcomes`, so a command inside ``outcomes`` that imports ``cohort`` would make an import
cycle. This module sits above both.
"""
from __future__ import annotations

import pandas as pd

from evaluation.cohort import build_cohort
from evaluation.config import PROGRAMME_IDS, default_world, load_programmes
from evaluation.outcomes import _world_extract_date, headline_table, proven_reoffending


def _run_cli(args) -> int:
    from evaluation.validate import load_world

    world = load_world(args.world)
    extract = pd.Timestamp(args.extract_date).date() if args.extract_date else _world_extract_date(world, args.world)
    programmes = load_programmes()
    wanted = [args.programme] if args.programme else [p for p, c in programmes.items() if c.is_individual]
    print(f"World: {args.world}   extract date: {extract}")
    for pid in wanted:
        prog = programmes[pid]
        cohort = build_cohort(world, prog)
        data = cohort.data
        oc = prog.outcome
        res = proven_reoffending(data[["person_id", "index_date"]], world.offences, extract_date=extract,
                                 follow_up_months=oc["follow_up_months"], waiting_months=oc["waiting_months"])
        print(f"\n{prog.name} ({pid}) — one-year proven reoffending, participants vs comparison pool "
              f"(before matching); counts 1–{prog.disclosure_threshold - 1} shown as <{prog.disclosure_threshold}")
        print(headline_table(res, data["treat"].to_numpy(), threshold=prog.disclosure_threshold).to_string())
    return 0


def add_cli(subparsers) -> None:
    """Register ``outcomes``: headline proven-reoffending tables for each individual programme of a world."""
    p = subparsers.add_parser("outcomes", help="print headline proven-reoffending tables for each programme",
                              description=add_cli.__doc__)
    p.add_argument("--world", default=str(default_world()), help="world folder (default: %(default)s)")
    p.add_argument("--programme", choices=PROGRAMME_IDS, default=None, help="one programme only")
    p.add_argument("--extract-date", default=None,
                   help="data extract date YYYY-MM-DD (default: the world's, else its latest record date)")
    p.set_defaults(func=_run_cli)


__all__ = ["add_cli"]
