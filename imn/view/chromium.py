"""Open a page in headless Chromium and report what a reader's browser would: the DOM,
JavaScript errors and console messages, network requests, and a screenshot.

Talks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (JSON messages ended by
a NUL byte on file descriptors 3 and 4), so it needs only the standard library and the
``chromium`` binary (Debian: ``apt-get install chromium``): no driver process, no websocket
client. Unlike ``--dump-dom``, the protocol reports console errors and uncaught exceptions.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BINARIES = ("chromium", "chromium-browser", "google-chrome", "chrome")
INSTALL_HINT = "install Chromium to run it: apt-get install chromium (Debian/Ubuntu)"
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
          # Containers often have a small /dev/shm, which crashes Chromium's renderer.
          "--disable-dev-shm-usage", "--remote-debugging-pipe")


_TRAMPOLINE = (
    "import fcntl, os, sys\n"
    "ends = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 100) for fd in sys.argv[1:3]]\n"
    "for fd in sys.argv[1:3]: os.close(int(fd))\n"
    "for target, fd in zip((3, 4), ends): os.dup2(fd, target); os.close(fd)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def find_chromium() -> str | None:
    """Path of a Chromium-family browser on PATH (``$IMN_CHROMIUM`` first), or None."""
    override = os.environ.get("IMN_CHROMIUM")
    if override:
        return shutil.which(override) or (override if Path(override).exists() else None)
    return next((path for path in map(shutil.which, BINARIES) if path), None)


class BrowserError(RuntimeError):
    pass


class HeadlessPage:
    """One tab of a headless Chromium. Use as a context manager::

        with HeadlessPage(width=1400, height=900) as page:
            page.open(Path("report.html"), ready="document.body.dataset.ready === '1'")
            page.evaluate("document.title"); page.errors; page.screenshot(Path("shot.png"))
    """

    def __init__(self, width: int = 1400, height: int = 1000, binary: str | None = None):
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise BrowserError(f"no Chromium on PATH; {INSTALL_HINT}")
        self.size = (width, height)
        self.errors: list[str] = []  # uncaught exceptions, console.error, failed loads
        self.console: list[str] = []
        self.requests: list[str] = []
        self._next_id = 0
        self._buffer = b""

    # ---------------------------------------------------------------- process and pipe

    def __enter__(self) -> HeadlessPage:
        self._profile = tempfile.TemporaryDirectory(prefix="imn-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser reads commands from its fd 3 and writes replies to its fd 4. A small
        # Python trampoline puts the pipe ends there and execs the browser (no preexec_fn:
        # it can deadlock in a process with threads, as JAX's; no shell: dash cannot redirect
        # descriptors above 9). Both ends are first moved above 100 so that neither clobbers
        # the other on its way to 3 or 4.
        command = [sys.executable, "-c", _TRAMPOLINE, str(to_browser_r), str(from_browser_w),
                   self.binary, *_FLAGS, f"--user-data-dir={self._profile.name}",
                   f"--window-size={self.size[0]},{self.size[1]}", "about:blank"]
        # stderr to a file: a pipe nobody reads would block a chatty browser.
        self._stderr = open(Path(self._profile.name) / "stderr.log", "w+b")
        self._process = subprocess.Popen(command, pass_fds=(to_browser_r, from_browser_w),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=self._stderr)
        os.close(to_browser_r)
        os.close(from_browser_w)
        try:
            # The window's own tab, not a second one: a background tab is not painted, and a
            # screenshot of it can wait for a frame that never comes.
            pages = [t["targetId"] for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
            target = pages[0] if pages else self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            self.call("Page.bringToFront", session=True)
            for domain in ("Runtime", "Log", "Page", "Network"):
                self.call(f"{domain}.enable", session=True)
            self.call("Emulation.setDeviceMetricsOverride", {
                "width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1, "mobile": False},
                session=True)
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._send("Browser.close", {}, None)
        except OSError:
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._stderr.close()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def _send(self, method: str, params: dict, session: str | None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read_message(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                self._stderr.seek(0)
                stderr = self._stderr.read().decode(errors="replace")[-2000:]
                raise BrowserError(f"Chromium closed the pipe (exit {self._process.poll()}): {stderr}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _handle_event(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.errors.append(f"uncaught: {text}")
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            self.console.append(f"{params.get('type')}: {text}")
            if params.get("type") in ("error", "assert"):
                self.errors.append(f"console.{params.get('type')}: {text}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.console.append(f"{entry.get('level')}: {entry.get('text')}")
            if entry.get("level") == "error":
                self.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            self.requests.append(params.get("request", {}).get("url", ""))

    def call(self, method: str, params: dict | None = None, *, session: bool = False,
             timeout: float = 60.0) -> dict:
        """Send one protocol command and return its result (events met meanwhile are kept)."""
        sent = self._send(method, params or {}, self._session if session else None)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == sent:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._handle_event(message)

    # ---------------------------------------------------------------- page actions

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression[:80]!r} threw: "
                               f"{details.get('exception', {}).get('description') or details.get('text')}")
        return result.get("result", {}).get("value")

    def open(self, path: Path, ready: str, timeout: float = 60.0) -> float:
        """Load ``path`` and wait until the expression ``ready`` is true; return seconds."""
        start = time.monotonic()
        self.call("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=True, timeout=timeout)
        self.wait_for(ready, timeout - (time.monotonic() - start))
        return time.monotonic() - start

    def wait_for(self, expression: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        # False while the expression cannot be evaluated yet (e.g. no document.body).
        probe = f"(() => {{ try {{ return Boolean({expression}); }} catch (e) {{ return false; }} }})()"
        while not self.evaluate(probe):
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression!r}; errors: {self.errors}")
            time.sleep(0.05)

    def screenshot(self, out: Path, full_page: bool = True) -> Path:
        """Write a PNG of the page (the whole page height when ``full_page``)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            width = self.evaluate("document.documentElement.scrollWidth")
            height = self.evaluate("document.documentElement.scrollHeight")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        data = self.call("Page.captureScreenshot", params, session=True)["data"]
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out
