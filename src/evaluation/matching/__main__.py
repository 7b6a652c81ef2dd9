"""``python -m evaluation.matching --warm``: compile the numba kernels once (cached on disk), build the
ahead-of-time module of the default path's kernels (:mod:`evaluation.matching._kernels`) and say so.
``--aot-if-missing``: only build that module, when it is missing for the current source, versions and CPU."""
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


def main(argv: list[str]) -> int:
    from evaluation.matching._kernels import aot_available, build_aot

    if "--warm" in argv:
        print("evaluation.matching: compiling the numba kernels (once per environment) ...", flush=True)
        t0 = time.perf_counter()
        fresh = not aot_available()
        built = build_aot()
        if built is not None and fresh:
            print(f"evaluation.matching: ahead-of-time kernels built: {built.name}", flush=True)
        warm()
        kinds = "JIT and ahead-of-time" if built is not None else "JIT only"
        print(f"evaluation.matching: kernels ready, {kinds} ({time.perf_counter() - t0:.1f} s)")
        return 0
    if "--aot-if-missing" in argv:
        # cheap when the module is there (make runs it on every target that uses the library)
        if not aot_available() and build_aot() is not None:
            print("evaluation.matching: ahead-of-time kernels built", flush=True)
        return 0
    print(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
