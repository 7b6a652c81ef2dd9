import numpy as np
import pandas as pd
import pytest

from evaluation.disclosure import SUPPRESSED, DisclosureError, check_published, safe_count, suppress


def test_primary_suppresses_one_to_four_not_zero():
    t = pd.DataFrame({"n": [0, 1, 4, 5, 120]}, index=list("abcde"))
    s = suppress(t, total_row=False)
    assert list(s.display["n"]) == [0, SUPPRESSED, SUPPRESSED, 5, 120]
    assert s.mask["n"].tolist() == [False, True, True, False, False]
    assert np.isnan(s.values.loc["b", "n"]) and s.values.loc["d", "n"] == 5


def test_zero_can_be_suppressed_when_asked():
    s = suppress(pd.DataFrame({"n": [0, 9, 9]}), suppress_zero=True, total_row=False)
    assert s.display["n"].tolist() == [SUPPRESSED, 9, 9]


def test_lone_small_cell_in_a_column_gets_a_secondary_partner():
    t = pd.DataFrame({"participants": [3, 40, 12, 25]}, index=["a", "b", "c", "d"])
    s = suppress(t)
    assert s.mask["participants"].tolist() == [True, False, True, False]  # 12 is the next smallest


def test_zeros_are_not_used_as_secondary_cells():
    t = pd.DataFrame({"n": [2, 0, 30, 9]})
    s = suppress(t)
    assert s.mask["n"].tolist() == [True, False, False, True]


def test_secondary_iterates_across_rows_and_columns():
    t = pd.DataFrame({"x": [2, 10, 20], "y": [10, 7, 30]}, index=["r1", "r2", "r3"])
    s = suppress(t, total_row=True, total_col=True)
    m = s.mask.to_numpy()
    # every row and column has 0 or at least 2 suppressed cells
    for line in list(m) + list(m.T):
        assert line.sum() != 1


def test_non_count_columns_are_left_alone_and_bad_counts_refused():
    t = pd.DataFrame({"label": ["a", "b"], "n": [3, 50]})
    assert suppress(t, total_row=False).display["label"].tolist() == ["a", "b"]
    with pytest.raises(ValueError, match="column 'n' row '1' is not a count"):
        suppress(pd.DataFrame({"n": [3, 2.5]}))


@pytest.mark.parametrize("seed", range(25))
def test_no_suppressed_cell_can_be_recovered_from_published_totals(seed):
    rng = np.random.default_rng(seed)
    t = pd.DataFrame(rng.choice([0, 1, 2, 3, 4, 6, 9, 15, 40], size=(5, 3)), columns=list("abc"))
    s = suppress(t, total_row=True, total_col=True)
    m = s.mask.to_numpy()
    x = t.to_numpy()
    for j in range(3):  # column total minus shown cells = sum of suppressed cells
        hidden = m[:, j]
        if hidden.any():
            # the residual mixes at least two cells, unless the others are zero (nothing left to combine with)
            assert hidden.sum() >= 2 or (x[~hidden, j] > 0).sum() == 0
    for i in range(5):
        hidden = m[i]
        if hidden.any():
            assert hidden.sum() >= 2 or (x[i, ~hidden] > 0).sum() == 0


def test_safe_count():
    assert safe_count(0) == 0 and safe_count(3) == SUPPRESSED and safe_count(5) == 5 and safe_count(None) is None
    assert safe_count(9, threshold=10) == SUPPRESSED


def test_check_published_names_the_key_path():
    check_published({"headline": {"participants": 0.14}, "attrition": [{"stage": "x", "participants": "[c]"}]})
    with pytest.raises(DisclosureError, match=r"attrition\[1\]\.comparison"):
        check_published({"attrition": [{"comparison": 7}, {"comparison": 3}]})
    check_published({"per_100_participants": 3, "number_needed": 2, "rate": 3})  # not counts of people
