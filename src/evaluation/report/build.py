"""``python -m evaluation build``: run every programme's report template with papermill, in parallel.

For each programme (``--programme ID``, repeatable; default all nine) the template is picked by the design in its
config (:data:`TEMPLATES_BY_DESIGN`), papermill injects the parameters (``programme_id``, ``config_path``,
``world_path``, ``extract_date``, ``seed``, ``output_dir``, ``synthetic``) and a worker process:

1. executes the notebook in its own kernel into ``reports/.staging/<id>-<pid>/report.ipynb`` (the template writes
   ``results.json`` there);
2. checks the published figures: ``results.json`` passes :func:`evaluation.disclosure.check_published` at the
   programme's threshold;
3. renders ``report.html`` (no code) and ``report.pdf`` (:mod:`evaluation.report.render`: inert text, offline,
   no attachments);
4. runs the output guard (:func:`evaluation.report.guard.check_outputs`) over every output (ipynb, HTML, PDF text,
   JSON, SVG): no person id of any shape, no date of birth, no table that did not come from
   ``content.table()``;
5. only when every requested format exists, publishes atomically: the old ``reports/<id>/`` is renamed away, the
   staging folder renamed in, the old one deleted. A failure leaves the previous good report untouched and
   records the cell and exception, redacted by the guard (no identifying value reaches the manifest, the index
   or the summary). The failed notebook may hold person-level data, so it is never kept under ``reports/``: it
   goes to a private temporary folder whose path is printed on the terminal only.

One build at a time per reports folder (``reports/.build.lock``; a second build fails at once saying so). Worker
processes die with the build (Linux ``PR_SET_PDEATHSIG``) and publish only while the build that started them is
alive. A programme whose inputs are unchanged (see :func:`input_hash`: template, every configuration file, world
content, library source, parameters) is skipped; ``--force`` rebuilds. The build ends with a summary table
(programme, status ok/failed/skipped, seconds, error), writes ``reports/manifest.json`` (code commit and dirty flag,
data hash, parameters, build time, package versions, status per programme) and ``reports/index.html``, and exits
non-zero when any programme failed; a reports folder that cannot be written (permissions, full disk) gives a
one-line message and a non-zero exit, with the summary still printed.
"""
from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

FORMATS = ("ipynb", "html", "pdf")
DEFAULT_SEED = 20190401
DEFAULT_JOBS = 2
BUILD_FORMAT_VERSION = "1"  # bump to invalidate every skip hash when the build itself changes meaning

#: Report template (file name in the notebooks folder) per programme design; edit here to re-route a design.
TEMPLATES_BY_DESIGN: dict[str, str] = {
    "individual": "programme_report.ipynb",
    "delivery_and_individual": "programme_report.ipynb",
    "area": "area_report.ipynb",
    "delivery": "delivery_report.ipynb",
}

from evaluation.errors import EvaluationError
from evaluation.schemas import TABLES as WORLD_TABLES  # noqa: E402 - the table list is defined once, in schemas


class BuildError(EvaluationError, RuntimeError):
    """A build cannot start (bad argument, missing world); the message names the argument or path."""


# ------------------------------------------------------------------------------------------------ job types
@dataclass
class Job:
    """One programme's build, sent to a worker process (plain data: picklable)."""

    programme_id: str
    template: str
    parameters: dict[str, Any]
    out: str
    formats: tuple[str, ...]
    cover: dict[str, Any]
    synthetic: bool
    input_hash: str
    threshold: int
    world: str
    timeout: int | None = None
    threads: int | None = None
    identifiers: Any = None  # evaluation.report.guard.Identifiers of the world (ids, dates of birth)
    parent_pid: int | None = None  # the build process; a worker whose build has died does not publish


@dataclass
class JobResult:
    programme_id: str
    status: str  # ok | failed | skipped
    seconds: float = 0.0
    error: str = ""
    outputs: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    failed_notebook: str = ""
    traceback: str = ""


# -------------------------------------------------------------------------------------------------- hashing
def _sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def world_files(world: Path, linked: Path | None = None) -> list[Path]:
    """The files of a world that a report can read: the canonical tables (csv/parquet) and meta/truth JSON, and the
    linkage output's referrals and counts when the referrals come from linked provider lists (``linked``)."""
    files = []
    for name in WORLD_TABLES:
        for ext in ("csv", "parquet"):
            p = world / f"{name}.{ext}"
            if p.exists():
                files.append(p)
    files += [p for p in (world / "meta.json", world / "truth.json") if p.exists()]
    if linked is not None:
        from evaluation.linkage import COUNTS_FILE, REFERRALS_FILE

        files += [p for p in (linked / REFERRALS_FILE, linked / COUNTS_FILE) if p.exists()]
    return files


def world_hash(world: Path, cache_file: Path | None = None, linked: Path | None = None) -> dict[str, str]:
    """Content hash (SHA-256) of each world file, and ``"*"`` for the whole world.

    Content, not size+mtime: regenerating the same synthetic world (same seed) or copying an extract must not force
    a rebuild, and an edit that keeps size and mtime must not be missed; the hash is also the manifest's data hash,
    which should identify the data, not the file system. The cost (about 0.3 s per 100 MB) is paid once per file
    version: digests are memoised in ``cache_file`` keyed by (path, inode, size, mtime_ns, ctime_ns), so an
    unchanged multi-GB extract is not re-read on every build. The change time (ctime) is set by the kernel on every
    write and cannot be set back by a user (``touch -d`` and ``os.utime`` restore mtime, not ctime), so an edit that
    keeps size and mtime is re-hashed.
    """
    cache: dict[str, Any] = {}
    if cache_file is not None and cache_file.exists():
        try:
            cache = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cache = {}
    out, changed = {}, False
    for p in world_files(world, linked):
        st = p.stat()
        key = str(p.resolve())
        memo = cache.get(key)
        stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino}
        if memo and all(memo.get(k) == v for k, v in stamp.items()):
            digest = memo["sha256"]
        else:
            digest = _sha256_file(p)
            cache[key] = {**stamp, "sha256": digest}
            changed = True
        out[p.name if p.parent == world else f"linked/{p.name}"] = digest
    out["*"] = hashlib.sha256(json.dumps(sorted(out.items())).encode()).hexdigest()
    if cache_file is not None and changed:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    return out


def library_hash() -> str:
    """Hash of the library's source and report templates (catches uncommitted edits that the commit does not)."""
    root = Path(__file__).resolve().parents[1]  # src/evaluation
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".j2", ".css", ".yaml", ".json",
                                                                          ".csv", ".html"):
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def config_files(config_dir: Path) -> list[Path]:
    """Every configuration file a report can read: the programme configs (``*.yaml`` in ``config_dir``) and
    everything under the repository's ``config/`` folder (unit costs, …)."""
    from evaluation.config import repo_root

    files = sorted(p for p in Path(config_dir).glob("*.y*ml") if p.is_file())
    shared = repo_root() / "config"
    if shared.is_dir():
        files += sorted(p for p in shared.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return files


def input_hash(*, template: Path, config: Path | Iterable[Path], world_digest: str, library: str,
               parameters: Mapping[str, Any], formats: Iterable[str]) -> str:
    """The skip key of one programme: template bytes, the name and bytes of every configuration file (``config``:
    one path or several, see :func:`config_files`), world content, library source, injected parameters (minus the
    staging ``output_dir``) and requested formats."""
    configs = [config] if isinstance(config, (str, Path)) else list(config)
    config_bytes = b"".join(Path(c).name.encode() + b"\0" + Path(c).read_bytes() + b"\0" for c in configs)
    h = hashlib.sha256()
    for part in (BUILD_FORMAT_VERSION, template.read_bytes(), config_bytes, world_digest, library,
                 json.dumps({k: v for k, v in parameters.items() if k != "output_dir"}, sort_keys=True, default=str),
                 ",".join(sorted(formats))):
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- environment
def git_state(root: Path) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository holding the code."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=20)
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty}


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("evaluation", "numpy", "pandas", "scipy", "statsmodels", "lifelines", "matplotlib", "duckdb",
                 "pandera", "papermill", "nbconvert", "nbclient", "ipykernel", "jupyter_client", "weasyprint"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def is_synthetic(world: Path) -> bool:
    """A world written by :func:`evaluation.synth.generate_world` (it leaves truth.json or a generator version)."""
    if (world / "truth.json").exists():
        return True
    meta = world / "meta.json"
    if meta.exists():
        try:
            return "generator_version" in json.loads(meta.read_text())
        except ValueError:
            return False
    return False


def person_ids(world: Path) -> set[str]:
    """Every ``person_id`` of the world's people table (for the output scan)."""
    import pandas as pd

    if (world / "people.parquet").exists():
        ids = pd.read_parquet(world / "people.parquet", columns=["person_id"])["person_id"]
    elif (world / "people.csv").exists():
        ids = pd.read_csv(world / "people.csv", usecols=["person_id"], dtype=str)["person_id"]
    else:
        return set()
    return set(ids.dropna().astype(str))


def find_person_ids(texts: Mapping[str, str], ids: set[str]) -> list[tuple[str, str]]:
    """``(output name, id)`` for each person id found in the texts (see :func:`evaluation.report.guard.searchable`
    for which ids are looked for, and :func:`evaluation.report.guard.find_identifiers`)."""
    from evaluation.report.guard import Identifiers, find_identifiers

    return [(f.output, f.value) for f in find_identifiers(texts, Identifiers.from_values(ids))]


# ------------------------------------------------------------------------------------------------- workers
def _kernel_manager_class(conn_dir: str):
    """A KernelManager whose kernel talks over IPC (Unix sockets) in ``conn_dir``.

    Why: jupyter_client picks TCP ports by binding port 0 and releasing it before the kernel binds; kernels started
    at the same moment by parallel jobs can be handed the same free port and one dies with "Address already in
    use" (jupyter/jupyter_client#487, nbclient#44). IPC sockets are files in a folder private to the job, so
    parallel kernels cannot collide and no start-up lock serialising the jobs is needed. On Windows (no IPC
    transport in ZMQ) the default TCP manager is used; run with ``--jobs 1`` there if starts clash.
    """
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(conn_dir, "k")
            self.connection_file = os.path.join(conn_dir, "kernel.json")

        async def start_kernel(self, **kw):  # the kernel's own log (not cell output) goes to a file kept on failure
            kw.setdefault("stderr", open(os.path.join(conn_dir, "kernel.log"), "ab"))  # noqa: SIM115
            return await super().start_kernel(**kw)

    return IPCKernelManager


def _describe_failure(exc: BaseException) -> str:
    """The failing cell and exception, in one readable line (papermill's error names the cell). Callers redact it
    (:func:`evaluation.report.guard.redact`) before it reaches an output."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, OSError) and exc.errno is not None:
        return _os_error_line(exc)
    if isinstance(exc, PapermillExecutionError):
        first = next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
        return f"cell {exc.exec_count} [{first.strip()[:80]}]: {exc.ename}: {exc.evalue}".strip()
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0] if msg else ''}"


def _os_error_line(exc: OSError, what: str = "") -> str:
    """``cannot write <file>: No space left on device (disk full)`` — one line for a file-system failure."""
    reason = {errno.ENOSPC: "no space left on device (disk full)", errno.EDQUOT: "disk quota exceeded",
              errno.EACCES: "permission denied (folder not writable)", errno.EROFS: "read-only file system",
              errno.EPERM: "operation not permitted"}.get(exc.errno, exc.strerror or str(exc))
    where = what or (f"{exc.filename}" if exc.filename else "the reports folder")
    return f"cannot write {where}: {reason}"


def run_job(job: Job) -> JobResult:
    """Build one programme (see the module docstring); never raises: a failure is returned as a result."""
    t0 = time.perf_counter()
    out = Path(job.out)
    final = out / job.programme_id
    staging = out / ".staging" / f"{job.programme_id}-{os.getpid()}"
    conn_dir = tempfile.mkdtemp(prefix="evk-")  # short path: Unix socket paths are limited to ~100 characters
    timings: dict[str, float] = {}
    try:
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        if job.threads:
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
                os.environ.setdefault(var, str(job.threads))
        params = {**job.parameters, "output_dir": str(staging)}
        nb_path = staging / "report.ipynb"
        t = time.perf_counter()
        _execute(job, params, nb_path, staging, conn_dir)
        timings["papermill"] = time.perf_counter() - t
        results = staging / "results.json"
        if not results.exists():
            raise RuntimeError("the template did not write results.json to output_dir")
        from evaluation.disclosure import check_published

        published = json.loads(results.read_text())
        check_published(published, job.threshold)
        t = time.perf_counter()
        import nbformat

        from evaluation.report.render import Cover, render_notebook, rounded_tables

        nb = nbformat.read(str(nb_path), as_version=4)
        # the cover's disclosure box names the tables this report rounds, from its own published figures
        base = int((published.get("disclosure") or {}).get("rounding_base") or 5)
        cover = Cover(**{**job.cover, "rounded": rounded_tables(published), "base": base})
        render_notebook(nb, staging, cover, synthetic=job.synthetic,
                        formats=[f for f in job.formats if f != "ipynb"])
        # the tables as an accessible spreadsheet (gptables), from the same published figures as the PDF
        from evaluation.report.spreadsheet import write_tables

        xlsx = write_tables(staging, programme_name=job.cover.get("title"), synthetic=job.synthetic)
        timings["render"] = time.perf_counter() - t
        _scan_outputs(staging, job)
        if "ipynb" not in job.formats:
            nb_path.unlink()
        expected = ["results.json"] + (["tables.xlsx"] if xlsx else []) + [f"report.{f}" for f in job.formats]
        missing = [name for name in expected if not (staging / name).is_file()]
        if missing:
            raise RuntimeError(f"incomplete report: {', '.join(missing)} not written")
        (staging / ".build-hash").write_text(job.input_hash + "\n")
        _check_parent(job)
        publish(staging, final)
        return JobResult(job.programme_id, "ok", time.perf_counter() - t0, outputs=sorted(expected),
                         timings=timings)
    except BaseException as exc:  # noqa: BLE001 - one programme's failure must not stop the others
        if isinstance(exc, KeyboardInterrupt):
            raise
        failed_nb = _keep_failed_notebook(staging, conn_dir, job.programme_id)
        from evaluation.report.guard import redact

        error = redact(_describe_failure(exc), job.identifiers)
        return JobResult(job.programme_id, "failed", time.perf_counter() - t0, error=error,
                         timings=timings, failed_notebook=failed_nb,
                         traceback=redact(traceback.format_exc(limit=-4), job.identifiers))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(conn_dir, ignore_errors=True)


def _keep_failed_notebook(staging: Path, conn_dir: str, programme_id: str) -> str:
    """Move a failed notebook (and the kernel's log) to a private temporary folder, never under ``reports/``: it
    may hold person-level rows. The path is printed on the terminal (stderr) only."""
    if not (staging / "report.ipynb").exists():
        return ""
    try:
        dest = Path(tempfile.mkdtemp(prefix=f"evaluation-failed-{programme_id}-"))  # mode 0700: private
        shutil.move(str(staging / "report.ipynb"), dest / "report.ipynb")
        log = Path(conn_dir) / "kernel.log"
        if log.exists() and log.stat().st_size:
            shutil.copy(log, dest / "kernel.log")
    except OSError:
        return ""
    print(f"build: {programme_id} failed; its notebook (may hold person-level data; delete it when done) is at "
          f"{dest / 'report.ipynb'}", file=sys.stderr)
    return str(dest / "report.ipynb")


# -------------------------------------------------------------------------------- workers die with the build
_PARENT_PID: int | None = None


def _worker_init(parent_pid: int) -> None:
    """Pool worker initializer: die with the build (Linux ``PR_SET_PDEATHSIG``: SIGKILL when the parent exits,
    however it exits, ``kill -9`` included); elsewhere the publish-time check in :func:`_check_parent` remains."""
    global _PARENT_PID
    _PARENT_PID = parent_pid
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the parent check still applies
            pass
    if os.getppid() != parent_pid:  # the build died before prctl took effect
        os._exit(1)


def _check_parent(job: Job) -> None:
    """Refuse to publish from a worker whose build has ended (its lock is no longer held by a live parent)."""
    parent = job.parent_pid or _PARENT_PID
    if parent is not None and parent != os.getpid() and os.getppid() != parent:
        raise RuntimeError("the build that started this worker has ended; not publishing")


def _execute(job: Job, params: dict, nb_path: Path, cwd: Path, conn_dir: str) -> None:
    import logging

    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.WARNING)
    kwargs: dict[str, Any] = {}
    if os.name == "posix":
        kwargs["kernel_manager_class"] = _kernel_manager_class(conn_dir)
    # cwd: the staging folder, so a template's relative paths land in its own output and nothing in the caller's
    # folder can shadow a module in the kernel (the kernel's sys.path starts with its cwd).
    pm.execute_notebook(str(job.template), str(nb_path), parameters=params, cwd=str(cwd), progress_bar=False,
                        log_output=False, request_save_on_cell_execute=False,
                        execution_timeout=job.timeout, **kwargs)


def _scan_outputs(folder: Path, job: Job) -> None:
    """The output guard over every output in the staging folder (see :func:`evaluation.report.guard.check_outputs`);
    raises :class:`evaluation.report.guard.GuardError` with a publishable message."""
    from evaluation.report.guard import Identifiers, check_outputs

    identifiers = job.identifiers if job.identifiers is not None else Identifiers.from_world(job.world)
    check_outputs(folder, identifiers)


def publish(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging`` (same file system): rename the old away, rename the new in, delete the old.

    Readers see the old report or the new one, never a mixture; if the second rename fails the old one is put
    back."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if old.exists():
        shutil.rmtree(old)
    had_old = final.exists()
    if had_old:
        os.replace(final, old)
    try:
        os.replace(staging, final)
    except BaseException:
        if had_old:
            os.replace(old, final)
        raise
    if had_old:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ the build
@dataclass
class BuildOptions:
    world: Path
    programmes: list[str] | None = None
    jobs: int = DEFAULT_JOBS
    formats: tuple[str, ...] = FORMATS
    out: Path = Path("reports")
    force: bool = False
    extract_date: str | None = None
    seed: int = DEFAULT_SEED
    notebooks_dir: Path | None = None
    templates: Mapping[str, str] | None = None  # design -> template file (name in notebooks_dir, or a path)
    config_dir: Path | None = None
    timeout: int | None = 1800  # seconds per cell
    progress: bool = True
    linked: Path | str | None = None  # linkage output folder; None: data/processed/linked if from this world; "": none


@dataclass
class BuildSummary:
    results: list[JobResult]
    manifest: dict[str, Any]
    problem: str = ""  # a build-wide failure (reports folder not writable, disk full), one line

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.problem else 0

    def table(self) -> str:
        """Summary table: programme, status, seconds, error."""
        rows = [("programme", "status", "seconds", "error")]
        for r in self.results:
            rows.append((r.programme_id, r.status, f"{r.seconds:.1f}", r.error))
        w = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}  {d}".rstrip() for a, b, c, d in rows]
        lines.insert(1, "-" * max(len(ln) for ln in lines))
        counts = {s: sum(r.status == s for r in self.results) for s in ("ok", "skipped", "failed")}
        lines.append(f"{counts['ok']} built, {counts['skipped']} skipped (unchanged), {counts['failed']} failed")
        if self.problem:
            lines.append(f"build: {self.problem}")
        return "\n".join(lines)


def parse_formats(text: str | Iterable[str]) -> tuple[str, ...]:
    items = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    bad = [t for t in items if t not in FORMATS]
    if bad or not items:
        raise BuildError(f"--formats: unknown format(s) {', '.join(bad) or '(none)'}; choose from {','.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in items)


def plan(opts: BuildOptions) -> tuple[list[Job], list[JobResult], dict[str, Any]]:
    """Jobs to run, programmes skipped (unchanged) and the shared facts for the manifest."""
    from evaluation.config import PROGRAMME_IDS, load_programme, programmes_dir, repo_root

    world = Path(opts.world).resolve()
    if not world.is_dir():
        raise BuildError(f"--world: {world} is not a folder of world tables")
    wanted = list(dict.fromkeys(opts.programmes or PROGRAMME_IDS))
    unknown = [p for p in wanted if p not in PROGRAMME_IDS]
    if unknown:
        raise BuildError(f"--programme: unknown programme(s) {', '.join(unknown)}; known: {', '.join(PROGRAMME_IDS)}")
    out = Path(opts.out).resolve()
    config_dir = Path(opts.config_dir).resolve() if opts.config_dir else programmes_dir().resolve()
    notebooks = Path(opts.notebooks_dir).resolve() if opts.notebooks_dir else repo_root() / "notebooks"
    templates = dict(TEMPLATES_BY_DESIGN if opts.templates is None else opts.templates)
    synthetic = is_synthetic(world)
    from evaluation.linkage import LinkageError, linked_folder

    try:  # the providers' referral lists linked to police records (`evaluation link`), checked against the world
        linked = linked_folder(world, False if opts.linked in ("", False) else opts.linked)
    except LinkageError as exc:
        raise BuildError(f"--linked: {exc}") from None
    linked = linked.resolve() if linked is not None else None
    digests = world_hash(world, out / ".cache" / "world-hash.json", linked)
    from evaluation.report.guard import Identifiers

    identifiers = Identifiers.from_world(world)
    configs = config_files(config_dir)
    library = library_hash()
    git = git_state(repo_root())
    now = dt.datetime.now()
    threads = max(1, (os.cpu_count() or 1) // max(1, opts.jobs))
    jobs, skipped = [], []
    for pid in wanted:
        programme = load_programme(pid, config_dir)  # a wrong config fails fast, naming the key
        name = templates.get(programme.design)
        if name is None:
            raise BuildError(f"no report template for design '{programme.design}' ({pid}); "
                             f"known designs: {', '.join(templates)}")
        template = Path(name) if Path(name).is_absolute() else notebooks / name
        if not template.exists():
            raise BuildError(f"{pid}: report template {template} does not exist")
        parameters = {"programme_id": pid, "config_path": str(config_dir), "world_path": str(world),
                      "extract_date": opts.extract_date, "seed": int(opts.seed), "output_dir": None,
                      "synthetic": synthetic}
        if template.name == "programme_report.ipynb" or programme.design in ("individual", "delivery_and_individual"):
            parameters["linked_path"] = str(linked) if linked is not None else ""
        key = input_hash(template=template, config=configs, world_digest=digests["*"],
                         library=library, parameters=parameters, formats=opts.formats)
        final = out / pid
        previous = (final / ".build-hash").read_text().strip() if (final / ".build-hash").exists() else None
        complete = all((final / f"report.{f}").is_file() for f in opts.formats) and (final / "results.json").is_file() \
            and ((final / "tables.xlsx").is_file() or '"figures"' not in (final / "results.json").read_text())
        if not opts.force and previous == key and complete:
            skipped.append(JobResult(pid, "skipped", 0.0))
            continue
        from evaluation.report.render import Cover

        extract = opts.extract_date or _meta_extract_date(world)
        cover = asdict(Cover.from_programme(programme, extract_date=extract, build_date=now,
                                            commit=git["commit"] or ""))
        jobs.append(Job(programme_id=pid, template=str(template), parameters=parameters, out=str(out),
                        formats=tuple(opts.formats), cover=cover, synthetic=synthetic, input_hash=key,
                        threshold=programme.disclosure_threshold, world=str(world), timeout=opts.timeout,
                        threads=threads, identifiers=identifiers, parent_pid=os.getpid()))
    shared = {"world": str(world), "linked": str(linked) if linked is not None else None, "data_hash": digests["*"],
              "data_files": {k: v for k, v in digests.items() if k != "*"},
              "synthetic": synthetic, "git": git, "library_hash": library, "seed": int(opts.seed),
              "extract_date": opts.extract_date, "formats": list(opts.formats), "templates": templates,
              "notebooks_dir": str(notebooks), "config_dir": str(config_dir),
              "config_files": {str(p): _sha256_file(p) for p in configs}, "identifiers": identifiers}
    return jobs, skipped, shared


def _meta_extract_date(world: Path) -> str | None:
    """The world's extract date by the one rule :func:`evaluation.validate.extract_date` owns (so the cover has a
    date even without meta.json, the same one the body uses)."""
    from evaluation.validate import extract_date

    try:
        d = extract_date(world)
    except Exception:  # an unreadable world fails later, in the job, with validate's own message
        return None
    return d.isoformat() if d else None


class BuildLock:
    """An exclusive lock on one reports folder (``<out>/.build.lock``, ``flock``), held for the whole build.

    A second build into the same folder fails at once with :class:`BuildError` naming the folder and the pid
    holding it (waiting could mean minutes with no output; the user can pick another ``--out``). The kernel drops
    the lock when the holder dies, however it dies, so a stale lock file never blocks a later build.
    """

    def __init__(self, out: Path):
        self.path = Path(out) / ".build.lock"
        self.fd: int | None = None

    def __enter__(self) -> "BuildLock":
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            self.fd = None
            raise BuildError(f"another build is writing to {self.path.parent} (pid {holder}); wait for it to "
                             "finish or build into another folder with --out") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def build(opts: BuildOptions) -> BuildSummary:
    """Run the build (see the module docstring) and return its summary; writes the manifest and index.

    A reports folder that cannot be written (permissions, read-only, full disk) does not raise: every programme
    is reported failed with a one-line reason (``BuildSummary.problem``), so the summary can still be printed.
    """
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    out = Path(opts.out).resolve()
    jobs, skipped, shared = [], [], {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = BuildLock(out).__enter__()
    except OSError as exc:
        line = _os_error_line(exc, f"the reports folder {out}")
        from evaluation.config import PROGRAMME_IDS

        wanted = list(dict.fromkeys(opts.programmes or PROGRAMME_IDS))
        return BuildSummary([JobResult(p, "failed", 0.0, error=line) for p in wanted], {}, problem=line)
    try:
        # leftovers of older builds that kept failed notebooks (person-level) under reports/
        shutil.rmtree(out / ".failed", ignore_errors=True)
        jobs, skipped, shared = plan(opts)
        done: dict[str, JobResult] = {r.programme_id: r for r in skipped}
        if jobs:
            done.update({r.programme_id: r for r in _run_jobs(jobs, opts)})
        order = list(dict.fromkeys([j.programme_id for j in jobs] + [r.programme_id for r in skipped]))
        from evaluation.config import PROGRAMME_IDS
        from evaluation.report.guard import redact

        order.sort(key=lambda p: PROGRAMME_IDS.index(p))
        results = [done[p] for p in order]
        for r in results:  # belt and braces: results from a pool that died are redacted here too
            r.error = redact(r.error, shared.get("identifiers"))
        shutil.rmtree(out / ".staging", ignore_errors=True)
        try:
            manifest = write_manifest(out, results, {j.programme_id: j for j in jobs}, shared, started,
                                      time.perf_counter() - t0)
            write_index(out, manifest)
        except OSError as exc:
            return BuildSummary(results, {}, problem=_os_error_line(exc))
        return BuildSummary(results, manifest)
    finally:
        lock.__exit__()


def _run_jobs(jobs: list[Job], opts: BuildOptions) -> list[JobResult]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="Building reports", unit="report", disable=not opts.progress,
               file=sys.stderr, dynamic_ncols=True)
    results = []
    try:
        if opts.jobs <= 1 or len(jobs) == 1:
            for job in jobs:
                bar.set_postfix_str(job.programme_id)
                r = run_job(job)
                results.append(r)
                bar.update(1)
        else:
            # spawn, not fork: the parent may hold threads (tqdm's monitor) and imported numba/BLAS state.
            broken = _pool_run(jobs, opts.jobs, bar, results)
            # A worker that dies outright (killed, out of memory) breaks the whole pool, so every job still in it
            # fails with BrokenProcessPool. Rerun those one per fresh process: the culprit fails alone.
            for job in broken:
                _pool_run([job], 1, bar, results, last_chance=True)
    finally:
        bar.close()
    return results


def _pool_run(jobs: list[Job], workers: int, bar, results: list[JobResult], last_chance: bool = False) -> list[Job]:
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool

    broken = []
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn"),
                             initializer=_worker_init, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                r = fut.result()
            except BrokenProcessPool as exc:
                if not last_chance:
                    broken.append(job)
                    continue
                r = JobResult(job.programme_id, "failed", 0.0, error=f"worker process died: {exc}")
            except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result: record it, keep going
                r = JobResult(job.programme_id, "failed", 0.0, error=f"worker error: {exc!r}")
            results.append(r)
            bar.set_postfix_str(f"{r.programme_id} {r.status}")
            bar.update(1)
    return broken


def write_manifest(out: Path, results: list[JobResult], jobs: Mapping[str, Job], shared: dict[str, Any],
                   started: dt.datetime, seconds: float) -> dict[str, Any]:
    """``reports/manifest.json``; programmes not in this build keep their previous entry."""
    path = out / "manifest.json"
    previous: dict[str, Any] = {}
    if path.exists():
        try:
            previous = json.loads(path.read_text()).get("programmes", {})
        except ValueError:
            previous = {}
    programmes = dict(previous)
    for r in results:
        entry = dict(previous.get(r.programme_id, {}))
        entry.update({"status": r.status, "seconds": round(r.seconds, 2), "error": r.error or None})
        job = jobs.get(r.programme_id)
        if job is not None:
            entry.update({"template": job.template, "parameters": {k: v for k, v in job.parameters.items()
                                                                   if k != "output_dir"},
                          "input_hash": job.input_hash})
        if r.status == "ok":
            entry.update({"built_at": started.isoformat(timespec="seconds"), "outputs": r.outputs,
                          "timings": {k: round(v, 2) for k, v in r.timings.items()}})
            entry.pop("failed_notebook", None)
        elif r.status == "failed":
            entry.pop("failed_notebook", None)  # its path is printed on the terminal only
            entry["previous_report_kept"] = (out / r.programme_id / ".build-hash").exists()
        programmes[r.programme_id] = entry
    manifest = {
        "built_at": started.isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 2),
        "code": shared["git"],
        "library_hash": shared["library_hash"],
        "world": shared["world"],
        "linked": shared.get("linked"),
        "data_hash": shared["data_hash"],
        "data_files": shared["data_files"],
        "config_files": shared.get("config_files", {}),
        "synthetic": shared["synthetic"],
        "seed": shared["seed"],
        "extract_date": shared["extract_date"],
        "formats": shared["formats"],
        "templates": shared["templates"],
        "packages": package_versions(),
        "programmes": programmes,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, path)
    return manifest


def write_index(out: Path, manifest: dict[str, Any]) -> Path:
    """``reports/index.html``: each programme with its status and links to its HTML and PDF."""
    import jinja2

    from evaluation.config import PROGRAMME_IDS, load_programme
    from evaluation.report.render import TEMPLATES, css

    rows = []
    for pid in PROGRAMME_IDS:
        entry = manifest["programmes"].get(pid)
        folder = out / pid
        if entry is None and not folder.exists():
            continue
        try:
            name = load_programme(pid).name
        except Exception:  # noqa: BLE001 - the index must not fail on a config the build did not use
            name = pid
        rows.append({"id": pid, "name": name, "status": (entry or {}).get("status", "unknown"),
                     "error": (entry or {}).get("error"), "built_at": (entry or {}).get("built_at"),
                     "html": (folder / "report.html").exists(), "pdf": (folder / "report.pdf").exists(),
                     "json": (folder / "results.json").exists()})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    text = env.get_template("index.html.j2").render(rows=rows, m=manifest, css=jinja2.utils.markupsafe.Markup(css()),
                                                     portfolio=(out / "portfolio" / "report.pdf").exists())
    path = out / "index.html"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------- CLI
def add_cli(subparsers) -> None:
    p = subparsers.add_parser("build", help="build programme reports (papermill → HTML → PDF) in parallel",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--world", default=None,
                   help="world folder (default: EVALUATION_WORLD or data/raw/synthetic, generated if absent)")
    p.add_argument("--programme", action="append", default=None, metavar="ID",
                   help="programme id (repeatable; default: all nine)")
    p.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help=f"parallel builds (default {DEFAULT_JOBS})")
    p.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: ipynb,html,pdf (default all)")
    p.add_argument("--out", default=None, help="reports folder (default: <repo>/reports)")
    p.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")
    p.add_argument("--extract-date", default=None, help="data extract date YYYY-MM-DD (default: the world's)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seed for the reports and for generating the default synthetic world (default {DEFAULT_SEED})")
    p.add_argument("--notebooks", default=None, help="folder of report templates (default: <repo>/notebooks)")
    p.add_argument("--template", action="append", default=None, metavar="DESIGN=NOTEBOOK",
                   help="use NOTEBOOK for programmes of DESIGN (repeatable; default: "
                        + ", ".join(f"{k}={v}" for k, v in TEMPLATES_BY_DESIGN.items()) + ")")
    p.add_argument("--linked", default=None,
                   help="linkage output folder (`evaluation link`) whose referrals replace the world's (default: "
                        "data/processed/linked when it was linked from this world's lists; '' for none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_cli)


def _run_cli(args) -> int:
    from evaluation.config import ConfigError, default_world, repo_root

    try:
        formats = parse_formats(args.formats)
        if args.jobs < 1:
            raise BuildError(f"--jobs: must be at least 1, got {args.jobs}")
        if args.extract_date:
            try:
                dt.date.fromisoformat(args.extract_date)
            except ValueError:
                raise BuildError(f"--extract-date: '{args.extract_date}' is not a date (YYYY-MM-DD)") from None
        templates = dict(TEMPLATES_BY_DESIGN)
        for item in args.template or []:
            design, sep, nb = item.partition("=")
            if not sep or design not in TEMPLATES_BY_DESIGN:
                raise BuildError(f"--template: '{item}' is not DESIGN=NOTEBOOK with DESIGN one of "
                                 f"{', '.join(TEMPLATES_BY_DESIGN)}")
            templates[design] = str(Path(nb).resolve()) if Path(nb).exists() else nb
        world = Path(args.world) if args.world else default_world()
        if not world.exists():
            if world.resolve() == default_world().resolve():
                from evaluation.synth import generate_world

                print(f"No world at {world}: generating the synthetic world (seed {args.seed})", file=sys.stderr)
                generate_world(args.seed, out=world)
            else:
                raise BuildError(f"--world: {world} does not exist")
        opts = BuildOptions(world=world, programmes=args.programme, jobs=args.jobs, formats=formats,
                            out=Path(args.out) if args.out else repo_root() / "reports", force=args.force,
                            extract_date=args.extract_date, seed=args.seed,
                            notebooks_dir=Path(args.notebooks) if args.notebooks else None, templates=templates,
                            progress=not args.no_progress, linked=args.linked)
        _check_writable(opts.out)
        summary = build(opts)
    except (BuildError, ConfigError) as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 2
    print(summary.table())
    if (opts.out / "index.html").exists():
        print(f"Reports in {opts.out}; index {opts.out / 'index.html'}")
    return summary.exit_code


def _check_writable(out: Path) -> None:
    """Fail before any work, in one line, when the reports folder cannot be created or written."""
    import tempfile

    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise BuildError(f"--out: cannot write the reports folder {out}: {exc.strerror or type(exc).__name__}") \
            from None
