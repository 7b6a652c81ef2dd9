import pytest
import yaml

from evaluation.config import PROGRAMME_IDS, ConfigError, load_programme, load_programmes, parse_programme


def test_all_nine_programmes_load_with_their_facts():
    progs = load_programmes()
    assert list(progs) == list(PROGRAMME_IDS)
    assert progs["pathway-out-adder"].get("funding_gbp") == 95000
    assert progs["pathways-out"].start.isoformat() == "2019-04-01"
    assert progs["wonder-plus"].start.isoformat() == "2018-03-01"
    assert progs["project-adder"].design == "area" and not progs["project-adder"].is_individual
    assert progs["capacity-building"].design == "delivery"
    assert all(p.disclosure_threshold == 5 for p in progs.values())


def _raw(pid="pathways-out"):
    return yaml.safe_load(load_programme(pid).path.read_text())


@pytest.mark.parametrize("key", ["id", "name", "provider", "start", "end", "design"])
def test_missing_required_key_is_named(key):
    raw = _raw()
    del raw[key]
    with pytest.raises(ConfigError, match=f"key '{key}': is required"):
        parse_programme(raw, "pathways-out.yaml")


@pytest.mark.parametrize("key, value, message", [
    ("start", "2019-13-01", "not a date"),
    ("design", "cluster_rct", "not one of"),
    ("id", "pathway-in", "unknown programme"),
    ("end", "2018-01-01", "before start"),
    ("index_date", "release_date", "must be 'referral_date' or 'start_date'"),
])
def test_bad_values_name_the_key(key, value, message):
    raw = _raw()
    raw[key] = value
    with pytest.raises(ConfigError, match=f"key '{key}'.*{message}"):
        parse_programme(raw, "pathways-out.yaml")


@pytest.mark.parametrize("path, value, message", [
    (("matching", "ratio"), 0, "matching.ratio"),
    (("matching", "ratio"), "three", "matching.ratio"),
    (("matching", "covariates"), [], "matching.covariates"),
    (("outcome", "follow_up_months"), -1, "outcome.follow_up_months"),
    (("disclosure", "threshold"), 0, "disclosure.threshold"),
])
def test_bad_nested_values_name_the_key(path, value, message):
    raw = _raw()
    raw[path[0]][path[1]] = value
    with pytest.raises(ConfigError, match=message):
        parse_programme(raw, "pathways-out.yaml")


def test_file_name_must_match_id_and_missing_file(tmp_path):
    raw = _raw()
    (tmp_path / "sos-plus.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="does not match the file name"):
        load_programme("sos-plus", tmp_path)
    with pytest.raises(ConfigError, match="no configuration"):
        load_programme("mace", tmp_path)
    (tmp_path / "mace.yaml").write_text("id: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_programme("mace", tmp_path)


def test_funding_keys_are_checked(tmp_path):
    from evaluation.config import programmes_dir

    raw = yaml.safe_load((programmes_dir() / "wonder-plus.yaml").read_text())
    for key, bad in (("funding_gbp", -5), ("funding_gbp", "lots"), ("funding_gbp", float("nan")),
                     ("funding_gbp", float("inf")), ("funding_note", 3)):
        (tmp_path / "wonder-plus.yaml").write_text(yaml.safe_dump({**raw, key: bad}))
        with pytest.raises(ConfigError, match=f"key '{key}'"):
            load_programme("wonder-plus", tmp_path)


def test_no_programme_borrows_another_programmes_funding_fact():
    eiyf = {"pathways-out", "sos-plus", "mace", "detached-youth-work", "family-support", "capacity-building"}
    for pid, prog in load_programmes().items():
        note = prog.get("funding_note") or ""
        assert ("Early Intervention Youth Fund" in note) == (pid in eiyf), pid


# ---------------------------------------------------------------------------------------------------------------
# typed configuration: every mistake of issue 12 is a clear load-time error naming the file and the key
# ---------------------------------------------------------------------------------------------------------------
BASE = """\
id: pathways-out
name: Pathways Out
provider: Mancroft Advice Project (MAP)
start: 2019-04-01
end: 2020-03-31
design: individual
target_group: {min_age: 10, max_age: 17, districts: [Norwich, Great Yarmouth], sex: any}
index_date: start_date
outcome: {follow_up_months: 12, waiting_months: 6, measure: first_proven_offending_or_reoffending}
matching:
  covariates: [age, male, prior_offences]
  ratio: 3
  replace: false
  caliper: 0.2
disclosure: {threshold: 5}
"""


def _load(tmp_path, text):
    (tmp_path / "pathways-out.yaml").write_text(text)
    return load_programme("pathways-out", tmp_path)


def _edit(old, new):
    assert old in BASE, old
    return BASE.replace(old, new)


def test_base_text_loads(tmp_path):
    p = _load(tmp_path, BASE)
    assert p.outcome.follow_up_months == 12 and p.matching.caliper == 0.2 and p.disclosure.threshold == 5
    assert p.target_group.districts == ("Norwich", "Great Yarmouth") and p.config_notes == ()


@pytest.mark.parametrize("old, new, key, suggestion", [
    ("disclosure: {threshold: 5}", "disclosure: {threshhold: 10}", "disclosure.threshhold", "threshold"),
    ("  caliper: 0.2", "  calipre: 0.01", "matching.calipre", "caliper"),
    ("follow_up_months: 12,", "follow_up_month: 24,", "outcome.follow_up_month", "follow_up_months"),
    ("design: individual", "design: individual\ndesing: area", "desing", "design"),
])
def test_unknown_keys_get_did_you_mean(tmp_path, old, new, key, suggestion):
    with pytest.raises(ConfigError, match=rf"pathways-out.yaml: key '{key}': unknown key; did you mean '{suggestion}'"):
        _load(tmp_path, _edit(old, new))


def test_unknown_covariate_gets_did_you_mean(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'matching.covariates': unknown value\(s\) 'agee' \(did you mean 'age'"):
        _load(tmp_path, _edit("covariates: [age,", "covariates: [agee,"))


@pytest.mark.parametrize("old, new, key", [
    ("disclosure: {threshold: 5}", "disclosure: {threshold: yes}", "disclosure.threshold"),
    ("  ratio: 3", "  ratio: true", "matching.ratio"),
    ("follow_up_months: 12,", "follow_up_months: yes,", "outcome.follow_up_months"),
])
def test_yaml_booleans_are_not_numbers(tmp_path, old, new, key):
    with pytest.raises(ConfigError, match=rf"key '{key}': must be a whole number, got true \(a YAML boolean"):
        _load(tmp_path, _edit(old, new))


@pytest.mark.parametrize("threshold", [1, 3, 4])
def test_disclosure_threshold_below_policy_minimum_refused(tmp_path, threshold):
    with pytest.raises(ConfigError, match=rf"key 'disclosure.threshold': {threshold} is below the policy minimum of "
                                          r"5.*override_reason"):
        _load(tmp_path, _edit("disclosure: {threshold: 5}", f"disclosure: {{threshold: {threshold}}}"))


def test_disclosure_override_is_explicit_and_reported(tmp_path):
    p = _load(tmp_path, _edit("disclosure: {threshold: 5}",
                              'disclosure: {threshold: 3, override_reason: "agreed with the data owner"}'))
    assert p.disclosure_threshold == 3 and p.disclosure.override_reason == "agreed with the data owner"
    assert p.config_notes == ("Disclosure threshold 3 is below the policy minimum of 5: agreed with the data owner",)
    with pytest.raises(ConfigError, match="key 'disclosure.override_reason': only for a threshold below"):
        _load(tmp_path, _edit("disclosure: {threshold: 5}", 'disclosure: {threshold: 10, override_reason: "x"}'))
    p = _load(tmp_path, _edit("disclosure: {threshold: 5}", "disclosure: {threshold: 10}"))
    assert p.disclosure_threshold == 10


@pytest.mark.parametrize("old, new, key, message", [
    ("districts: [Norwich, Great Yarmouth]", "districts: Norwich", "target_group.districts",
     r"must be a list or 'all' \(write \[Norwich\]\), got the text 'Norwich'"),
    ("covariates: [age, male, prior_offences]", "covariates: age", "matching.covariates",
     r"must be a list \(write \[age\]\)"),
    ("  caliper: 0.2", "  caliper: wide", "matching.caliper", "must be a number, got the text 'wide'"),
    ("min_age: 10", "min_age: ten", "target_group.min_age", "must be a whole number, got the text 'ten'"),
    ("sex: any", "sex: male", "target_group.sex", "'male' is not one of M, F, any"),
    ("  caliper: 0.2", "  caliper: 0", "matching.caliper", "must be > 0, got 0"),
    ("  caliper: 0.2", "  caliper: -0.1", "matching.caliper", r"must be > 0, got -0.1"),
    ("  caliper: 0.2", "  caliper: .nan", "matching.caliper", r"must be a finite number, got nan"),  # NaN > 0 passed
    ("  caliper: 0.2", "  caliper: .inf", "matching.caliper", r"must be a finite number, got inf"),
    ("follow_up_months: 12,", "follow_up_months: 0,", "outcome.follow_up_months", "must be ≥ 1, got 0"),
    ("start: 2019-04-01", "start: 2019-13-01", "start", "'2019-13-01' is not a date"),
    ("end: 2020-03-31", "end: 2020-02-30", "end", "'2020-02-30' is not a date"),
    ("max_age: 17", "max_age: 9", "target_group.max_age", "9 is below min_age 10"),
    ("  replace: false", "  replace: no thanks", "matching.replace", "must be true or false"),
    ("measure: first_proven_offending_or_reoffending", "measure: reoffending", "outcome.measure",
     "must be 'proven_reoffending' or 'first_proven_offending_or_reoffending', got 'reoffending'"),
])
def test_wrong_types_and_limits_are_load_errors(tmp_path, old, new, key, message):
    with pytest.raises(ConfigError, match=rf"pathways-out.yaml: key '{key}': {message}"):
        _load(tmp_path, _edit(old, new))


def test_bad_date_is_not_a_pyyaml_traceback(tmp_path):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, _edit("start: 2019-04-01", "start: 2019-13-01"))
    assert e.value.__cause__ is None and "month must be in" not in str(e.value)


def test_duplicate_keys_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'design': given twice \(lines 6 and 7\)"):
        _load(tmp_path, _edit("design: individual", "design: individual\ndesign: area"))
    with pytest.raises(ConfigError, match=r"key 'ratio': given twice"):
        _load(tmp_path, _edit("  ratio: 3", "  ratio: 3\n  ratio: 1"))


def test_new_optional_keys_are_accepted(tmp_path):
    text = _edit("measure: first_proven_offending_or_reoffending}",
                 "measure: first_proven_offending_or_reoffending, label: proven offending (first or repeat), "
                 "first_time_entrants: true}")
    text += "assumed: [funding_gbp, targets.participants]\nete: {outcomes: [employment], months: 6}\n"
    p = _load(tmp_path, text)
    assert p.outcome.label == "proven offending (first or repeat)" and p.outcome["first_time_entrants"] is True
    assert p.get("assumed") == ["funding_gbp", "targets.participants"] and p.get("ete")["months"] == 6
    with pytest.raises(ConfigError, match="key 'assumed': must be a list"):
        _load(tmp_path, BASE + "assumed: funding_gbp\n")


def test_typed_options_keep_mapping_access():
    p = load_programme("pathways-out")
    assert p.outcome["follow_up_months"] == 12 and p.outcome.get("waiting_months") == 6
    assert p.outcome.get("label") == "proven offending (first or repeat)" and p.outcome.get("nonsense", "x") == "x"
    assert p.matching.get("caliper") == 0.2 and int(p.matching["ratio"]) == 3 and "covariates" in p.matching
    assert list(p.matching.get("covariates", [])) == ["age", "male", "prior_offences", "prior_drug", "drug_misuse",
                                                      "norwich"]
    assert dict(p.matching)["replace"] is False and {**p.outcome}["measure"] == "first_proven_offending_or_reoffending"
    assert p.disclosure_threshold == 5 and p.get("funding_gbp") is None and p.funding.gbp is None
    assert load_programme("pathway-out-adder").funding.gbp == 95000
    assert p.target_group["districts"] == ("Norwich", "Great Yarmouth")
    assert load_programme("mace").target_group.districts is None  # 'all'


def test_schema_keys_are_documented_in_the_readme():
    from evaluation.config import SCHEMA, programmes_dir

    readme = (programmes_dir() / "README.md").read_text()
    for key, spec in SCHEMA.items():
        assert f"`{key}`" in readme, key
        for sub in (spec.keys or {}):
            assert f"`{sub}`" in readme, f"{key}.{sub}"


def test_covariates_are_the_ones_the_cohort_builds():
    from evaluation.cohort import COHORT_COLUMNS
    from evaluation.config import COVARIATES, EXACT_ONLY

    built = [c for c in COHORT_COLUMNS if c not in ("person_id", "treat", "index_date", "completion_status")]
    assert sorted(built) == sorted(COVARIATES + EXACT_ONLY)


def test_config_error_is_an_evaluation_error():
    from evaluation.errors import EvaluationError

    assert issubclass(ConfigError, EvaluationError) and issubclass(ConfigError, ValueError)
