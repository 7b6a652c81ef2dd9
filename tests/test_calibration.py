"""Calibration by simulation: the summary arithmetic by hand, and one real run on a small world."""
import math

import numpy as np
import pandas as pd
import pytest

from evaluation import calibration


def test_summary_by_hand():
    runs = pd.DataFrame({
        "seed": [1, 2, 3, 4, 1], "programme_id": ["a", "a", "a", "a", "b"], "error": ["", "", "", "", "boom"],
        "estimate": [-0.05, -0.02, -0.04, 0.01, np.nan], "se": [0.02, 0.02, 0.03, 0.02, np.nan],
        "truth": [-0.03, -0.03, -0.03, -0.03, -0.01], "covered": [True, True, True, False, None],
        "significant": [True, False, False, False, None]})
    s = calibration.summarise(runs)
    assert list(s.index) == ["a"]  # the failed evaluation is not summarised (the CLI reports it)
    a = s.loc["a"]
    err = np.array([-0.02, 0.01, -0.01, 0.04])
    assert a["worlds"] == 4 and a["bias"] == pytest.approx(err.mean()) and a["sd_estimate"] == pytest.approx(err.std(ddof=1))
    assert a["mean_se"] == pytest.approx(0.0225) and a["coverage"] == 0.75
    assert a["coverage_mcse"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4)) and a["significant"] == 0.25


def test_individual_programmes_are_the_seven():
    assert set(calibration.individual_programmes()) == {"pathways-out", "sos-plus", "mace", "detached-youth-work",
                                           "family-support", "pathway-out-adder", "wonder-plus"}


def test_cli_names_a_programme_without_an_impact_estimate(capsys):
    from evaluation.__main__ import main

    assert main(["calibrate", "--programme", "project-adder"]) == 2
    assert "project-adder" in capsys.readouterr().err


@pytest.mark.slow
def test_one_small_world_end_to_end():
    runs = calibration.calibrate([3], ["wonder-plus", "pathways-out"], scale=0.2)
    assert list(runs["programme_id"]) == ["wonder-plus", "pathways-out"] and runs["error"].eq("").all()
    assert runs["lower"].lt(runs["estimate"]).all() and runs["estimate"].lt(runs["upper"]).all()
    assert runs["truth"].between(-0.5, 0.5).all() and runs["n_treated"].gt(30).all()
    assert runs["covered"].tolist() == [lo <= t <= hi for lo, t, hi in zip(runs["lower"], runs["truth"], runs["upper"])]
