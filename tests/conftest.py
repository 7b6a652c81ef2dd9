"""Shared fixtures: a small synthetic world, built once per test session."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

SMALL_WORLD_SEED = 20190401
SMALL_WORLD_SCALE = 0.2


@pytest.fixture(scope="session", autouse=True)
def _private_validated_cache(tmp_path_factory):
    """Validated-world caches go to a folder of this session, not the repository's data/processed (the variable
    is inherited by the papermill kernels and build workers the tests start)."""
    import os

    old = os.environ.get("EVALUATION_CACHE")
    os.environ["EVALUATION_CACHE"] = str(tmp_path_factory.mktemp("validated_cache"))
    yield
    if old is None:
        os.environ.pop("EVALUATION_CACHE", None)
    else:
        os.environ["EVALUATION_CACHE"] = old


@pytest.fixture(scope="session")
def _small_world_build(tmp_path_factory) -> tuple[Path, dict[str, pd.DataFrame]]:
    from evaluation.synth import generate_world

    out = tmp_path_factory.mktemp("small_world")
    tables = generate_world(SMALL_WORLD_SEED, out=out, scale=SMALL_WORLD_SCALE)
    return out, tables


@pytest.fixture(scope="session")
def small_world(_small_world_build) -> Path:
    """Folder of a small synthetic world (seed 20190401, scale 0.2): canonical CSVs, truth.json, meta.json.

    Programme cohorts are full size (Pathways Out 46, WONDER+ 850, ...); the comparison pools are 0.2 of the
    default (youth 2,400; women 4,000; adults with drug links 1,000). Treat it as read-only: it is shared by the
    whole session.
    """
    return _small_world_build[0]


@pytest.fixture(scope="session")
def small_world_tables(_small_world_build) -> dict[str, pd.DataFrame]:
    """The tables of :func:`small_world` as returned by ``generate_world`` (dates datetime64[ns]). Do not mutate."""
    return _small_world_build[1]


@pytest.fixture(scope="session")
def small_world_namespace(small_world_tables):
    """The small world's tables as an object with attributes (``world.offences`` …) and its extract date, as
    :func:`evaluation.estimates.evaluate_programme` takes a world. Do not mutate."""
    import types

    w = types.SimpleNamespace(**small_world_tables)
    w.extract_date = pd.Timestamp("2024-12-31").date()
    return w
