"""Start-up failures become one ``DiscordError`` line: py-cord's real HTTP client against a
loopback stand-in for Discord's REST API (gateway and voice cannot run offline)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import types

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from discord.http import Route

from entropi.config import Config
from entropi.core.errors import DiscordError
from entropi.memory.consent import ConsentStore
from entropi.transports.discord.bot import DiscordLink
from entropi.transports.discord.consent import ConsentCommands

USER = {"id": "9", "username": "ada", "discriminator": "0", "avatar": None, "bot": True}
CHANNELS = {
    "404": (404, {"message": "Unknown Channel", "code": 10003}),
    "403": (403, {"message": "Missing Access", "code": 50001}),
    "500": (200, {"id": "500", "type": 0, "guild_id": "1", "name": "general", "position": 0,
                  "permission_overwrites": []}),
}


def _json(body: dict, status: int = 200) -> web.Response:
    # py-cord parses a body as JSON only for exactly "application/json" (no charset).
    return web.Response(body=json.dumps(body).encode(), status=status,
                        content_type="application/json")


@contextlib.asynccontextmanager
async def fake_api(monkeypatch):
    async def me(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bot good-token":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(USER)

    async def channel(request: web.Request) -> web.Response:
        status, body = CHANNELS[request.match_info["cid"]]
        return _json(body, status=status)

    app = web.Application()
    app.router.add_get("/api/v10/users/@me", me)
    app.router.add_get("/api/v10/channels/{cid}", channel)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}/api/v{{API_VERSION}}"
    monkeypatch.setattr(Route, "API_BASE_URL", base)
    try:
        yield
    finally:
        await server.close()


def _link(tmp_path, token: str, channel: int) -> DiscordLink:
    cfg = Config.model_validate({"discord": {"guild_id": 1, "channel_id": channel}})
    store = ConsentStore(tmp_path / "c.json", default_remember=False)
    return DiscordLink(cfg.discord, token, ConsentCommands(cfg, store), on_leave=lambda u: None)


async def test_rejected_token(monkeypatch, tmp_path):
    link = _link(tmp_path, "bad-token", 404)
    async with fake_api(monkeypatch):
        with pytest.raises(DiscordError, match=r"token in \$DISCORD_BOT_TOKEN was rejected"):
            await link.start(sink=None, source=None)  # type: ignore[arg-type]
        await link.close()


@pytest.mark.parametrize(("channel", "message"), [
    (404, "no channel 404"), (403, "may not see channel 403"),
    (500, "500 is not a voice channel")])
async def test_channel_problems(monkeypatch, tmp_path, channel, message):
    link = _link(tmp_path, "good-token", channel)
    async with fake_api(monkeypatch):
        await link.bot.login("good-token")  # what start() does before the gateway
        with pytest.raises(DiscordError, match=message):
            await link._find_channel()
        await link.close()


class _VC:
    def __init__(self, connected: bool) -> None:
        self.connected = connected
        self.recording = self.playing = None

    def is_connected(self) -> bool:
        return self.connected

    def start_recording(self, sink) -> None:
        self.recording = sink

    def play(self, source) -> None:
        self.playing = source

    async def disconnect(self, force: bool = False) -> None:
        self.connected = False


class _Channel:
    """A voice channel whose connect fails twice (network down), then works."""

    name = "talk"

    def __init__(self) -> None:
        self.tries = 0

    async def connect(self, timeout: float, reconnect: bool = True) -> _VC:
        self.tries += 1
        if self.tries <= 2:
            raise TimeoutError("voice server unreachable")
        return _VC(True)


async def test_rejoins_with_backoff_and_reattaches(tmp_path):
    link = _link(tmp_path, "good-token", 404)
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)
        if link.rejoins or len(waits) > 20:
            link._closing = True
        await asyncio.sleep(0)

    link._sleep = sleep
    link._channel, link._vc = _Channel(), _VC(False)
    link._sink, link._source = types.SimpleNamespace(vc=None), object()
    await link._keep_joined()
    assert link.rejoins == 1 and link._channel.tries == 3
    assert waits[:6] == [1.0, 1.0, 1.0, 2.0, 1.0, 4.0]  # check, backoff 1, 2, 4 s
    assert link._vc.recording is link._sink and link._vc.playing is link._source
    assert link._sink.vc is link._vc
    await link.bot.close()
