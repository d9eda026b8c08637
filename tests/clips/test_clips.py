"""Thinking clips: loading (resample, loudness, length, fades) and the rotating player."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from entropi.audio.levels import active_dbfs, rms_dbfs
from entropi.audio.wav import write_wav
from entropi.clips.player import ClipPlayer, ThinkingClips
from entropi.config import VoiceSection
from entropi.core.constants import FRAME_SIZE
from entropi.core.errors import InputError

CLICK_STEP = 0.01  # no sample-to-sample jump this large anywhere in the synthetic stream


def _voice(folder: Path, **kw: object) -> VoiceSection:
    return VoiceSection(thinking_clips=folder, **kw)


def _abrupt_clips(folder: Path) -> Path:
    """Loud low tones that start and stop at their peak: clicks unless faded on load."""
    folder.mkdir(exist_ok=True)
    for i, (hz, seconds, rate) in enumerate([(100, 0.5, 24_000), (150, 0.7, 48_000),
                                             (120, 0.3, 16_000)]):
        t = np.arange(round(rate * seconds)) / rate
        write_wav(folder / f"c{i}.wav", (0.5 * np.cos(2 * np.pi * hz * t)).astype(np.float32),
                  sample_rate=rate)
    return folder


def test_default_clips_load_short_faded_and_loudness_matched(project_root: Path) -> None:
    folder = project_root / "voices" / "thinking"
    for target in (-23.0, -30.0):
        clips = ThinkingClips.load(_voice(folder), target_dbfs=target)
        assert len(clips) >= 3
        for pcm in clips.clips:
            assert pcm.dtype == np.float32 and pcm.size <= 3 * 24_000
            assert abs(active_dbfs(pcm) - target) < 1.0
            assert abs(pcm[0]) < 1e-3 and abs(pcm[-1]) < 1e-3


def test_resampled_on_load_and_length_limit_enforced(tmp_path: Path) -> None:
    folder = _abrupt_clips(tmp_path / "clips")
    clips = ThinkingClips.load(_voice(folder))
    # 0.7 s at 48 kHz and 0.3 s at 16 kHz become 24 kHz clips of the same duration.
    assert [c.size for c in clips.clips] == [12_000, 16_800, 7_200]
    with pytest.raises(InputError, match=r"c1\.wav.*0\.70 s.*max_clip_seconds"):
        ThinkingClips.load(_voice(folder, max_clip_seconds=0.6))


def test_missing_empty_or_silent_clip_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"voice\.thinking_clips: .* is not a folder"):
        ThinkingClips.load(_voice(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"holds no \.wav clips"):
        ThinkingClips.load(_voice(tmp_path / "empty"))
    (tmp_path / "silent").mkdir()
    write_wav(tmp_path / "silent" / "s.wav", np.zeros(2400, np.float32))
    with pytest.raises(InputError, match=r"s\.wav: thinking clip is silent"):
        ThinkingClips.load(_voice(tmp_path / "silent"))


def _play(player: ClipPlayer, frames: int) -> tuple[np.ndarray, list[str]]:
    """Run the player; return the samples and the clips in the order they started."""
    out, started, seen = [], [], 0
    for _ in range(frames):
        frame = player.next_frame()
        assert frame.shape == (FRAME_SIZE,) and frame.dtype == np.float32
        out.append(frame)
        if player.clips_played != seen:
            seen = player.clips_played
            started.append(player.last_clip)
    return np.concatenate(out), started


def test_rotation_never_repeats_and_never_clicks(tmp_path: Path) -> None:
    clips = ThinkingClips.load(_voice(_abrupt_clips(tmp_path / "clips")))
    player = ClipPlayer(clips, gap_fill="clip", noise_dbfs=-60.0, seed=7)
    player.start()
    stream, started = _play(player, 250)  # 20 s: many clips and gaps
    assert len(started) >= 10
    assert all(a != b for a, b in itertools.pairwise(started))
    assert set(started) == set(clips.names)
    assert np.max(np.abs(np.diff(stream))) < CLICK_STEP
    # A restart (next thinking phase) does not repeat the clip that played last either.
    last = player.last_clip
    player.start()
    assert player.last_clip != last and player.clips_played == 1


def test_unfaded_clips_would_click(tmp_path: Path) -> None:
    """The click check above is meaningful: the raw clips jump far more than the threshold."""
    raw = ThinkingClips.load(_voice(_abrupt_clips(tmp_path / "clips")))
    unfaded = np.concatenate([np.zeros(10), raw.clips[0] / _fade_free_ratio(raw.clips[0])])
    assert np.max(np.abs(np.diff(unfaded))) > CLICK_STEP


def _fade_free_ratio(pcm: np.ndarray) -> np.ndarray:
    """Undo the 10 ms raised-cosine fades (except their zero end points)."""
    n = 240
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
    ratio = np.ones(pcm.size)
    ratio[:n], ratio[-n:] = ramp, ramp[::-1]
    ratio[ratio < 0.05] = 1.0
    return ratio


def test_comfort_noise_fills_after_the_clip(tmp_path: Path) -> None:
    clips = ThinkingClips.load(_voice(_abrupt_clips(tmp_path / "clips")))
    player = ClipPlayer(clips, gap_fill="comfort_noise", noise_dbfs=-50.0, seed=1)
    assert player.clip_frames_remaining == 0
    player.start()
    remaining = [player.clip_frames_remaining]
    frames = []
    for _ in range(40):
        frames.append(player.next_frame())
        remaining.append(player.clip_frames_remaining)
    assert remaining[0] >= 4 and remaining == sorted(remaining, reverse=True)
    assert remaining[-1] == 0 and player.clips_played == 1
    tail = np.concatenate(frames[-20:])  # well after the clip: noise only
    assert abs(rms_dbfs(tail) - -50.0) < 1.0
    assert np.max(np.abs(np.diff(np.concatenate(frames)))) < CLICK_STEP * 2
