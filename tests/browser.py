"""Headless Chromium for the report tests: find (or install) it, dump a page, drive a page.

``find_chromium()`` returns Debian's ``chromium``; when it is missing the test is skipped
with the reason.  The tests never install it themselves: ``.ci/install-test-tools`` does,
from the README's test command.  ``TENANT_SYNC_CHROMIUM`` names another binary.

Two ways to use it: the command-line modes (``dump_dom``, ``screenshot``), and
:class:`DevTools`, a small client of the DevTools protocol over
``--remote-debugging-pipe`` (NUL-separated JSON on file descriptors 3 and 4, the
transport Puppeteer uses) to click, type and evaluate scripts in a live page, with no
dependency beyond the standard library.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

__all__ = ["DevTools", "dump_dom", "find_chromium", "screenshot"]

RUN_TIMEOUT_S = 60

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

# Runs in the child before Chromium: put the two pipe ends on the descriptors 3 and 4 that
# --remote-debugging-pipe expects.  Copies above 10 first, so neither end is overwritten.
_TRAMPOLINE = """
import fcntl, os, sys
high = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3]]
for fd in sys.argv[1:3]:
    os.close(int(fd))
for target, fd in zip((3, 4), high):
    os.dup2(fd, target)
    os.close(fd)
os.execvp(sys.argv[3], sys.argv[3:])
"""


def find_chromium() -> str:
    """The Chromium binary; skips the calling test, with the reason, when there is none."""
    found = _existing_chromium()
    if found:
        return found
    pytest.skip(
        "headless Chromium not found: install it (.ci/install-test-tools, or the chromium"
        " package) or set TENANT_SYNC_CHROMIUM to a Chromium binary"
    )


def dump_dom(binary: str, url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran on load, as HTML text."""
    return _run(binary, profile, "--dump-dom", url).stdout


def screenshot(
    binary: str, url: str, path: Path, profile: Path, size: tuple[int, int] = (1280, 900)
) -> Path:
    """Save a PNG of the page at ``url`` (one window of ``size`` pixels) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    _run(binary, profile, f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", url)
    return path


class DevTools:
    """One headless Chromium page, driven over the DevTools protocol.

    ::

        with DevTools(find_chromium(), tmp_path / "profile") as page:
            page.open(url)
            page.click("#tenants th[data-key=duration_s] button")
            assert page.evaluate("document.title") == "..."
    """

    def __init__(self, binary: str, profile: Path, size: tuple[int, int] = (1280, 900)) -> None:
        """Start Chromium and attach to a blank page of ``size`` pixels."""
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._session: str | None = None
        self._stderr = profile.with_name(profile.name + ".log")
        self._process, self._send_fd, self._receive_fd = _start_piped(binary, profile, self._stderr)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
        self._session = attached["sessionId"]
        self.call("Page.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=size[0],
            height=size[1],
            deviceScaleFactor=1,
            mobile=False,
        )

    def __enter__(self) -> DevTools:
        """The page itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the browser."""
        self.close()

    def call(self, method: str, timeout_s: float = RUN_TIMEOUT_S, **params: Any) -> Any:
        """Send one protocol command (to the page once attached) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session:
            message["sessionId"] = self._session
        _write_all(self._send_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._receive(deadline, f"a reply to {method}")
            if reply.get("id") != self._next_id:
                self._events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{method} failed: {reply['error']}")
            return reply.get("result", {})

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        self._events.clear()
        self.call("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """Evaluate a JavaScript expression in the page and return its JSON value."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 10) -> Any:
        """Poll ``expression`` until it is truthy; return its value or fail on time-out."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"still false after {timeout_s}s: {expression}")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """Click the middle of the first element matching ``selector``, as a mouse would."""
        box = self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return null; el.scrollIntoView({block: 'center'});"
            " const r = el.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
        )
        if box is None:
            raise AssertionError(f"nothing to click at {selector!r}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left" if kind != "mouseMoved" else "none",
                clickCount=1 if kind != "mouseMoved" else 0,
            )

    def type_text(self, selector: str, text: str) -> None:
        """Focus the element matching ``selector`` and type ``text`` into it."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def select_option(self, selector: str, value: str) -> None:
        """Choose ``value`` in a ``<select>`` as a user would: set it, fire input and change."""
        self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            f" el.focus(); el.value = {json.dumps(value)};"
            " el.dispatchEvent(new Event('input', {bubbles: true}));"
            " el.dispatchEvent(new Event('change', {bubbles: true})); })()"
        )

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the visible part of the page to ``path``."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Close the browser, killing it if it does not exit in a few seconds."""
        try:
            self._session = None
            self.call("Browser.close", timeout_s=5)
        except (OSError, RuntimeError, AssertionError):
            pass  # already gone, or not listening: the kill below handles it
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill_group(self._process)
        finally:
            os.close(self._send_fd)
            os.close(self._receive_fd)

    def _wait_event(self, method: str, timeout_s: float = RUN_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self._events:
                if event.get("method") == method:
                    self._events.remove(event)
                    return event
            self._events.append(self._receive(deadline, f"the event {method}"))

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._receive_fd], [], [], max(remaining, 0))
            if not ready:
                raise AssertionError(f"Chromium sent no {waiting_for}; log: {self._log_tail()}")
            chunk = os.read(self._receive_fd, 1 << 20)
            if not chunk:
                raise AssertionError(f"Chromium exited; log: {self._log_tail()}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def _log_tail(self) -> str:
        try:
            return self._stderr.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


def _existing_chromium() -> str | None:
    override = os.environ.get("TENANT_SYNC_CHROMIUM")
    if override:
        return override
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _command(binary: str, profile: Path, *args: str) -> list[str]:
    return [binary, *_FLAGS, f"--user-data-dir={profile}", *args]


def _run(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        _command(binary, profile, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise AssertionError(f"Chromium did not finish in {RUN_TIMEOUT_S}s: {args}") from None
    if process.returncode != 0:
        raise AssertionError(f"Chromium exited with {process.returncode}: {stderr[-2000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _start_piped(
    binary: str, profile: Path, stderr: Path
) -> tuple[subprocess.Popen[bytes], int, int]:
    to_browser, from_us = os.pipe()
    to_us, from_browser = os.pipe()
    command = _command(binary, profile, "--remote-debugging-pipe", "about:blank")
    with stderr.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, str(to_browser), str(from_browser), *command],
            pass_fds=(to_browser, from_browser),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    os.close(to_browser)
    os.close(from_browser)
    return process, from_us, to_us


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _kill_group(process: subprocess.Popen[Any]) -> None:
    # Chromium's renderers share the process group started for it (start_new_session).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
