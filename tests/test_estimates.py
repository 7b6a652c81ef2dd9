"""The estimates stage: one call per programme, everything published passes disclosure control."""
import json

import pandas as pd
import pytest

from evaluation.estimates import evaluate_programme


@pytest.fixture(scope="module")
def world(small_world_namespace):
    return small_world_namespace


@pytest.fixture(scope="module")
def wonder(world):
    return evaluate_programme(world, "wonder-plus")


def test_headline_has_the_three_jdl_measures(wonder):
    head = wonder.headline_table()
    assert list(head.index[:2]) == ["One-year proven reoffending rate", "Frequency (proven reoffences per person)"]
    assert {"participants", "comparison", "difference", "lower", "upper", "p_value", "significant"} <= set(head.columns)
    r = head.iloc[0]
    assert r["lower"] <= r["difference"] <= r["upper"]
    assert r["difference"] == pytest.approx(r["participants"] - r["comparison"])


def test_attrition_runs_from_referral_to_matched(wonder):
    att = wonder.attrition.set_index("stage")
    assert att.index[0] == "Referred"
    assert att.index[-1] == "Matched"
    assert att.loc["Matched", "participants"] <= att.loc["Referred", "participants"]


def test_completers_analysis_is_secondary_and_caveated(wonder):
    sub = wonder.subanalyses["completers"]
    assert sub.n_treated < wonder.n_treated
    assert any("selected group" in n for n in sub.notes)


def test_results_are_json_and_pass_disclosure_and_hold_no_person_ids(wonder, small_world_tables):
    from evaluation.disclosure import check_published

    res = wonder.results()
    check_published(res)
    text = json.dumps(res)
    ids = small_world_tables["people"]["person_id"].astype(str)
    assert not any(pid in text for pid in ids.sample(2000, random_state=1))
    assert res["figures"]["rate.difference"]["p_value"] is not None


def test_small_programme_is_honest_about_power(world):
    ev = evaluate_programme(world, "pathways-out")
    assert ev.n_treated < 60
    assert any("at least 60" in n for n in ev.notes)
    assert not ev.headline_table()["significant"].any()  # fewer than 30 reoffenders
    assert ev.power["mdd"] > 0


def test_non_individual_programme_is_refused(world):
    with pytest.raises(ValueError, match="no individual participants"):
        evaluate_programme(world, "project-adder")


def test_display_tables_put_the_index_name_in_the_header_corner():
    import pandas as pd

    from evaluation.report.content import table

    df = pd.DataFrame({"n": [1, 2]}, index=pd.Index(["a", "b"], name="stage"))
    html = table(df).to_html()
    assert html.count("<tr") == 3  # one header row, not two
    assert "Stage" in html and table(df)["n"].tolist() == [1, 2]
    multi = df.set_index(pd.MultiIndex.from_tuples([("x", "a"), ("x", "b")], names=["k", "g"]))
    assert table(multi) is multi
