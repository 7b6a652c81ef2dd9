"""The hostile-extract corpus (tests/hostile/data/): every bad extract gets its stated behaviour, and no message
quotes an identifying value of the world (issue 10, 'Critical 2 and 3')."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.validate import DataError, default_cache_dir, load_world, validate_world

HERE = Path(__file__).parent / "hostile" / "data"
_spec = importlib.util.spec_from_file_location("hostile_cases", HERE / "cases.py")
cases = importlib.util.module_from_spec(_spec)
sys.modules["hostile_cases"] = cases
_spec.loader.exec_module(cases)


@pytest.mark.parametrize("case", cases.CASES, ids=lambda c: c.name)
def test_hostile_extract(tmp_path, case):
    folder = tmp_path / "world"
    case.write(folder, cases.good_tables())
    kw = case.expect.load_kw or {}
    if isinstance(case.expect, cases.Loads):
        world = load_world(folder, **kw)
        assert case.expect.check(world)
        return
    with pytest.raises(DataError) as info:
        load_world(folder, **kw)
    exc = info.value
    msg = str(exc)
    assert re.search(case.expect.pattern, msg), msg
    if case.expect.column is not None:
        assert f"'{case.expect.column}'" in msg and exc.column == case.expect.column
    if case.expect.lines is not None:
        assert tuple(exc.lines) == case.expect.lines
    leaked = [v for v in cases.identifying_values() if v in msg]
    assert not leaked, f"identifying values in the message: {leaked}"
    assert "Traceback" not in msg and "\n" not in msg
    # the validation report says the same, also without identifying values
    report = validate_world(folder, **{k: v for k, v in kw.items()})
    assert not report.ok and not [v for v in cases.identifying_values() if v in report.to_text()]


def test_readme_lists_every_case():
    readme = (HERE / "README.md").read_text()
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", readme, flags=re.M))
    assert listed == {c.name for c in cases.CASES}


def test_cli_never_prints_identifying_values_unless_asked(tmp_path):
    folder = tmp_path / "world"
    cases.CASES[[c.name for c in cases.CASES].index("unknown-person")].write(folder, cases.good_tables())
    run = [sys.executable, "-m", "evaluation", "validate", "--world", str(folder)]
    quiet = subprocess.run(run, capture_output=True, text=True)
    assert quiet.returncode == 2 and "person not in the people table" in quiet.stdout
    assert "NFK.004212" not in quiet.stdout + quiet.stderr and "Traceback" not in quiet.stderr
    loud = subprocess.run(run + ["--show-values"], capture_output=True, text=True)
    assert loud.returncode == 2 and "NFK.004212" in loud.stderr and "NFK.004212" not in loud.stdout


def test_validated_cache_is_not_in_the_repository(monkeypatch):
    from evaluation.config import repo_root

    for var in ("EVALUATION_CACHE_DIR", "EVALUATION_CACHE"):
        monkeypatch.delenv(var, raising=False)
    assert repo_root().resolve() not in default_cache_dir().resolve().parents
