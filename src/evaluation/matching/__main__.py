"""``python -m evaluation.matching --warm``: compile the numba kernels once (cached on disk), build the
ahead-of-time module of the default path's kernels (:mod:`evaluation.matching._kernels`) and say so."""
from __future__ import annotations

import sys
import time


def warm() -> float:
    """Run every numba kernel once on a small problem; returns the seconds taken."""
    import numpy as np
    import pandas as pd

    from evaluation.matching import match

    t0 = time.perf_counter()
    rng = np.random.default_rng(1)
    n = 400
    x = rng.normal(size=n)
    d = pd.DataFrame({"treat": (rng.random(n) < 0.25 / (1 + np.exp(-x))).astype(int), "x": x,
                      "g": rng.integers(0, 2, n)})
    for kw in ({}, {"ratio": 2}, {"replace": True}, {"exact": "g", "caliper": 0.5},
               {"distance": "mahalanobis"}, {"mahvars": "x", "caliper": 0.5, "replace": True},
               {"antiexact": "g", "ratio": 2}, {"caliper": {"x": 0.5}}):
        match(d, "treat", ["x", "g"], **kw)
    return time.perf_counter() - t0


if __name__ == "__main__":
    if "--warm" in sys.argv[1:]:
        from evaluation.matching._kernels import aot_available, build_aot

        print("evaluation.matching: compiling the numba kernels (once per environment) ...", flush=True)
        t0 = time.perf_counter()
        fresh = not aot_available()
        built = build_aot()
        if built is not None and fresh:
            print(f"evaluation.matching: ahead-of-time kernels built: {built.name}", flush=True)
        warm()
        print(f"evaluation.matching: kernels ready ({time.perf_counter() - t0:.1f} s)")
    else:
        print(__doc__)
