"""Open a local HTML file in headless Chromium over the DevTools protocol and record what happened.

Console messages, uncaught exceptions, log entries (CSP violations land there), every network request,
any JavaScript dialog (an `alert` that ran), values computed in the page, and a screenshot. Used by
tests/test_htmlreport.py and bench/report_size.py; needs Debian's `chromium` and the `websocket-client` pip
package.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
         "--mute-audio", "--remote-debugging-port=0", "--window-size=1280,2000"]


def chromium() -> str | None:
    """The Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def missing() -> str | None:
    """Why a browser run is impossible here, or None."""
    if chromium() is None:
        return "Chromium is not installed (apt-get install -y chromium)"
    try:
        import websocket  # noqa: F401
    except ImportError:
        return "websocket-client is not installed (pip install websocket-client)"
    return None


@dataclass
class PageRun:
    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    exceptions: list[str] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict)
    ready: bool = False
    seconds_to_ready: float = 0.0  # wall time from navigation to the page's script having run

    @property
    def errors(self) -> list[str]:
        return ([f"console.{kind}: {text}" for kind, text in self.console if kind in ("error", "assert")]
                + [f"exception: {text}" for text in self.exceptions]
                + [f"log.{level}: {text}" for level, text in self.log if level == "error"])


class _Session:
    def __init__(self, ws, session_id: str | None = None) -> None:
        self.ws, self.session_id, self.next_id, self.events = ws, session_id, 0, []

    def call(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session_id:
            message["sessionId"] = self.session_id
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._dismiss(reply)
            self.events.append(reply)
        raise TimeoutError(method)

    def _dismiss(self, event: dict) -> None:
        # An open alert() blocks the page, and every later command with it: close it, keep the event as evidence.
        if event.get("method") == "Page.javascriptDialogOpening" and event.get("sessionId"):
            self.ws.send(json.dumps({"id": 10**9 + len(self.events), "method": "Page.handleJavaScriptDialog",
                                     "params": {"accept": True}, "sessionId": event["sessionId"]}))

    def pump(self, seconds: float) -> None:
        """Read events for `seconds`."""
        self.ws.settimeout(0.2)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # a websocket timeout: nothing to read yet
                event = json.loads(self.ws.recv())
                self._dismiss(event)
                self.events.append(event)
        self.ws.settimeout(60)


def open_page(path: str | os.PathLike, script: str | None = None, screenshot: str | os.PathLike | None = None,
              timeout: float = 120.0, full_page: bool = False) -> PageRun:
    """Load `path`, wait for `document.documentElement.dataset.ready`, run `script` (an expression that
    returns JSON-able values, awaited if a promise), take a screenshot, and report."""
    import websocket

    binary = chromium()
    if binary is None:
        raise RuntimeError(missing())
    url = Path(path).resolve().as_uri()
    run = PageRun()
    with tempfile.TemporaryDirectory(prefix="framing-chromium-") as profile:
        proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("Chromium did not start its DevTools endpoint")
                time.sleep(0.1)
            port, browser_path = port_file.read_text().split()[:2]
            ws = websocket.create_connection(f"ws://127.0.0.1:{port}{browser_path}", timeout=60,
                                             suppress_origin=True, enable_multithread=False)
            browser = _Session(ws)
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            page = _Session(ws, session)
            page.events = browser.events
            for domain in ("Runtime", "Log", "Network", "Page"):
                page.call(f"{domain}.enable")
            page.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 2000, "deviceScaleFactor": 1,
                                                             "mobile": False})
            started = time.monotonic()
            page.call("Page.navigate", {"url": url})
            deadline = started + timeout
            while time.monotonic() < deadline:
                state = page.call("Runtime.evaluate", {"expression": "document.documentElement.dataset.ready || ''",
                                                       "returnByValue": True})
                if state.get("result", {}).get("value") == "1":
                    run.ready = True
                    run.seconds_to_ready = time.monotonic() - started
                    break
                time.sleep(0.05)
            if script and run.ready:
                result = page.call("Runtime.evaluate", {"expression": script, "returnByValue": True,
                                                        "awaitPromise": True}, timeout=timeout)
                if "exceptionDetails" in result:
                    run.exceptions.append(json.dumps(result["exceptionDetails"])[:2000])
                run.values = result.get("result", {}).get("value") or {}
            page.pump(0.5)
            if screenshot:
                params: dict = {"format": "png"}
                if full_page:
                    size = page.call("Page.getLayoutMetrics")["cssContentSize"]
                    params |= {"captureBeyondViewport": True,
                               "clip": {"x": 0, "y": 0, "width": 1280, "height": size["height"], "scale": 1}}
                shot = page.call("Page.captureScreenshot", params)
                Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
            _collect(run, page.events)
            with contextlib.suppress(Exception):  # the browser may close the socket before it replies
                browser.call("Browser.close", timeout=10)
            ws.close()
        finally:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return run


def _collect(run: PageRun, events: list[dict]) -> None:
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            run.console.append((params.get("type", ""), text))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            run.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            run.log.append((entry.get("level", ""), entry.get("text", "")))
        elif method == "Network.requestWillBeSent":
            run.requests.append(params.get("request", {}).get("url", ""))
        elif method == "Page.javascriptDialogOpening":
            run.dialogs.append(params.get("message", ""))
