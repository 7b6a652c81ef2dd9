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


# ------------------------------------------------------------------------------ classic cases, margins, exact check
def _equations(t: pd.DataFrame, total_row, total_col):
    """The published additive relations of a table as rows of coefficients over its cells (row-major), written
    independently of the module: column sums when total_row, row sums when total_col; a margin enters with -1."""
    x = t.to_numpy(dtype=float)
    n, m = x.shape
    mr = None if isinstance(total_row, bool) else list(t.index).index(total_row)
    mc = None if isinstance(total_col, bool) else list(t.columns).index(total_col)
    eqs = []
    if total_row is not False:
        for j in range(m):
            e = np.zeros(n * m)
            for i in range(n):
                e[i * m + j] = -1.0 if i == mr else 1.0
            eqs.append(e)
    if total_col is not False:
        for i in range(n):
            e = np.zeros(n * m)
            for j in range(m):
                e[i * m + j] = -1.0 if j == mc else 1.0
            eqs.append(e)
    return np.array(eqs)


def _recoverable_cells(t, mask, total_row, total_col):
    """Suppressed cells a reader can compute exactly from the shown cells and published totals: those for which
    the unit vector lies in the row space of the equations restricted to the suppressed cells."""
    eqs = _equations(t, total_row, total_col)
    hidden = np.flatnonzero(mask.to_numpy().ravel())
    if not len(hidden) or not len(eqs):
        return []
    a = eqs[:, hidden]
    rank = np.linalg.matrix_rank(a)
    out = []
    for k in range(len(hidden)):
        unit = np.zeros(len(hidden))
        unit[k] = 1.0
        if np.abs(a[:, k]).sum() and np.linalg.matrix_rank(np.vstack([a, unit])) == rank:
            out.append(divmod(int(hidden[k]), t.shape[1]))
    return out


def test_row_with_one_small_cell_and_a_total_gets_a_second_cell():
    t = pd.DataFrame({"completed": [20], "disengaged": [3], "ongoing": [9], "not_started": [14]}, index=["Norwich"])
    display, mask = suppress(t, total_row=False, total_col=True)
    assert display.loc["Norwich"].tolist() == [20, SUPPRESSED, SUPPRESSED, 14]  # 9 is the next smallest
    assert _recoverable_cells(t, mask, False, True) == []


def test_margins_inside_the_table():
    t = pd.DataFrame({"a": [3, 10, 13], "b": [8, 12, 20], "Total": [11, 22, 33]}, index=["x", "y", "Total"])
    s = suppress(t, total_row="Total", total_col="Total")
    m = s.mask.to_numpy()
    assert m[0, 0] and m.sum() >= 4  # the 3, and enough partners that no row or column reveals it
    assert _recoverable_cells(t, s.mask, "Total", "Total") == []
    assert s.display.loc["Total", "Total"] == 33  # the grand total survives: hiding interior cells is enough


def test_small_totals_are_suppressed_and_all_small_rows():
    t = pd.DataFrame({"a": [1, 10, 11], "b": [2, 30, 32], "Total": [3, 40, 43]}, index=["x", "y", "Total"])
    s = suppress(t, total_row="Total", total_col="Total")
    assert s.mask.loc["x"].all()  # 1, 2 and their total 3 are all small
    assert _recoverable_cells(t, s.mask, "Total", "Total") == []
    all_small = pd.DataFrame({"a": [1, 12], "b": [2, 15], "c": [4, 9]}, index=["r1", "r2"])
    s = suppress(all_small, total_row=True, total_col=True)
    assert s.mask.loc["r1"].all() and s.mask.loc["r2"].sum() >= 2
    assert _recoverable_cells(all_small, s.mask, True, True) == []


def test_lone_cell_with_only_zeros_beside_it_takes_a_zero_as_partner():
    t = pd.DataFrame({"n": [3, 0, 0]})
    s = suppress(t)  # the column total is 3: the zero is the only cell left to hide it with
    assert s.mask["n"].sum() == 2 and s.mask["n"].iloc[0]


def test_exact_check_catches_a_cell_the_line_rule_misses():
    # two blocks of small cells joined by one small cell: every row and column has >= 2 suppressed cells, yet
    # (rows 0+1 totals) - (columns 0+1 totals) isolates the joining cell (1, 2)
    x = np.full((5, 5), 50)
    for i, j in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 2)]:
        x[i, j] = 2
    t = pd.DataFrame(x, columns=list("abcde"))
    primary = pd.DataFrame(x < 5, columns=list("abcde"))
    assert _recoverable_cells(t, primary, True, True) == [(1, 2)]
    s = suppress(t, total_row=True, total_col=True)
    assert s.mask.to_numpy().sum() > 9 and _recoverable_cells(t, s.mask, True, True) == []


def test_count_cols_and_argument_errors():
    t = pd.DataFrame({"n": [3, 40, 12], "year": [2019, 2020, 2021]})
    s = suppress(t, count_cols=["n"])
    assert s.display["year"].tolist() == [2019, 2020, 2021] and s.mask["n"].sum() == 2
    with pytest.raises(ValueError, match="count_cols.*'missing'"):
        suppress(t, count_cols=["missing"])
    with pytest.raises(ValueError, match="total_row='All'"):
        suppress(t, total_row="All")
    with pytest.raises(ValueError, match="threshold"):
        suppress(t, threshold=0)


@pytest.mark.parametrize("seed", range(60))
def test_property_no_suppressed_cell_recoverable_from_published_totals(seed):
    """Random tables, totals outside or inside (margins), rows/columns/both: primary cells are suppressed and no
    suppressed cell can be computed exactly from the shown cells and the published totals."""
    rng = np.random.default_rng(1000 + seed)
    n, m = rng.integers(1, 7), rng.integers(1, 6)
    x = rng.choice([0, 1, 2, 3, 4, 5, 7, 12, 30, 80], size=(n, m), p=[.1, .12, .1, .08, .1, .1, .1, .1, .1, .1])
    t = pd.DataFrame(x, columns=[f"c{j}" for j in range(m)], index=[f"r{i}" for i in range(n)])
    kind = seed % 4
    if kind == 3:  # margins inside the table
        t["Total"] = t.sum(axis=1)
        t.loc["Total"] = t.sum(axis=0)
        total_row, total_col = "Total", "Total"
    else:
        total_row, total_col = [(True, False), (False, True), (True, True)][kind]
    threshold = int(rng.choice([3, 5, 10]))
    s = suppress(t, threshold=threshold, total_row=total_row, total_col=total_col)
    v = t.to_numpy()
    assert s.mask.to_numpy()[(v >= 1) & (v < threshold)].all()
    left = _recoverable_cells(t, s.mask, total_row, total_col)
    # the only tolerated exception: a line holding a single cell, whose published total *is* that cell
    for i, j in left:
        assert (not isinstance(total_row, str)) and (t.shape[0] == 1 or t.shape[1] == 1), (i, j, t, s.display)


# ---------------------------------------------------------------------------------------------------------------
# Register-wide disclosure control: each leak found in the published reports, as a small constructed case
# ---------------------------------------------------------------------------------------------------------------
import random  # noqa: E402
from fractions import Fraction  # noqa: E402

from evaluation.disclosure import check_register, protect_register, recoverable  # noqa: E402
from evaluation.register import Register  # noqa: E402


def _categories(reg, stem, total_id, values, section="profile"):
    ids = []
    for cat, v in values.items():
        fid = f"{stem}.{cat}"
        reg.count(fid, cat, v, section)
        ids.append(fid)
    reg.relate({**{i: 1.0 for i in ids}, total_id: -1.0}, 0.0, "categories add to the total")
    return ids


def _exactly_determined(reg) -> set[str]:
    """Independent check (exact rational Gaussian elimination, not the SVD of the library): the unknown counts
    whose value the published relations fix."""
    unknown = [k for k, f in reg.figures.items() if f.unit == "people" and f.status != "shown" and f.value is not None]
    pos = {k: i for i, k in enumerate(unknown)}
    rows = []
    for r in reg.relations:
        if any(reg.figures[v].status != "shown" for v in r.via):
            continue
        row = [Fraction(0)] * len(unknown)
        for k, c in r.terms.items():
            if k in pos:
                row[pos[k]] += Fraction(c)
        if any(row):
            rows.append(row)
    # reduced row echelon form
    piv_cols, r = [], 0
    for c in range(len(unknown)):
        p = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if p is None:
            continue
        rows[r], rows[p] = rows[p], rows[r]
        rows[r] = [x / rows[r][c] for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                rows[i] = [a - rows[i][c] * b for a, b in zip(rows[i], rows[r])]
        piv_cols.append(c)
        r += 1
    fixed = set()
    for i, c in enumerate(piv_cols):
        if all(rows[i][j] == 0 for j in range(len(unknown)) if j != c):
            fixed.add(unknown[c])
    return fixed


def _leaks(reg) -> set[str]:
    t = reg.threshold
    out = {k for k, f in reg.figures.items() if f.unit == "people" and f.status == "shown" and 0 < f.value < t}
    for k in _exactly_determined(reg):
        f = reg.figures[k]
        if f.status == "suppressed" or 0 < f.value < t:
            out.add(k)
    return out


@pytest.mark.parametrize("rounding", [True, False])
def test_sos_plus_sex_unknown_is_not_134_minus_33_minus_100(rounding):
    reg = Register(threshold=5)
    reg.count("n.participants", "N", 134, "headline", exact=True)
    _categories(reg, "profile.sex", "n.participants", {"female": 33, "male": 100, "unknown": 1})
    assert _leaks(reg) == {"profile.sex.unknown"}
    protect_register(reg, round_sections=("profile",) if rounding else ())
    assert reg.checked and not _leaks(reg)
    assert reg["profile.sex.unknown"].status == "suppressed"
    assert reg["n.participants"].status == "shown"  # the one N stays


def test_mace_ethnicity_other_is_not_250_minus_248():
    reg = Register(threshold=5)
    reg.count("n.participants", "N", 250, "headline", exact=True)
    _categories(reg, "profile.ethnicity", "n.participants", {"white": 230, "black": 10, "mixed": 8, "other": 2})
    protect_register(reg, round_sections=())
    assert not _leaks(reg) and reg["profile.ethnicity.other"].status == "suppressed"
    assert sum(f.status == "suppressed" for f in reg.figures.values()) >= 2


@pytest.mark.parametrize("rounding", [True, False])
def test_attrition_850_to_849_does_not_reveal_one_unmatched(rounding):
    reg = Register(threshold=5)
    reg.count("attrition.eligible.participants", "Eligible", 850, "attrition")
    reg.count("attrition.matched.participants", "Matched", 849, "attrition", exact=True)
    reg.difference("attrition.eligible.participants", "attrition.matched.participants", "hidden.unmatched",
                   "unmatched", "attrition", "consecutive stages")
    assert _leaks(reg) == {"hidden.unmatched"}
    protect_register(reg, round_sections=("attrition",) if rounding else ())
    assert not _leaks(reg)
    assert reg["attrition.matched.participants"].status == "shown"
    if rounding:
        assert reg["attrition.eligible.participants"].shown == 850 and reg["attrition.eligible.participants"].status == "rounded"


def test_prematch_against_matched_reoffenders_does_not_reveal_the_unmatched_persons_outcome():
    reg = Register(threshold=5)
    reg.count("reoffenders.prematch", "pre-match reoffenders", 188, "headline")
    reg.count("reoffenders.participants", "matched reoffenders", 187, "headline", exact=True)
    reg.difference("reoffenders.prematch", "reoffenders.participants", "hidden.unmatched_reoffenders", "x",
                   "headline", "pre-match minus matched")
    assert _leaks(reg) == {"hidden.unmatched_reoffenders"}
    protect_register(reg, round_sections=())
    assert not _leaks(reg) and reg["reoffenders.prematch"].status == "suppressed"


@pytest.mark.parametrize("rounding", [True, False])
def test_adjacent_risk_table_rows_do_not_reveal_one_to_three_events(rounding):
    reg = Register(threshold=5)
    values = [41, 40, 38, 35, 35, 30]
    reg.count("n.participants", "N", 41, "headline", exact=True)
    prev = None
    for k, v in enumerate(values):
        fid = f"risk.participants.day{60 * k}"
        reg.count(fid, fid, v, "risk", exact=k == 0)
        if prev is None:
            reg.relate({fid: 1.0, "n.participants": -1.0}, 0.0, "day 0 = N")
        else:
            reg.difference(prev, fid, f"hidden.step{k}", "step", "risk", "adjacent rows")
        prev = fid
    assert _leaks(reg)
    protect_register(reg, round_sections=("risk",) if rounding else ())
    assert reg.checked and not _leaks(reg)


def test_count_behind_a_published_rate_and_denominator_is_protected():
    reg = Register(threshold=5)
    reg.count("n.participants", "N", 41, "headline", exact=True)
    reg.add("fte.participants", "rate", 2 / 41, "proportion", "headline")
    reg.add("fte.difference", "difference", 2 / 41 - 0.04, "pp", "headline")
    reg.add("fte.comparison", "comparison rate", 0.04, "proportion", "headline")
    reg.count("hidden.fte", "first-time entrants", 2, "headline", hidden=True)
    reg.relate({"hidden.fte": 1.0}, 2.0, "rate x N", via=("fte.participants",))
    reg.together(["fte.participants", "fte.difference"])
    protect_register(reg, round_sections=())
    assert reg["fte.participants"].status == "withheld" and reg["fte.difference"].status == "withheld"
    assert reg["fte.comparison"].status == "shown"


def test_a_register_that_leaks_fails_the_check():
    reg = Register(threshold=5)
    reg.count("n.participants", "N", 134, "headline", exact=True)
    _categories(reg, "p", "n.participants", {"a": 33, "b": 100, "c": 1})
    reg["p.c"].status, reg["p.c"].shown = "suppressed", "[c]"  # primary only: 134 - 33 - 100 gives it back
    with pytest.raises(DisclosureError, match="p.c"):
        check_register(reg)
    assert not reg.checked


def test_subanalysis_against_main_analysis():
    """Completers are a subset of the analysed participants: the non-completers who reoffended are N - n."""
    reg = Register(threshold=5)
    reg.count("reoffenders.participants", "main", 187, "headline", exact=True)
    reg.count("completers.reoffenders.participants", "completers", 185, "headline", exact=True)
    reg.difference("reoffenders.participants", "completers.reoffenders.participants", "hidden.rest", "rest",
                   "headline", "main minus completers")
    with pytest.raises(DisclosureError):
        check_register(reg)
    protect_register(reg, round_sections=())
    assert not _leaks(reg)


def test_property_no_suppressed_or_small_count_is_derivable_after_protection():
    """Random registers (tables with margins, attrition chains, pre-match vs matched pairs, subsets): after
    protection, the library's check passes *and* an independent exact (rational) elimination finds no leak."""
    rng = random.Random(7)
    for trial in range(300):
        reg = Register(threshold=rng.choice([3, 5, 10]))
        n = rng.randint(5, 400)
        reg.count("n.participants", "N", n, "headline", exact=True)
        for t in range(rng.randint(1, 3)):  # profile-like tables adding to N
            k = rng.randint(2, 5)
            cuts = sorted(rng.randint(0, n) for _ in range(k - 1))
            vals = [b - a for a, b in zip([0] + cuts, cuts + [n])]
            _categories(reg, f"profile.t{t}", "n.participants", {f"c{i}": v for i, v in enumerate(vals)},
                        section=rng.choice(["profile", "headline"]))
        prev, v = None, n + rng.randint(0, 6)
        for s in range(rng.randint(1, 4)):  # attrition chain ending at N
            fid = f"attrition.s{s}.participants"
            reg.count(fid, fid, v, rng.choice(["attrition", "headline"]))
            if prev:
                reg.difference(prev, fid, f"hidden.step{s}", "step", "attrition", "steps")
            prev, v = fid, v + rng.randint(0, 6)
        reg.difference("attrition.s0.participants", "n.participants", "hidden.unmatched", "u", "attrition", "x")
        rounds = rng.choice([(), ("profile", "attrition")])
        protect_register(reg, round_sections=rounds)
        assert reg.checked
        assert not _leaks(reg), (trial, _leaks(reg))
        assert set(recoverable(reg)) == set()
