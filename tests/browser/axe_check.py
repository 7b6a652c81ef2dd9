"""Run axe-core over HTML pages in headless Chromium, driven over the DevTools protocol pipe.

No driver and no Python dependency: Chromium is started with ``--remote-debugging-pipe`` and speaks the Chrome
DevTools Protocol as NUL-terminated JSON on file descriptors 3 (commands in) and 4 (responses out) — the
transport Puppeteer and Playwright use. Each page is loaded from a ``file://`` URL, axe-core (installed by
``npm ci`` in this folder from package-lock.json) is evaluated in it, and ``axe.run`` returns the violations.

Usage (also what ``tests/test_accessibility.py`` does)::

    python tests/browser/axe_check.py reports/index.html reports/mace/report.html

prints one line per violation and exits 1 when any is serious or critical.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--disable-extensions", "--mute-audio", "--remote-debugging-pipe"]
SERIOUS = {"serious", "critical"}


class BrowserError(RuntimeError):
    """Chromium did not start, answer or load a page in time."""


def chromium_path() -> str | None:
    """The Chromium binary (``EVALUATION_CHROMIUM`` overrides), or None."""
    env = os.environ.get("EVALUATION_CHROMIUM")
    if env:
        return env
    for c in CHROMIUM_CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    return shutil.which("chromium")


class Chromium:
    """A headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, binary: str | None = None, timeout: float = 60.0):
        self.binary = binary or chromium_path()
        if not self.binary:
            raise BrowserError("Chromium not found (apt-get install chromium, or set EVALUATION_CHROMIUM)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="axe-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # the child must find the pipe ends at fds 3 and 4: copy them above 10 first so dup2 cannot clobber them
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        os.close(to_child_r)
        os.close(from_child_w)

        def wire():  # runs in the child before exec
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen([self.binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, pass_fds=(3, 4), preexec_fn=wire)
        os.close(hi_r)
        os.close(hi_w)
        self._buf = b""
        self._id = 0
        self._events: list[dict] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=True)
        self.send("Runtime.enable", session=True)

    # -------------------------------------------------------------------------------------- protocol
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    err = self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.stderr else ""
                    raise BrowserError(f"Chromium closed the DevTools pipe: {err}")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, ev in enumerate(self._events):
                if ev.get("method") == method:
                    return self._events.pop(i)
            self._events.append(self._read_message(deadline))

    def evaluate(self, expression: str, *, await_promise: bool = False):
        res = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": await_promise,
                                             "returnByValue": True}, session=True)
        if "exceptionDetails" in res:
            raise BrowserError(f"script failed: {res['exceptionDetails'].get('text')} "
                               f"{res['exceptionDetails'].get('exception', {}).get('description', '')}"[:500])
        return res.get("result", {}).get("value")

    # -------------------------------------------------------------------------------------- pages
    def load(self, path: Path | str) -> None:
        self._events.clear()
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=True)
        self.wait_event("Page.loadEventFired")

    def axe(self, path: Path | str, axe_js: Path = AXE_JS) -> list[dict]:
        """axe-core's violations on one page: ``[{id, impact, help, nodes, targets}]``."""
        self.load(path)
        self.evaluate(axe_js.read_text(encoding="utf-8"))
        out = self.evaluate(
            "axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations.map(v => ("
            "{id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,"
            " targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))", await_promise=True)
        return json.loads(out)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check(paths, binary: str | None = None) -> dict[str, list[dict]]:
    """axe violations for each page (by path)."""
    with Chromium(binary) as browser:
        return {str(p): browser.axe(p) for p in paths}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    results = check(argv)
    bad = 0
    for page, violations in results.items():
        for v in violations:
            bad += v["impact"] in SERIOUS
            print(f"{page}: {v['impact']}: {v['id']} ({v['nodes']} nodes) {v['help']} {v['targets']}")
    print(f"{len(results)} page(s), {bad} serious or critical violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
