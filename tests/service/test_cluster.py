"""``entropi cluster`` for real: a local Ray, Serve's proxy, two CPU replicas on the tiny
model, callers over websockets, a replica SIGKILLed mid-call. Each test starts Ray and its
replicas once (~30 s of a 45–60 s test on 2 busy cores).

One slot per replica: callers spread over both replicas; the next caller hears "busy"; one
person calling twice lands on the other replica and continues their ledger; killing the
replica under a call tells that caller (kind 5 + close), leaves the other caller talking and
the person's flushed memory intact, and Serve starts a new replica that takes the person's
next call. Two slots per replica (batched engine): four callers at once, two on each
replica, a fifth hears "busy".
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from entropi.service.cluster import REPLICA_LOST
from tests.service.conftest import DaemonRun
from tests.transports.websocket.test_websocket import ogg_pages

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

TOKENS = {f"{name.upper()}_TOKEN": f"{name}-secret" for name in ("ada", "bob", "cy", "dee", "eve")}
# From 21 s the demo input speaks at once: a caller who never spoke leaves no journal entry.
PAGES = ogg_pages(30.0, offset_s=21.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Caller:
    """One websocket caller through Serve's proxy, sending audio at real-time pace."""

    def __init__(self, port: int, token: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/api/chat?token={token}"
        self.first = b""
        self.error: str | None = None
        self.audio_at: list[float] = []  # when each audio reply arrived
        self.close_code: int | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def dial(self) -> bytes:
        """Connect; the first message (handshake, or kind 5); audio goes out once live."""
        got = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(got))
        return await asyncio.wait_for(got, 60)

    async def _run(self, got: asyncio.Future) -> None:
        async with aiohttp.ClientSession() as s, s.ws_connect(self.url) as ws:
            first = await ws.receive(timeout=60)
            self.first = first.data if isinstance(first.data, bytes) else b""
            if self.first[:1] == b"\x05":
                self.error = self.first[1:].decode()
            got.set_result(self.first)
            if self.first != b"\x00":
                await ws.close()
                return
            reader = asyncio.create_task(self._read(ws))
            t0, k = time.monotonic(), 0
            while not self._stop.is_set() and not ws.closed:
                try:
                    await ws.send_bytes(PAGES[k % len(PAGES)])
                except ConnectionError:
                    break
                k += 1
                await asyncio.sleep(max(0.0, t0 + k * 0.08 - time.monotonic()))
            if not ws.closed:
                await ws.close()
            await asyncio.wait_for(reader, 30)
            self.close_code = ws.close_code

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY and msg.data[:1] == b"\x01":
                self.audio_at.append(time.monotonic())
            elif msg.type == aiohttp.WSMsgType.BINARY and msg.data[:1] == b"\x05":
                self.error = msg.data[1:].decode()

    async def hang_up(self) -> None:
        self._stop.set()
        await self.ended()

    async def ended(self) -> None:
        assert self._task is not None
        await asyncio.wait_for(self._task, 60)


class Cluster:
    def __init__(self, run: DaemonRun, proc: subprocess.Popen | None = None) -> None:
        self.run = run
        self.proc = proc  # `entropi cluster`: a wait fails at once when it has exited
        self.state = run.dir / "state"
        self.people = run.dir / "people"

    def replicas(self) -> dict[str, dict[str, Any]]:
        out = {}
        for f in self.state.glob("replica-*.json"):
            try:
                d = json.loads(f.read_text())
            except ValueError:
                continue  # never half-written (atomic), but a first write may race the glob
            out[f.stem.removeprefix("replica-")] = d
        return out

    def serving(self, user: str) -> dict[str, Any] | None:
        """The live replica with ``user`` in a call (a killed one's file still names them)."""
        return next((d for d in self.replicas().values()
                     if user in d.get("users", ()) and alive(d["pid"])), None)

    def ledger_window(self, user: str) -> int:
        path = self.people / user / "ledger.json"
        return json.loads(path.read_text())["window"] if path.exists() else 0

    async def until(self, pred, what: str, timeout: float = 90) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                log = (self.run.dir / "cluster.log").read_text()[-2000:]
                raise AssertionError(f"entropi cluster exited ({self.proc.returncode}) while "
                                     f"waiting for {what}:\n{log}")
            got = pred()
            if got:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.replicas()}")

    def idle(self, replica: str) -> bool:
        d = self.replicas().get(replica, {})
        return d.get("state") == "waiting" and d.get("slots_in_use") == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def status_lines(config: Path) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "entropi", "status", "--cluster", "--config",
                          str(config)], capture_output=True, text=True, timeout=60)
    return out.stdout.splitlines()


def run_cluster(tmp_path: Path, model_cache: Path, scenario, **overrides: Any) -> None:
    """``entropi cluster`` (2 CPU replicas) in its own process; ``scenario(cluster, port,
    config)`` talks to it; then SIGTERM must stop it (and its local Ray) with exit 0."""
    run = DaemonRun(tmp_path, model_cache)
    port = free_port()
    (tmp_path / "people").mkdir()
    config = run.config(**{
        "audio.input": "websocket", "audio.output": "websocket", "audio.queue_frames": 64,
        "server.port": port, "window.min_seconds": 1.0, "window.max_seconds": 2.0,
        "window.grace_seconds": 1.0,
        # No LLM: compaction falls back at once (the ledger is written either way).
        "secondary_model.backend": "openai", "secondary_model.base_url": "http://127.0.0.1:9/v1",
        "secondary_model.deadline_seconds": 1.0, "secondary_model.stream": False,
        "cluster.replicas": 2, "cluster.num_gpus": 0, "cluster.num_cpus": 0.5,
        "cluster.state_dir": str(tmp_path / "state"),
        "memory.users_dir": str(tmp_path / "people"),  # the share every replica reaches
        "server.tokens": {var: token.split("-")[0] for var, token in TOKENS.items()},
        **overrides})
    env = {**os.environ, **TOKENS}
    with open(tmp_path / "cluster.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "entropi", "cluster", "--config",
                                 str(config), "--log-format", "json"], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=tmp_path)
    cluster = Cluster(run, proc)
    try:
        asyncio.run(scenario(cluster, port, config))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, (tmp_path / "cluster.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:  # a failed scenario: stop the local Ray with it, not orphaned
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def both_replicas_up(cluster: Cluster) -> None:
    # The command says so once Serve routes to every replica (their files say "waiting" a
    # moment before Serve has marked them running).
    log = cluster.run.dir / "cluster.log"
    await cluster.until(lambda: "2 replicas behind" in log.read_text(), "two replicas",
                        timeout=240)


def test_cluster_spreads_refuses_follows_the_person_and_survives_a_killed_replica(
        tmp_path, model_cache):
    run_cluster(tmp_path, model_cache, scenario)


def test_two_slots_per_replica_four_callers_at_once_and_a_fifth_is_busy(tmp_path, model_cache):
    run_cluster(tmp_path, model_cache, four_and_a_fifth, **{"runtime.max_conversations": 2})


async def four_and_a_fifth(cluster: Cluster, port: int, config: Path) -> None:
    await both_replicas_up(cluster)
    people = ["ada", "bob", "cy", "dee"]
    callers = [Caller(port, f"{name}-secret") for name in people]
    for caller in callers:  # a moment apart: see bench/cluster.py on simultaneous arrivals
        assert await caller.dial() == b"\x00"
    where = await cluster.until(
        lambda: {u: d["replica"] for d in cluster.replicas().values() if alive(d["pid"])
                 for u in d.get("users", ())} if sum(
            len(d.get("users", ())) for d in cluster.replicas().values()) == 4 else None,
        "four callers in calls")
    assert sorted(where) == sorted(people)
    assert sorted(list(where.values()).count(r) for r in set(where.values())) == [2, 2]
    eve = Caller(port, "eve-secret")
    assert (await eve.dial())[:1] == b"\x05" and eve.error.startswith("busy")
    await asyncio.sleep(1.0)
    for caller in callers:
        await caller.hang_up()
        assert len(caller.audio_at) >= 10 and caller.error is None


async def scenario(cluster: Cluster, port: int, config: Path) -> None:
    await both_replicas_up(cluster)

    # 1. Two callers: one on each replica; a third hears "busy" at once.
    ada, bob = Caller(port, "ada-secret"), Caller(port, "bob-secret")
    assert await ada.dial() == b"\x00"
    await cluster.until(lambda: (cluster.serving("ada") or {}).get("slots_in_use"),
                        "ada's slot")
    assert await bob.dial() == b"\x00"
    r_ada = (await cluster.until(lambda: cluster.serving("ada"), "ada on a replica"))["replica"]
    r_bob = (await cluster.until(lambda: cluster.serving("bob"), "bob on a replica"))["replica"]
    assert r_ada != r_bob
    cy = Caller(port, "cy-secret")
    assert (await cy.dial())[:1] == b"\x05" and cy.error.startswith("busy")
    lines = await asyncio.to_thread(status_lines, config)
    assert sum("running" in li and "slots in use 1/1" in li for li in lines) == 2, lines

    # 2. Ada hangs up once a window has passed: her memory is flushed under her folder.
    await cluster.until(lambda: cluster.ledger_window("ada") >= 1, "ada's first window")
    await ada.hang_up()
    await cluster.until(lambda: cluster.idle(r_ada), "ada's replica free again")
    first_window = cluster.ledger_window("ada")
    journal = "".join(p.read_text() for p in (cluster.people / "ada").rglob("*.md"))
    assert journal.count("Session ended after") == 1

    # 3. Cy takes ada's old replica; bob leaves; ada calls again: the other replica, and it
    # continues her ledger (a fresh one would number its first window 1 again).
    cy = Caller(port, "cy-secret")
    assert await cy.dial() == b"\x00"
    assert (await cluster.until(lambda: cluster.serving("cy"), "cy"))["replica"] == r_ada
    await bob.hang_up()
    await cluster.until(lambda: cluster.idle(r_bob), "bob's replica free again")
    ada = Caller(port, "ada-secret")
    assert await ada.dial() == b"\x00"
    victim = await cluster.until(lambda: cluster.serving("ada"), "ada's second call")
    assert victim["replica"] == r_bob != r_ada
    seen = await cluster.until(lambda: cluster.ledger_window("ada") != first_window and
                               cluster.ledger_window("ada"), "ada's next window")
    assert seen == first_window + 1

    # 4. SIGKILL the replica under ada's call: she hears kind 5 and the socket closes; cy on
    # the other replica keeps talking; her flushed memory is intact; Serve replaces it.
    os.kill(victim["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    await ada.ended()
    assert ada.error == REPLICA_LOST and ada.close_code == 1011
    await asyncio.sleep(2.0)
    assert sum(t > killed_at for t in cy.audio_at) >= 10  # ~25 frames in 2 s: not stalled
    assert cluster.ledger_window("ada") >= first_window + 1
    journal = "".join(p.read_text() for p in (cluster.people / "ada").rglob("*.md"))
    assert journal.count("Session ended after") == 1  # call 1's entry, whole
    await cy.hang_up()
    await cluster.until(
        lambda: [r for r, d in cluster.replicas().items()
                 if r not in (r_ada, r_bob) and d.get("state") == "waiting"],
        "a replacement replica", timeout=180)
    lines = await asyncio.to_thread(status_lines, config)
    assert any(r_bob in li and ": gone" in li for li in lines), lines

    # 5. Her lock died with the killed replica: her next call is taken.
    ada = Caller(port, "ada-secret")
    await cluster.until(lambda: cluster.idle(r_ada), "cy's replica free again")
    assert await ada.dial() == b"\x00"
    assert (await cluster.until(lambda: cluster.serving("ada"), "ada"))["replica"] != r_bob
    await ada.hang_up()
