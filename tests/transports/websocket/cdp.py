"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         "--autoplay-policy=no-user-gesture-required", "--window-size=1100,720",
         "--remote-debugging-port=0"]


class Browser:
    def __init__(self, url: str, workdir: Path, microphone_wav: Path) -> None:
        self.profile = workdir / "chromium-profile"
        with open(workdir / "chromium.log", "wb") as log:
            self.proc = subprocess.Popen(
                ["chromium", *FLAGS, f"--user-data-dir={self.profile}",
                 f"--use-file-for-fake-audio-capture={microphone_wav}", url],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._id = 0

    def _page_ws(self, timeout: float = 60) -> str:
        port_file = self.profile / "DevToolsActivePort"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if port_file.exists() and port_file.read_text().strip():
                port = port_file.read_text().split()[0]
                try:
                    pages = json.loads(_get(f"http://127.0.0.1:{port}/json/list"))
                except OSError:
                    pages = []
                for page in pages:
                    if page.get("type") == "page":
                        return page["webSocketDebuggerUrl"]
            time.sleep(0.2)
        raise AssertionError("Chromium's DevTools endpoint never appeared")

    async def _call(self, method: str, **params: Any) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s, \
                s.ws_connect(self._page_ws(), max_msg_size=64 << 20) as ws:
            self._id += 1
            await ws.send_json({"id": self._id, "method": method, "params": params})
            async for msg in ws:
                data = json.loads(msg.data)
                if data.get("id") == self._id:
                    if "error" in data:
                        raise AssertionError(f"{method}: {data['error']}")
                    return data["result"]
        raise AssertionError(f"{method}: no answer")

    def evaluate(self, expression: str) -> Any:
        result = asyncio.run(self._call("Runtime.evaluate", expression=expression,
                                        returnByValue=True))
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        result = asyncio.run(self._call("Page.captureScreenshot", format="png"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()
