"""``DiscordLink``: the py-cord bot that logs in, joins the voice channel, keeps it joined.

Start: log in, open the gateway, find the channel, check permissions, join, hand py-cord the
transport's sink (receive) and source (send). Every failure a person must fix (bad token,
unknown channel, missing permission, no libopus) becomes one ``DiscordError`` line, exit 2.
After that the link rejoins by itself after a voice disconnect (backoff 1, 2, 4 … s up to
``discord.reconnect_max_seconds``); py-cord's gateway reconnects on its own. Slash commands:
``/remember-me``, ``/forget-me``, ``/what-do-you-know`` (answered privately).
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import discord
from discord.sinks import Sink

from entropi.config import DiscordSection
from entropi.core.errors import DiscordError
from entropi.core.logs import get_logger
from entropi.transports.discord.consent import ConsentCommands

log = get_logger(__name__)

# Non-privileged intents only: voice states carry the members of the voice channel.
INTENTS = discord.Intents(guilds=True, voice_states=True)
NEEDED = ("view_channel", "connect", "speak", "use_voice_activation")


def load_opus() -> None:
    if discord.opus.is_loaded():
        return
    with contextlib.suppress(Exception):
        discord.opus._load_default()
    if not discord.opus.is_loaded():
        raise DiscordError("libopus is not installed (Debian: apt install libopus0); the bot "
                           "cannot encode or decode voice without it")


class DiscordLink:
    def __init__(self, cfg: DiscordSection, token: str, commands: ConsentCommands,
                 on_leave: Callable[[int], None]) -> None:
        self.cfg = cfg
        self._token = token
        self._commands = commands
        self._on_leave = on_leave
        self.bot = discord.Bot(intents=INTENTS)
        self._channel: Any = None
        self._vc: Any = None
        self._sink: Sink | None = None
        self._source: discord.AudioSource | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._closing = False
        self.rejoins = 0
        self._sleep = asyncio.sleep  # tests shorten the backoff waits
        self._register()

    # ------------------------------------------------------------------ start

    async def start(self, sink: Sink, source: discord.AudioSource) -> None:
        load_opus()
        self._sink, self._source = sink, source
        try:
            await self.bot.login(self._token)
        except discord.LoginFailure:
            raise DiscordError(f"the bot token in ${self.cfg.token_env} was rejected by "
                               "Discord; copy it again from the Developer Portal (Bot → "
                               "Reset Token)") from None
        self._tasks.append(asyncio.create_task(self.bot.connect(reconnect=True),
                                               name="discord-gateway"))
        try:
            await asyncio.wait_for(self.bot.wait_until_ready(),
                                   self.cfg.connect_timeout_seconds)
        except TimeoutError:
            await self._fail_gateway()
        self._channel = await self._find_channel()
        await self._join()
        self._tasks.append(asyncio.create_task(self._keep_joined(), name="discord-rejoin"))

    async def _fail_gateway(self) -> None:
        gateway = self._tasks[0]
        if gateway.done() and gateway.exception() is not None:
            exc = gateway.exception()
            if isinstance(exc, discord.PrivilegedIntentsRequired):
                raise DiscordError("the gateway refused the bot's intents; see the README "
                                   "(Discord bot: intents)") from None
            raise DiscordError(f"cannot open Discord's gateway ({exc})") from None
        raise DiscordError(f"the bot did not become ready within "
                           f"{self.cfg.connect_timeout_seconds:g} s "
                           f"(discord.connect_timeout_seconds)")

    async def _find_channel(self) -> Any:
        cid, gid = self.cfg.channel_id, self.cfg.guild_id
        try:
            channel = self.bot.get_channel(cid) or await self.bot.fetch_channel(cid)
        except discord.NotFound:
            raise DiscordError(f"discord.channel_id: no channel {cid} (or the bot is not in "
                               "its server; invite it with the README's link)") from None
        except discord.Forbidden:
            raise DiscordError(f"discord.channel_id: the bot may not see channel {cid}; give "
                               "it View Channel") from None
        if not isinstance(channel, discord.VoiceChannel | discord.StageChannel):
            raise DiscordError(f"discord.channel_id: {cid} is not a voice channel")
        if channel.guild.id != gid:
            raise DiscordError(f"discord.channel_id: {cid} is in server {channel.guild.id}, "
                               f"not discord.guild_id {gid}")
        perms = channel.permissions_for(channel.guild.me)
        missing = [p for p in NEEDED if not getattr(perms, p)]
        if missing:
            raise DiscordError(f"the bot lacks permission {', '.join(missing)} in voice "
                               f"channel {channel.name!r}; grant it in the channel settings")
        return channel

    async def _join(self) -> None:
        try:
            self._vc = await self._channel.connect(timeout=self.cfg.connect_timeout_seconds)
        except discord.Forbidden:
            raise DiscordError(f"the bot may not join voice channel {self._channel.name!r} "
                               "(Connect permission)") from None
        except (TimeoutError, discord.ClientException) as exc:
            raise DiscordError(f"cannot join voice channel {self._channel.name!r} "
                               f"({exc or 'timed out'})") from None
        self._attach()
        log.info("discord_joined", channel=self._channel.name, guild=self._channel.guild.name)
        log.warning("discord_receive_experimental", detail="py-cord 2.8.1 warns that voice "
                    "receive under DAVE may not work yet (pycord issue 3139); if the agent "
                    "hears only silence, check `entropi status` and the README checklist")

    def _attach(self) -> None:
        assert self._vc is not None and self._sink is not None and self._source is not None
        # py-cord 2.8.1's decoder reads sink.client (members, DAVE session) but nothing sets it.
        self._sink.vc = self._vc
        with warnings.catch_warnings():  # said once, as a log line, in _join
            warnings.simplefilter("ignore", RuntimeWarning)
            self._vc.start_recording(self._sink)
        self._vc.play(self._source)

    async def _keep_joined(self) -> None:
        """Rejoin after a voice disconnect, with backoff; the local clock keeps running."""
        delay = 1.0
        while not self._closing:
            await self._sleep(1.0)
            if self._vc is not None and self._vc.is_connected():
                delay = 1.0
                continue
            log.warning("discord_voice_lost", retry_in_s=delay)
            await self._sleep(delay)
            try:
                with contextlib.suppress(Exception):
                    await self._vc.disconnect(force=True)
                self._vc = await self._channel.connect(
                    timeout=self.cfg.connect_timeout_seconds, reconnect=True)
                self._attach()
                self.rejoins += 1
                log.info("discord_rejoined", rejoins=self.rejoins)
            except Exception as exc:  # keep trying: a network outage is not a crash
                log.warning("discord_rejoin_failed", error=f"{type(exc).__name__}: {exc}")
                delay = min(delay * 2, self.cfg.reconnect_max_seconds)

    # ------------------------------------------------------------------ commands, events

    def _register(self) -> None:
        bot, guilds = self.bot, [self.cfg.guild_id] if self.cfg.guild_id else None
        handlers = {"remember-me": ("Let the companion remember your conversations",
                                    self._commands.remember_me),
                    "forget-me": ("Delete what the companion remembers about you",
                                  self._commands.forget_me),
                    "what-do-you-know": ("What does the companion remember about you?",
                                         self._commands.what_do_you_know)}
        for name, (description, handler) in handlers.items():
            bot.slash_command(name=name, description=description,
                              guild_ids=guilds)(_command(handler))

        @bot.event
        async def on_voice_state_update(member: Any, before: Any, after: Any) -> None:
            channel = self.cfg.channel_id
            if getattr(before.channel, "id", None) == channel and \
                    getattr(after.channel, "id", None) != channel:
                self._on_leave(member.id)

    def status(self) -> dict[str, Any]:
        ch = self._channel
        present = sorted(m.display_name for m in getattr(ch, "members", []) or []
                         if not m.bot) if ch is not None else []
        return {"channel": getattr(ch, "name", None),
                "connected": bool(self._vc is not None and self._vc.is_connected()),
                "present": present, "rejoins": self.rejoins}

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks[1:]:
            task.cancel()
        if self._vc is not None:
            with contextlib.suppress(Exception):
                self._vc.stop()
                await self._vc.disconnect()
        with contextlib.suppress(Exception):
            await self.bot.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _command(handler: Callable[[int, str], str]):
    async def run(ctx: discord.ApplicationContext) -> None:
        answer = await asyncio.to_thread(handler, ctx.author.id, ctx.author.display_name)
        await ctx.respond(answer, ephemeral=True)
    return run
