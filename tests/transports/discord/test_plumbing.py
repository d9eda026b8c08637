"""The Discord audio plumbing, driven as py-cord's threads drive it, on a simulated clock."""

from __future__ import annotations

import numpy as np

from entropi.conversation.transcript import WindowTranscript
from entropi.core.constants import FRAME_SECONDS, FRAME_SIZE
from entropi.transports.discord.mixer import PACKET_BYTES
from entropi.transports.discord.simulate import (
    SimMember,
    schedule_player,
    schedule_talk,
    to_packets,
)

ANN, BOB, DAVE = SimMember(11, "Ann"), SimMember(22, "Bob"), SimMember(33, "Dave")


def energy(x: np.ndarray) -> float:
    return float(np.sum(x.astype(np.float64) ** 2))


async def test_two_speakers_gaps_late_burst_and_a_leaver(sim, speech):
    clock, voice, t = sim
    await t.start()
    ann = speech["ann"] * 0.5
    bob = speech["bob"] * 0.5
    bob_at = 0.3 + ann.size / 24000 + 1.5  # a 1.5 s gap with no packets at all
    schedule_talk(clock, voice, t.sink, ANN, to_packets(ann), 0.3)
    # The network stalls 0.3 s in Bob's sentence; then everything held back arrives at once.
    schedule_talk(clock, voice, t.sink, BOB, to_packets(bob), bob_at, late=(20, 10, 0.1))
    dave_at = bob_at + bob.size / 24000 + 1.0
    schedule_talk(clock, voice, t.sink, DAVE, to_packets(ann), dave_at, stop_after=40)
    clock.at(dave_at + 0.8, lambda: t.left(DAVE.id))  # leaves mid-sentence
    end = dave_at + 2.5
    reads: list[int] = []
    schedule_player(clock, t.source, 0.0, end, reads)

    transcript = WindowTranscript()
    frames, names = [], []
    tone = (0.3 * np.sin(np.arange(FRAME_SIZE) * 2 * np.pi * 440 / 24000)).astype(np.float32)
    n = int(end / FRAME_SECONDS)
    for k in range(n):
        frame = await t.read_frame()
        # The local clock: frame k is handed over at exactly (k + 1) × 80 ms.
        assert abs(clock.now() - (k + 1) * FRAME_SECONDS) < 1e-9
        assert frame is not None and frame.shape == (FRAME_SIZE,) and frame.dtype == np.float32
        frames.append(frame)
        names.append(list(t.active_speakers()))
        transcript.add(None, user_pcm=frame, t=k * FRAME_SECONDS, threshold_dbfs=-40,
                       speakers=t.active_speakers())
        t.write_frame(tone)
    out = np.concatenate(frames)
    s = t.stats()
    assert s.frames_in == n and s.late_frames == 0 and s.dropped_in == 0
    # Silence filled where nobody sent anything (before Ann, the gap, after Dave left).
    gap = out[int((0.3 + ann.size / 24000 + 0.2) * 24000):int((bob_at - 0.1) * 24000)]
    assert gap.size > 20000 and np.abs(gap).max() < 1e-3
    # Levels: every sample of Ann and of Bob arrives (the burst too), none amplified.
    ann_out = out[:int((bob_at - 0.1) * 24000)]
    bob_out = out[int((bob_at - 0.1) * 24000):int((dave_at - 0.1) * 24000)]
    assert abs(10 * np.log10(energy(ann_out) / energy(ann))) < 0.5
    assert abs(10 * np.log10(energy(bob_out) / energy(bob))) < 0.5
    assert np.abs(out).max() <= 1.0
    # Dave's 0.8 s arrived, then he left: nothing of him after, and his stream is gone.
    dave_out = out[int((dave_at - 0.1) * 24000):]
    assert 0.5 < energy(dave_out) / energy(ann[:int(0.8 * 24000)]) < 1.2
    assert not any("Dave" in f for f in names[int((dave_at + 1.2) / FRAME_SECONDS):])
    assert t.mixer.present() == 0
    # Who spoke reaches the window transcript.
    users = [u for u in transcript.utterances() if u.speaker == "user"]
    assert [u.name for u in users] == ["Ann", "Bob", "Dave"]
    assert "[user (Ann) spoke" in users[0].render()
    # Output: every 20 ms read is 3840 B, the agent's 80 ms frames all played.
    assert reads and set(reads) == {PACKET_BYTES}
    assert s.underruns == 0 and s.frames_out == n


async def test_overlap_never_clips_and_a_flood_is_bounded(sim, speech):
    clock, voice, t = sim
    await t.start()
    loud = speech["ann"] / np.abs(speech["ann"]).max() * 0.95
    schedule_talk(clock, voice, t.sink, ANN, to_packets(loud), 0.1)
    schedule_talk(clock, voice, t.sink, BOB, to_packets(loud), 0.1)  # same words, same time
    # Dave's client dumps 3 s of audio at once: the buffer stays bounded, the rest is counted.
    flood = to_packets(speech["bob"][:72000] * 0.1)
    for i, pcm in enumerate(flood):
        from discord.voice.packets import FakePacket, VoiceData
        d = VoiceData(FakePacket(33, i, 0), DAVE, pcm=pcm)
        clock.at(0.5, lambda d=d: voice.call(lambda: t.sink.write(d, d.source)))
    frames = [await t.read_frame() for _ in range(int(loud.size / FRAME_SIZE) + 6)]
    out = np.concatenate(frames)
    assert np.abs(out).max() <= 1.0 + 1e-6
    # Both at full level summed would reach 1.9: the frame was scaled, not clipped.
    assert np.abs(out).max() > 0.9
    assert t.mixer.dropped_packets >= len(flood) - 8 * 4 - 1
    assert t.stats().dropped_in > 0


async def test_listen_list_ignores_everyone_else(tmp_path, speech):
    from entropi.config import DiscordSection
    from entropi.memory.consent import ConsentStore
    from entropi.transports.discord.consent import ConsentGate
    from entropi.transports.discord.simulate import SimClock, VoiceThread
    from entropi.transports.discord.transport import DiscordTransport
    from tests.transports.discord.conftest import NoNetwork

    clock, voice = SimClock(), VoiceThread()
    t = DiscordTransport(DiscordSection(guild_id=1, channel_id=2, listen=[ANN.id]), NoNetwork(),
                         ConsentGate(ConsentStore(tmp_path / "c.json", False)), clock=clock)
    await t.start()
    schedule_talk(clock, voice, t.sink, BOB, to_packets(speech["bob"]), 0.1)
    frames = [await t.read_frame() for _ in range(30)]
    voice.close()
    assert np.abs(np.concatenate(frames)).max() == 0.0 and t.mixer.packets == 0
