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
    for key, bad in (("funding_gbp", -5), ("funding_gbp", "lots"), ("funding_note", 3)):
        (tmp_path / "wonder-plus.yaml").write_text(yaml.safe_dump({**raw, key: bad}))
        with pytest.raises(ConfigError, match=f"key '{key}'"):
            load_programme("wonder-plus", tmp_path)


def test_no_programme_borrows_another_programmes_funding_fact():
    eiyf = {"pathways-out", "sos-plus", "mace", "detached-youth-work", "family-support", "capacity-building"}
    for pid, prog in load_programmes().items():
        note = prog.get("funding_note") or ""
        assert ("Early Intervention Youth Fund" in note) == (pid in eiyf), pid
