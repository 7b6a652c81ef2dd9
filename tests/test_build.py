"""The report build: papermill per programme in parallel, atomic publication, skip cache, manifest, disclosure.

End-to-end tests use the tiny templates in tests/fixtures/notebooks (injected through the design → template
mapping) on the session's small synthetic world; one slow test runs the real templates.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from evaluation.report import build as b
from evaluation.report import render

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
TINY = str(FIXTURES / "tiny_report.ipynb")
FAILING = str(FIXTURES / "failing_report.ipynb")
LEAKY = str(FIXTURES / "leaky_report.ipynb")
ALL_TINY = {d: TINY for d in b.TEMPLATES_BY_DESIGN}
# one programme of each kind of design: individual, delivery, area
SOME = ["pathways-out", "capacity-building", "project-adder"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evaluation", "build", "--no-progress", *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def _pdf_pages(path: Path) -> list:
    import pypdf  # a dev dependency (not poppler): the person-id scan of PDFs runs the same everywhere, never skipped

    return pypdf.PdfReader(str(path)).pages


def _pdf_text(path: Path) -> str:
    """The PDF's text, pages separated by form feeds."""
    return "\f".join(page.extract_text() or "" for page in _pdf_pages(path))


def _all_output_text(reports: Path) -> dict[str, str]:
    texts = {}
    for p in reports.rglob("*"):
        if not p.is_file() or ".failed" in p.parts:
            continue
        if p.suffix == ".pdf":
            texts[str(p)] = _pdf_text(p)
        elif p.suffix in (".ipynb", ".html", ".json"):
            texts[str(p)] = p.read_text(encoding="utf-8", errors="replace")
    return texts


def _assert_no_person_ids(reports: Path, world: Path) -> int:
    ids = set(pd.read_csv(world / "people.csv", usecols=["person_id"], dtype=str)["person_id"])
    assert ids and all(re.fullmatch(r"P\d{7}", i) for i in list(ids)[:100])
    texts = _all_output_text(reports)
    assert any(k.endswith(".pdf") for k in texts) and any(k.endswith(".ipynb") for k in texts)
    for name, text in texts.items():
        found = set(re.findall(r"P\d{7}", text)) & ids
        assert not found, f"{name} holds person ids {sorted(found)[:5]}"
    return len(texts)


# ------------------------------------------------------------------------------------------- fast unit tests
def test_formats_are_checked_and_ordered():
    assert b.parse_formats("pdf,ipynb") == ("ipynb", "pdf")
    assert b.parse_formats(" HTML ") == ("html",)
    with pytest.raises(b.BuildError, match="--formats: unknown format.*docx"):
        b.parse_formats("html,docx")
    with pytest.raises(b.BuildError, match="--formats"):
        b.parse_formats("")


def test_template_is_chosen_by_design():
    from evaluation.config import load_programmes

    chosen = {pid: b.TEMPLATES_BY_DESIGN[p.design] for pid, p in load_programmes().items()}
    assert chosen["wonder-plus"] == chosen["sos-plus"] == "programme_report.ipynb"
    assert chosen["project-adder"] == "area_report.ipynb"
    assert chosen["capacity-building"] == "delivery_report.ipynb"


def test_publish_replaces_atomically_and_keeps_nothing_old(tmp_path):
    final = tmp_path / "p"
    final.mkdir()
    (final / "report.pdf").write_text("old")
    (final / "stale.txt").write_text("old only")
    staging = tmp_path / ".staging" / "p-1"
    staging.mkdir(parents=True)
    (staging / "report.pdf").write_text("new")
    b.publish(staging, final)
    assert (final / "report.pdf").read_text() == "new" and not (final / "stale.txt").exists()
    assert not staging.exists() and sorted(x.name for x in tmp_path.iterdir()) == [".staging", "p"]


def test_person_id_scan_finds_whole_tokens_only():
    ids = {"P0000123", "P0000999", "1234"}
    hits = b.find_person_ids({"a.html": "<td>P0000123</td> XP0000999 count 1234 in 2019"}, ids)
    assert hits == [("a.html", "P0000123")]  # XP0000999 is another token; 4-digit numbers are figures or years


def test_guard_finds_ids_of_any_shape_but_not_figures():
    from evaluation.report.guard import Identifiers, find_identifiers

    ids = Identifiers.from_values(["AB/1234/56", "NFK.004211", "1234567", "AB123", "98765", "004", "2019", "12"],
                                  ["1985-03-12"])
    assert ids.unsearchable == 2  # "2019" and "12" cannot be told from a year and a count
    text = ("ref AB/1234/56, see NFK.004211; case 1234567 and ab123 (lower case) in x/98765/y; code 004. "
            "Born 12 March 1985; also 12/03/1985.")
    found = {(f.kind, f.value) for f in find_identifiers({"r.html": text}, ids)}
    assert {v for k, v in found if k == "person id"} == {"AB/1234/56", "NFK.004211", "1234567", "ab123", "98765",
                                                          "004"}
    assert {v for k, v in found if k == "date of birth"} == {"12 March 1985", "12/03/1985"}
    ordinary = ("In 2019, 1,234 people (12.5%) were referred; 1,234,567 contacts; 98,765 sessions; AB/1234 and "
                "1234/56 differ; 4,211 offences; born 1985; 2019-04-01 to 2020-03-31.")
    assert find_identifiers({"r.html": ordinary}, ids) == []


def test_guard_message_names_counts_and_outputs_never_values(tmp_path, capsys):
    from evaluation.report.guard import GuardError, Identifiers, check_outputs, redact

    ids = Identifiers.from_values(["P0000123", "AB/1234/56"], ["1985-03-12"])
    (tmp_path / "report.html").write_text("<td>P0000123</td><td>AB/1234/56</td>")
    (tmp_path / "results.json").write_text('{"note": "born 1985-03-12", "participants": 123}')
    with pytest.raises(GuardError) as err:
        check_outputs(tmp_path, ids)
    msg = str(err.value)
    assert "2 person ids in report.html" in msg and "1 date of birth in results.json" in msg
    assert "P0000123" not in msg and "AB/1234/56" not in msg and "1985" not in msg
    assert "P0000123" in capsys.readouterr().err  # the detail goes to the terminal only
    assert redact("KeyError: 'P0000123' born 1985-03-12", ids) == "KeyError: '[person id]' born [date of birth]"


def test_input_hash_follows_every_input(tmp_path):
    t, c = tmp_path / "t.ipynb", tmp_path / "c.yaml"
    t.write_text("template")
    c.write_text("config")
    base = dict(template=t, config=c, world_digest="w", library="l", parameters={"seed": 1, "output_dir": "x"},
                formats=("pdf",))
    h = b.input_hash(**base)
    assert h == b.input_hash(**{**base, "parameters": {"seed": 1, "output_dir": "elsewhere"}})  # staging path
    assert h != b.input_hash(**{**base, "parameters": {"seed": 2}})
    assert h != b.input_hash(**{**base, "world_digest": "w2"})
    assert h != b.input_hash(**{**base, "library": "l2"})
    assert h != b.input_hash(**{**base, "formats": ("pdf", "html")})
    c.write_text("config edited")
    assert h != b.input_hash(**base)


def test_world_hash_is_content_based_and_memoised(tmp_path):
    w = tmp_path / "w"
    w.mkdir()
    (w / "people.csv").write_text("person_id\nP0000001\n")
    cache = tmp_path / "cache.json"
    first = b.world_hash(w, cache)
    assert set(first) == {"people.csv", "*"} and cache.exists()
    copy = tmp_path / "copy"
    shutil.copytree(w, copy)  # same content elsewhere, new mtime: same data hash
    assert b.world_hash(copy, cache)["*"] == first["*"]
    (w / "people.csv").write_text("person_id\nP0000002\n")
    assert b.world_hash(w, cache)["*"] != first["*"]


def test_world_hash_covers_the_linked_referrals(tmp_path):
    """Reports built from linked provider lists rebuild when the linkage output changes (its referrals and counts
    are part of the data hash, apart from the world's own referrals.csv)."""
    w, linked = tmp_path / "w", tmp_path / "linked"
    w.mkdir()
    linked.mkdir()
    (w / "referrals.csv").write_text("referral_id\nR1\n")
    (linked / "referrals.csv").write_text("referral_id\nR2\n")
    (linked / "linkage_counts.csv").write_text("programme_id,referred,found,duplicates\np,2,1,0\n")
    plain, with_linked = b.world_hash(w), b.world_hash(w, linked=linked)
    assert set(with_linked) == {"referrals.csv", "linked/referrals.csv", "linked/linkage_counts.csv", "*"}
    assert plain["*"] != with_linked["*"]
    (linked / "linkage_counts.csv").write_text("programme_id,referred,found,duplicates\np,2,2,0\n")
    assert b.world_hash(w, linked=linked)["*"] != with_linked["*"]


def test_linked_option_is_checked_and_passed_to_programme_reports(tmp_path, small_world):
    with pytest.raises(b.BuildError, match="--linked: .*not a linkage output folder"):
        b.plan(b.BuildOptions(world=small_world, programmes=["pathways-out"], out=tmp_path, linked=tmp_path))
    jobs, _, shared = b.plan(b.BuildOptions(world=small_world, programmes=["pathways-out", "project-adder"],
                                            out=tmp_path, linked=""))
    params = {j.programme_id: j.parameters for j in jobs}
    assert params["pathways-out"]["linked_path"] == "" and "linked_path" not in params["project-adder"]
    assert shared["linked"] is None


def test_bad_arguments_are_named(tmp_path, small_world):
    with pytest.raises(b.BuildError, match="--programme: unknown programme.*no-such"):
        b.plan(b.BuildOptions(world=small_world, programmes=["no-such"], out=tmp_path))
    with pytest.raises(b.BuildError, match="--world"):
        b.plan(b.BuildOptions(world=tmp_path / "absent", out=tmp_path))
    with pytest.raises(b.BuildError, match="no report template for design 'area'"):
        b.plan(b.BuildOptions(world=small_world, programmes=["project-adder"], out=tmp_path,
                              templates={"individual": TINY}))
    with pytest.raises(b.BuildError, match="does not exist"):
        b.plan(b.BuildOptions(world=small_world, programmes=["project-adder"], out=tmp_path,
                              templates={"area": "missing.ipynb"}))


def test_cli_errors_exit_2_naming_the_argument(tmp_path):
    proc = _cli("--world", str(tmp_path / "absent"), "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--world" in proc.stderr
    proc = _cli("--formats", "docx", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--formats" in proc.stderr
    proc = _cli("--template", "nonsense", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--template" in proc.stderr


def test_wrong_config_fails_fast_naming_the_key(tmp_path, small_world):
    from evaluation.config import ConfigError

    cfg = tmp_path / "programmes"
    shutil.copytree(ROOT / "programmes", cfg)
    text = (cfg / "mace.yaml").read_text()
    (cfg / "mace.yaml").write_text(re.sub(r"(?m)^design:.*$", "design: randomised", text))
    with pytest.raises(ConfigError, match="mace.yaml: key 'design'"):
        b.plan(b.BuildOptions(world=small_world, out=tmp_path / "r", config_dir=cfg, templates=ALL_TINY))


def test_render_writes_html_without_code_and_an_a4_pdf(tmp_path):
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(14, 4))  # wider than the page: must be scaled, not cut
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode()
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("secret_source_code = 1\ndisplay(x)")
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": "# Title here\n\n## A section\n\nSome text."}),
        nbformat.v4.new_output("execute_result", data={"text/html": "<table><tr><td>cell42</td></tr></table>",
                                                       "text/plain": "x"}, execution_count=1),
        nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
        nbformat.v4.new_output("stream", name="stderr", text="UserWarning: noisy"),
    ]
    nb.cells = [code]
    cover = render.Cover(title="Test Programme", provider="Provider Ltd", funders="A, B", period="April 2019 – March 2020",
                         extract_date="31 December 2024", threshold=5)
    out = render.render_notebook(nb, tmp_path, cover, synthetic=True)
    html = out["html"].read_text()
    assert "cell42" in html and "Title here" in html and "data:image/png;base64" in html
    assert "secret_source_code" not in html and "In&nbsp;[" not in html and "noisy" not in html
    text = _pdf_text(out["pdf"])
    assert "Test Programme" in text and "Provider Ltd" in text and "cell42" in text
    pages = _pdf_pages(out["pdf"])
    n = len(pages)
    assert n >= 2  # cover + body
    for i, pg in enumerate(pages, start=1):
        page_text = pg.extract_text()
        assert f"Page {i} of {n}" in page_text
        assert "SYNTHETIC DATA — illustrative" in page_text  # on every page
        assert [round(float(v), 2) for v in pg.mediabox[2:]] == [595.28, 841.89]  # A4 in points
    assert "secret_source_code" not in text
    real = render.render_notebook(nb, tmp_path / "real", cover, synthetic=False, formats=("pdf",))
    assert "SYNTHETIC" not in _pdf_text(real["pdf"])


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_build_end_to_end_failure_isolated_previous_report_kept(small_world, tmp_path):
    out = tmp_path / "reports"
    first = b.build(b.BuildOptions(world=small_world, programmes=SOME, jobs=2, out=out, templates=ALL_TINY,
                                   progress=False))
    assert [r.status for r in first.results] == ["ok", "ok", "ok"] and first.exit_code == 0
    for pid in SOME:
        assert {p.name for p in (out / pid).iterdir()} == {"report.ipynb", "report.html", "report.pdf",
                                                          "results.json", ".build-hash"}  # no register: no xlsx
    good_pdf = (out / "capacity-building" / "report.pdf").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["synthetic"] is True and len(manifest["data_hash"]) == 64
    assert manifest["code"]["commit"] and "papermill" in manifest["packages"]
    assert manifest["programmes"]["pathways-out"]["parameters"]["programme_id"] == "pathways-out"
    assert "capacity-building/report.pdf" in (out / "index.html").read_text()

    # unchanged inputs are skipped
    again = b.build(b.BuildOptions(world=small_world, programmes=SOME, jobs=2, out=out, templates=ALL_TINY,
                                   progress=False))
    assert [r.status for r in again.results] == ["skipped"] * 3

    # the CLI: one forced failure (capacity-building's template raises) does not stop the others
    proc = _cli("--world", str(small_world), "--out", str(out), "--jobs", "2", "--force",
                *[a for pid in SOME for a in ("--programme", pid)],
                "--template", f"individual={TINY}", "--template", f"area={TINY}", "--template", f"delivery={FAILING}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    table = proc.stdout
    assert re.search(r"pathways-out\s+ok", table) and re.search(r"project-adder\s+ok", table)
    assert re.search(r"capacity-building\s+failed.*ValueError: forced failure for capacity-building", table)
    assert "2 built, 0 skipped (unchanged), 1 failed" in table
    assert (out / "capacity-building" / "report.pdf").read_bytes() == good_pdf  # previous good report kept
    # the failed notebook (may be person-level) is never kept under reports/: its path is on the terminal only
    assert not (out / ".failed").exists()
    kept = re.search(r"capacity-building failed; its notebook .* is at (\S+report\.ipynb)", proc.stderr)
    assert kept and Path(kept.group(1)).exists() and not Path(kept.group(1)).is_relative_to(out)
    shutil.rmtree(Path(kept.group(1)).parent)
    m = json.loads((out / "manifest.json").read_text())["programmes"]["capacity-building"]
    assert m["status"] == "failed" and m["previous_report_kept"] and "cell" in m["error"]
    assert "failed_notebook" not in m and "evaluation-failed" not in (out / "index.html").read_text()
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())
    _assert_no_person_ids(out, small_world)


@pytest.mark.slow
def test_build_refuses_person_level_outputs_and_partial_formats(small_world, tmp_path):
    out = tmp_path / "reports"
    s = b.build(b.BuildOptions(world=small_world, programmes=["pathways-out", "project-adder"], jobs=1, out=out,
                               templates={**ALL_TINY, "individual": LEAKY}, formats=("ipynb", "html"),
                               progress=False))
    status = {r.programme_id: r for r in s.results}
    assert status["pathways-out"].status == "failed" and "person-level identifiers" in status["pathways-out"].error
    assert "P0" not in status["pathways-out"].error  # counts and outputs, never the ids
    shutil.rmtree(Path(status["pathways-out"].failed_notebook).parent, ignore_errors=True)
    assert not (out / "pathways-out").exists()
    assert status["project-adder"].status == "ok"
    assert {p.name for p in (out / "project-adder").iterdir()} == {"report.ipynb", "report.html", "results.json",
                                                                  ".build-hash"}  # tiny template: no register


@pytest.mark.slow
@pytest.mark.notebooks
def test_real_templates_build_and_hold_no_person_ids(small_world, tmp_path):
    """The lead's templates (one per design) through the whole pipeline; every output scanned for person ids."""
    out = tmp_path / "reports"
    s = b.build(b.BuildOptions(world=small_world, programmes=["pathways-out", "capacity-building", "project-adder"],
                               jobs=2, out=out, progress=False))
    assert s.exit_code == 0, s.table() + "\n".join(r.traceback for r in s.results)
    n = _assert_no_person_ids(out, small_world)
    assert n >= 9
    from evaluation.report.render import figures_without_data

    for pid in ("pathways-out", "capacity-building", "project-adder"):  # each figure, then the data behind it
        page = (out / pid / "report.html").read_text()
        assert figures_without_data(page) == [] and "<details" in page, pid
    from evaluation.disclosure import check_published

    for pid in ("pathways-out", "capacity-building", "project-adder"):
        check_published(json.loads((out / pid / "results.json").read_text()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_build(tmp_path):
    """``kill -9`` of a build leaves no worker behind to publish later (issue 10). Checked by hand to fail with the
    prctl call in ``build._worker_init`` removed: the worker then outlived its parent and printed its pid file."""
    import signal
    import subprocess
    import time

    pidfile = tmp_path / "worker.pid"
    script = f"""
import multiprocessing as mp, os, time
from concurrent.futures import ProcessPoolExecutor
from evaluation.report.build import _worker_init

def job(path):
    open(path, "w").write(str(os.getpid()))
    time.sleep(60)

if __name__ == "__main__":
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(os.getpid(),)) as pool:
        pool.submit(job, {str(pidfile)!r}).result()
"""
    (tmp_path / "build_like.py").write_text(script)  # spawned workers import the job from a file, not from -c
    parent = subprocess.Popen([sys.executable, str(tmp_path / "build_like.py")])
    try:
        for _ in range(600):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.1)
        else:
            pytest.fail("the worker never started")
        worker = int(pidfile.read_text())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        for _ in range(100):
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            # a killed worker is reaped by init; a zombie no longer runs
            try:
                if open(f"/proc/{worker}/stat").read().split(") ")[1].startswith("Z"):
                    break
            except OSError:
                break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail("the worker outlived its killed build")
    finally:
        if parent.poll() is None:
            parent.kill()


def test_unwritable_reports_folder_is_one_line_and_exit_2(tmp_path, capsys):
    """Hostile review (issue 10): a reports folder that cannot be written fails before any work, in one line."""
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    from evaluation.__main__ import main

    assert main(["build", "--world", str(tmp_path), "--out", str(blocker / "reports")]) == 2
    err = capsys.readouterr()
    lines = [ln for ln in (err.err + err.out).splitlines() if ln.strip()]
    assert any("cannot write the reports folder" in ln for ln in lines) and not any("Reports in" in ln for ln in lines)


def test_file_system_failures_are_one_line():
    """Issue 10: a full disk or a read-only folder ends in one line naming the file, not a traceback."""
    import errno as _errno

    full = OSError(_errno.ENOSPC, "No space left on device", "/reports/mace/report.pdf")
    assert b._describe_failure(full) == "cannot write /reports/mace/report.pdf: no space left on device (disk full)"
    ro = OSError(_errno.EROFS, "Read-only file system", "/reports/mace")
    assert b._describe_failure(ro) == "cannot write /reports/mace: read-only file system"
    assert "\n" not in b._describe_failure(PermissionError(_errno.EACCES, "Permission denied", "/r"))


def test_the_cover_names_only_the_rounded_tables_the_report_has():
    """Issue 11 (funder read): the capacity-building (delivery) report's disclosure box named stages, ETE, profile
    and numbers-at-risk tables it does not have. The box is written from the report's own published figures."""
    from evaluation.report.render import rounded_tables

    def fig(section, status="rounded", unit="people"):
        return {"section": section, "status": status, "unit": unit}

    assert rounded_tables({"figures": {"delivery.a": fig("delivery", "shown")}}) == ""
    assert rounded_tables({}) == ""
    full = {"a": fig("attrition"), "b": fig("ete"), "c": fig("profile"), "d": fig("risk"), "e": fig("vfm"),
            "f": fig("headline", "shown"), "g": fig("risk", "suppressed")}
    assert rounded_tables({"figures": full}) == ("stages, education, training or employment (ETE), profile and "
                                                 "numbers-at-risk tables and the value-for-money section")
    assert rounded_tables({"figures": {"a": fig("attrition"), "d": fig("risk")}}) == "stages and numbers-at-risk tables"
    assert rounded_tables({"figures": {"c": fig("profile")}}) == "profile table"
    html = render.page("<p>x</p>", render.Cover(title="T", rounded=""), synthetic=False, print_=True)
    assert "rounded to the nearest" not in html and "suppressed as [c]" in html
    html = render.page("<p>x</p>", render.Cover(title="T", rounded="profile table"), synthetic=False, print_=True)
    assert "counts of\n  people in the profile table are rounded to the nearest 5" in html
