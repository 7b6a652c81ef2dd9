"""Benchmark: build the seven individual-programme reports with ``python -m evaluation build --jobs 2`` (warm),
and, side by side in the same run, the serial papermill → nbconvert → WeasyPrint chain for the same set.

    python benchmarks/reports.py                  # default synthetic world (generated if absent)
    python benchmarks/reports.py --world DIR --jobs 2 --no-warmup

Target (issue 5): the seven reports in ≤ 60 s warm on 2 cores.

"Warm" means the caches a second build finds: numba's compiled kernels on disk, imported modules in the page
cache, the world's content hash memoised. A first (untimed) build warms them unless ``--no-warmup``. Both timed
runs rebuild everything (``--force``: the skip cache would otherwise make the second build instant).

* **build**: wall-clock seconds of ``evaluation.report.build.build`` with ``jobs`` worker processes (each job:
  papermill with its own kernel, HTML, PDF, checks, atomic publication), including the manifest and index.
* **serial chain**: the same three stages run one programme after another in this process, each stage timed:
  ``papermill.execute_notebook`` → nbconvert (``evaluation.report.render.notebook_body``, HTML without code) →
  WeasyPrint (``render.html_to_pdf``). It is the anchor: what the build would cost without its parallelism.

Both figures and their ratio are printed; the templates used are whatever ``notebooks/`` holds now.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

INDIVIDUAL = ["pathways-out", "wonder-plus", "pathway-out-adder", "family-support", "sos-plus", "mace",
              "detached-youth-work"]


def _world(path: str | None, seed: int) -> Path:
    from evaluation.config import default_world

    world = Path(path) if path else default_world()
    if not (world / "people.csv").exists() and not (world / "people.parquet").exists():
        from evaluation.synth import generate_world

        print(f"generating the synthetic world in {world} (seed {seed}) ...", flush=True)
        generate_world(seed, out=world)
    return world


def timed_build(world: Path, out: Path, jobs: int, programmes: list[str]) -> tuple[float, object]:
    from evaluation.report.build import BuildOptions, build

    t = time.perf_counter()
    summary = build(BuildOptions(world=world, programmes=programmes, jobs=jobs, out=out, force=True,
                                 progress=False))
    return time.perf_counter() - t, summary


def serial_chain(world: Path, out: Path, programmes: list[str]) -> dict[str, float]:
    """papermill → nbconvert → WeasyPrint for each programme, one after another; seconds per stage."""
    import logging

    import papermill as pm

    from evaluation.config import load_programme, programmes_dir, repo_root
    from evaluation.report.build import TEMPLATES_BY_DESIGN, is_synthetic
    from evaluation.report.render import Cover, html_to_pdf, notebook_body, page

    logging.getLogger("papermill").setLevel(logging.WARNING)
    stages = {"papermill": 0.0, "nbconvert": 0.0, "weasyprint": 0.0}
    synthetic = is_synthetic(world)
    for pid in programmes:
        prog = load_programme(pid)
        folder = out / pid
        folder.mkdir(parents=True, exist_ok=True)
        nb_path = folder / "report.ipynb"
        t = time.perf_counter()
        pm.execute_notebook(str(repo_root() / "notebooks" / TEMPLATES_BY_DESIGN[prog.design]), str(nb_path),
                            parameters={"programme_id": pid, "config_path": str(programmes_dir()),
                                        "world_path": str(world), "extract_date": None, "seed": 20190401,
                                        "output_dir": str(folder), "synthetic": synthetic},
                            cwd=str(folder), progress_bar=False, log_output=False)
        stages["papermill"] += time.perf_counter() - t
        t = time.perf_counter()
        body = notebook_body(nb_path)
        cover = Cover.from_programme(prog)
        (folder / "report.html").write_text(page(body, cover, synthetic=synthetic, print_=False))
        stages["nbconvert"] += time.perf_counter() - t
        t = time.perf_counter()
        html_to_pdf(page(body, cover, synthetic=synthetic, print_=True), folder / "report.pdf")
        stages["weasyprint"] += time.perf_counter() - t
    return stages


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default=None)
    ap.add_argument("--seed", type=int, default=20190401)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--programme", action="append", default=None, help="subset (default: the seven individual)")
    args = ap.parse_args(argv)
    programmes = args.programme or INDIVIDUAL
    world = _world(args.world, args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    try:
        print(f"world: {world}   reports: {len(programmes)}   jobs: {args.jobs}   cores: {os.cpu_count()}")
        if not args.no_warmup:
            secs, summary = timed_build(world, tmp / "warmup", args.jobs, programmes)
            print(f"warm-up build (untimed for the target): {secs:.1f} s")
        secs, summary = timed_build(world, tmp / "build", args.jobs, programmes)
        print(summary.table())
        stages = serial_chain(world, tmp / "serial", programmes)
        serial = sum(stages.values())
        print()
        print(f"{'':44}{'seconds':>9}")
        print(f"{'build --jobs ' + str(args.jobs) + ' (warm)':44}{secs:9.1f}   target <= 60 s: "
              f"{'met' if secs <= 60 else 'NOT met'}")
        print(f"{'serial papermill → nbconvert → WeasyPrint':44}{serial:9.1f}   "
              f"(papermill {stages['papermill']:.1f}, nbconvert {stages['nbconvert']:.1f}, "
              f"WeasyPrint {stages['weasyprint']:.1f})")
        print(f"{'ratio serial / build':44}{serial / secs:9.2f}")
        return 0 if not summary.failed else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
