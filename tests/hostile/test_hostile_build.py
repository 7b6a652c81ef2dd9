"""Hostile inputs against the render and build (see README.md in this folder for the corpus and the behaviour
each input must get)."""
from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml

from evaluation.report import build as b
from evaluation.report import render
from evaluation.report.guard import pdf_text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PERSON_ROWS = str(HERE / "render" / "person_rows_report.ipynb")
SLEEPY = str(HERE / "render" / "sleepy_report.ipynb")
TINY = str(ROOT / "tests" / "fixtures" / "notebooks" / "tiny_report.ipynb")


def _strings(people_csv: Path) -> list[str]:
    raw = yaml.safe_load((HERE / "render" / "strings.yaml").read_text())["strings"]
    return [s.replace("{people_csv}", str(people_csv)) for s in raw]


class _Live(HTMLParser):
    DANGEROUS = {"script", "a", "img", "link", "iframe", "object", "embed", "style", "svg", "base", "form", "input"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.live: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img" and all(n != "src" or (v or "").startswith("data:image/") for n, v in attrs):
            tag = "figure"  # our own figures: <img src="data:image/svg+xml;base64,...">
        for name, value in attrs:
            if name.startswith("on") or (name == "rel" and "attachment" in (value or "")):
                self.live.append(f"<{tag} {name}>")
        if tag in self.DANGEROUS:
            self.live.append(f"<{tag}>")


def _live_in_body(html: str) -> list[str]:
    p = _Live()
    p.feed("<body" + html.split("<body", 1)[1])
    return p.live


# --------------------------------------------------------------------------------------------- R1-R5 inert
@pytest.mark.slow
@pytest.mark.notebooks
def test_hostile_text_in_data_and_config_is_inert(small_world, tmp_path):
    world = tmp_path / "world"
    shutil.copytree(small_world, world)
    hostile = _strings(world / "people.csv")
    delivery = pd.read_csv(world / "delivery.csv", dtype=str, keep_default_na=False)
    rows = delivery.index[(delivery["programme_id"] == "detached-youth-work") & (delivery["activity"] == "referral")]
    assert len(rows) >= len(hostile)
    delivery.loc[rows, "referrals_to"] = [hostile[i % len(hostile)] for i in range(len(rows))]
    delivery.loc[rows, "attendees"] = "12"  # above the disclosure threshold: every destination is shown
    delivery.to_csv(world / "delivery.csv", index=False)
    cfg = tmp_path / "programmes"
    shutil.copytree(ROOT / "programmes", cfg)
    path = cfg / "detached-youth-work.yaml"
    conf = yaml.safe_load(path.read_text())
    conf.update({"design": "delivery", "name": "Detached " + hostile[1], "funders": hostile[:4],
                 "description": " ".join(hostile)})
    path.write_text(yaml.safe_dump(conf, sort_keys=False, allow_unicode=True))

    out = tmp_path / "reports"
    s = b.build(b.BuildOptions(world=world, programmes=["detached-youth-work"], jobs=1, out=out, config_dir=cfg,
                               progress=False))
    assert s.exit_code == 0, s.table() + "\n".join(r.traceback for r in s.results)
    html = (out / "detached-youth-work" / "report.html").read_text()
    assert _live_in_body(html) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "MASH&lt;a rel=" in html
    pdf = out / "detached-youth-work" / "report.pdf"
    assert render.pdf_attachments(pdf) == []
    raw = pdf.read_bytes()
    assert b"/EmbeddedFiles" not in raw and b"/FileAttachment" not in raw
    text = pdf_text(pdf)
    flat = text.replace("\n", "")
    assert "<script>alert(1)</script>" in flat and "MASH<a rel=" in flat  # shown as text, on the cover and body
    assert "root:" not in text and "person_id" not in text
    index = (out / "index.html").read_text()
    assert "<script>alert" not in index


# ------------------------------------------------------------------------------------------ R9 person rows
@pytest.mark.slow
@pytest.mark.notebooks
def test_person_rows_without_ids_are_refused(small_world, tmp_path):
    out = tmp_path / "reports"
    s = b.build(b.BuildOptions(world=small_world, programmes=["pathways-out"], jobs=1, out=out,
                               templates={"individual": PERSON_ROWS}, progress=False))
    r = s.results[0]
    assert r.status == "failed" and "unpublished table" in r.error, r.error
    # cell 5: after papermill's injected parameters; the published headline table (cell 4) passes
    assert 'cell 5 [display(ev.analysis.drop(columns="person_id").head(10))]' in r.error and "cell 4" not in r.error
    assert not (out / "pathways-out").exists() and not (out / ".failed").exists()
    entry = json.loads((out / "manifest.json").read_text())["programmes"]["pathways-out"]
    assert "failed_notebook" not in entry and "unpublished table" in entry["error"]
    assert r.failed_notebook and not Path(r.failed_notebook).is_relative_to(out)
    shutil.rmtree(Path(r.failed_notebook).parent, ignore_errors=True)


# -------------------------------------------------------------------------------------- R11 redaction
def test_failure_messages_are_redacted_everywhere(small_world, tmp_path, monkeypatch, capsys):
    people = pd.read_csv(small_world / "people.csv", usecols=["person_id", "date_of_birth"], dtype=str)
    pid, dob = people.iloc[3]

    def failing(job, *args, **kwargs):
        raise ValueError(f"row 17: person {pid} has date_of_birth {dob} after the offence")

    monkeypatch.setattr(b, "_execute", failing)
    out = tmp_path / "reports"
    s = b.build(b.BuildOptions(world=small_world, programmes=["pathways-out"], jobs=1, out=out,
                               templates={"individual": TINY}, progress=False))
    assert s.exit_code == 1
    for text in (s.table(), (out / "manifest.json").read_text(), (out / "index.html").read_text()):
        assert pid not in text and dob not in text
        assert "row 17: person [person id] has date_of_birth [date of birth]" in text


# ------------------------------------------------------------------------------------------- R12 the lock
def test_second_build_into_the_same_folder_is_refused(small_world, tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    with b.BuildLock(out):  # a build in progress (flock: another open file description conflicts)
        with pytest.raises(b.BuildError, match=f"another build is writing to {out} .pid {os.getpid()}"):
            b.build(b.BuildOptions(world=small_world, programmes=["pathways-out"], jobs=1, out=out,
                                   templates={"individual": TINY}, progress=False))
    with b.BuildLock(out):  # released: the next build may start
        pass


@pytest.mark.slow
def test_second_build_from_another_process_exits_2(small_world, tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from evaluation.report.build import BuildLock\n"
                               f"with BuildLock(Path({str(out)!r})):\n print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = subprocess.run([sys.executable, "-m", "evaluation", "build", "--no-progress", "--world",
                               str(small_world), "--out", str(out), "--programme", "pathways-out"],
                              capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert proc.returncode == 2 and "another build is writing to" in proc.stderr, proc.stderr
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------------- R13 kill -9 of a build
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_killed_build_leaves_no_workers_that_publish(small_world, tmp_path):
    import glob
    import tempfile

    psutil = pytest.importorskip("psutil")
    # a killed worker cannot remove its kernel's connection folder (build.run_job's evk-*: sockets, kernel.json,
    # no data); this test removes the ones its build leaves
    conn_dirs = os.path.join(tempfile.gettempdir(), "evk-*")
    before = set(glob.glob(conn_dirs))
    out = tmp_path / "reports"
    sleep = 20
    env = {**os.environ, "HOSTILE_SLEEP": str(sleep)}
    parent = subprocess.Popen([sys.executable, "-m", "evaluation", "build", "--no-progress", "--world",
                               str(small_world), "--out", str(out), "--jobs", "2", "--programme", "pathways-out",
                               "--programme", "family-support", "--template", f"individual={SLEEPY}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    proc = psutil.Process(parent.pid)
    deadline = time.monotonic() + 300
    workers, kernels = [], []
    while time.monotonic() < deadline:  # wait until both workers run a kernel (executing the sleepy cell)
        workers = [c for c in proc.children() if "spawn" in " ".join(c.cmdline())]
        kernels = [k for w in workers for k in w.children(recursive=True)]
        if len(workers) == 2 and len(kernels) >= 2:
            break
        time.sleep(0.5)
    assert len(workers) == 2 and len(kernels) >= 2, "the build did not start two workers"
    time.sleep(3)
    try:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, "workers outlived the build"
        time.sleep(sleep + 10)  # long past the moment the kernels finish their cell
        assert not (out / "pathways-out").exists() and not (out / "family-support").exists()
    finally:
        for p in workers + kernels:  # ours: started by this test's build
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(kernels, timeout=30)
        for d in set(glob.glob(conn_dirs)) - before:
            shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------------------------ R14 the skip key
def test_edits_that_keep_size_and_mtime_are_seen(tmp_path):
    w = tmp_path / "w"
    w.mkdir()
    f = w / "people.csv"
    f.write_text("person_id\nP0000001\n")
    st = f.stat()
    cache = tmp_path / "cache.json"
    first = b.world_hash(w, cache)
    time.sleep(0.01)
    f.write_text("person_id\nP0000002\n")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert b.world_hash(w, cache)["*"] != first["*"]


def test_every_config_file_is_in_the_skip_key(tmp_path, monkeypatch):
    import evaluation.config as config

    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    shutil.copytree(ROOT / "programmes", repo / "programmes")
    shutil.copy(ROOT / "config" / "unit_costs.yaml", repo / "config" / "unit_costs.yaml")
    monkeypatch.setattr(config, "repo_root", lambda: repo)
    files = b.config_files(repo / "programmes")
    names = [p.name for p in files]
    assert "unit_costs.yaml" in names and "wonder-plus.yaml" in names and "pathways-out.yaml" in names
    t = tmp_path / "t.ipynb"
    t.write_text("template")
    key = dict(template=t, world_digest="w", library="l", parameters={}, formats=("pdf",))
    h = b.input_hash(config=files, **key)
    costs = repo / "config" / "unit_costs.yaml"
    costs.write_text(costs.read_text().replace("unit_costs:", "unit_costs:  # edited", 1))
    assert b.input_hash(config=b.config_files(repo / "programmes"), **key) != h
    costs.write_text((ROOT / "config" / "unit_costs.yaml").read_text())
    assert b.input_hash(config=b.config_files(repo / "programmes"), **key) == h
    other = repo / "programmes" / "mace.yaml"
    other.write_text(other.read_text() + "\n# edited\n")
    assert b.input_hash(config=b.config_files(repo / "programmes"), **key) != h


# ----------------------------------------------------------------------------- R15 permissions, full disk
def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    b.add_cli(parser.add_subparsers())
    args = parser.parse_args(["build", "--no-progress", *argv])
    return args.func(args)


def test_unwritable_reports_folder_and_full_disk_give_one_line(small_world, tmp_path, monkeypatch, capsys):
    out = tmp_path / "reports"

    def denied(self):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.path))

    with monkeypatch.context() as m:
        m.setattr(b.BuildLock, "__enter__", denied)
        code = _run_cli("--world", str(small_world), "--out", str(out), "--programme", "pathways-out")
    printed = capsys.readouterr().out
    assert code == 1
    assert "pathways-out  failed" in printed  # the summary is printed
    assert f"build: cannot write the reports folder {out}: permission denied (folder not writable)" in printed
    assert "Traceback" not in printed

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "report.pdf")

    with monkeypatch.context() as m:
        m.setattr(b, "_execute", full)
        code = _run_cli("--world", str(small_world), "--out", str(out), "--programme", "pathways-out",
                        "--template", f"individual={TINY}", "--jobs", "1")
    printed = capsys.readouterr().out
    assert code == 1 and "cannot write report.pdf: no space left on device (disk full)" in printed

    with monkeypatch.context() as m:  # the disk fills up while the manifest is written
        m.setattr(b, "_execute", full)
        m.setattr(b, "write_manifest", lambda *a, **k: full())
        code = _run_cli("--world", str(small_world), "--out", str(out), "--programme", "pathways-out",
                        "--template", f"individual={TINY}", "--jobs", "1")
    printed = capsys.readouterr().out
    assert code == 1 and "pathways-out  failed" in printed
    assert "build: cannot write report.pdf: no space left on device (disk full)" in printed
