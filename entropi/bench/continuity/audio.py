"""``bench continuity --audio``: the script's user lines spoken, heard and kept by the daemon.

The user lines are rendered with espeak-ng into one WAV (each followed by a short pause; each
window's agent turn is silence as long as its words take to say) and played through the real
daemon path (``entropi run`` in-process: WAV input at simulated real time, VAD, ASR,
handovers, compaction, ledger). Everything is counted on the daemon's *own* windows, read
back from its transcript file: what each window heard and the prompt it made.

The script's words are aligned with what the recogniser wrote (both through Whisper's English
normaliser), so no figure depends on a script's phrasing:

- ``wer``: word error rate of all heard user text against all spoken user text (jiwer);
- ``words_lost``: jiwer's deletions, spoken words no recognised word stands for (lost in a
  handover, in a turn that reached no window, or dropped by the recogniser);
  ``speech_heard_pct``: the other spoken words' share (heard, right or wrong);
- a planted item is said by the line holding most of its words, in the daemon window where
  that line's words landed; it is *heard* (``items_heard``) when all its words came out of
  the recogniser for that line; a word counts as said when the same up to spelling
  (similarity ≥ 0.9: "coeliac"/"celiac", "shakshuka"/"shaka shuka"), never a different word
  ("cello"/"channel", "Tomasz"/"Thomas", "Marek"/"Mark"); ``fact_recall_pct_k`` counts all
  planted items, ``heard_recall_pct_10/20`` only the heard ones (what the pipeline could keep);
- ``ledger_junk_pct``: ledger items at the end that hold no planted item's words.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAUSE_S = 0.8  # after each user line
SAME_SPELLING = 0.9  # difflib ratio at which two words are one word spelt differently
AGENT_WPS = 2.5  # the agent's turn: silence as long as its words take to say
MIN_AGENT_S = 2.0
LEAD_S, TAIL_S = 0.5, 8.0


@dataclass
class Spoken:
    window: int  # script window
    text: str
    plants: list[tuple[str, list[str]]] = field(default_factory=list)


def normaliser() -> Any:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def assign_plants(windows: list[Any], norm: Any) -> list[Spoken]:
    """The user lines to play, each with the planted items it says (the line holding most
    of the item's words; an item no user line says, the agent's promise, is not played)."""
    spoken: list[Spoken] = []
    for w, win in enumerate(windows):
        lines = [Spoken(w, text) for speaker, _, text in win.lines if speaker == "user"]
        for kind, words in win.plants:
            want = [norm(x) for x in words]
            best = max(lines, default=None,
                       key=lambda s: sum(x in norm(s.text).split() for x in want))
            if best is not None and any(x in norm(best.text).split() for x in want):
                best.plants.append((kind, words))
        spoken += lines
    return spoken


def render_wav(windows: list[Any], path: Path) -> None:
    import numpy as np

    from entropi.audio.signals import espeak
    from entropi.audio.wav import write_wav
    from entropi.core.constants import SAMPLE_RATE

    def silence(s: float) -> Any:
        return np.zeros(round(s * SAMPLE_RATE), np.float32)

    parts = [silence(LEAD_S)]
    for win in windows:
        agent_words = 0
        for speaker, _, text in win.lines:
            if speaker == "user":
                parts += [espeak(text), silence(PAUSE_S)]
            else:
                agent_words += len(text.split())
        parts.append(silence(max(MIN_AGENT_S, agent_words / AGENT_WPS)))
    parts.append(silence(TAIL_S))
    write_wav(path, np.concatenate(parts))


def vocabulary(words: list[str]) -> set[str]:
    """The words and each adjacent pair run together (a recogniser splits rare words)."""
    return {*words, *(a + b for a, b in itertools.pairwise(words))}


def has(word: str, vocab: set[str]) -> bool:
    return word in vocab or any(
        abs(len(v) - len(word)) <= 2
        and difflib.SequenceMatcher(None, word, v).ratio() >= SAME_SPELLING for v in vocab)


_USER = re.compile(r"^user(?: \([^)]*\))?: (.*)$")


def daemon_windows(blocks: list[str]) -> list[tuple[list[str], str]]:
    """(user texts, next prompt) per window of the daemon's transcript file."""
    out = []
    for block in blocks:
        users, prompt = [], ""
        for line in block.splitlines():
            if m := _USER.match(line):
                users.append(m.group(1))
            elif line.startswith("next prompt: "):
                prompt = line[len("next prompt: "):]
        out.append((users, prompt))
    return out


def _similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def align(ref: list[str], hyp: list[str]) -> list[list[int]]:
    """For each spoken word, the recognised words that stand for it (none: never heard).
    Matching runs first; inside a differing stretch of equal length word for word, else each
    recognised word goes to the nearest similar spoken word at or after the previous one
    ("shaka", "shuka" → "shakshuka"), the next one when nothing is similar."""
    got: list[list[int]] = [[] for _ in ref]
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ref, hyp,
                                                      autojunk=False).get_opcodes():
        if op == "equal" or (op == "replace" and i2 - i1 == j2 - j1):
            for k in range(i2 - i1):
                got[i1 + k].append(j1 + k)
        elif op == "replace":
            at = i1
            for j in range(j1, j2):
                near = next((i for i in range(at, i2) if _similar(ref[i], hyp[j]) >= 0.5), None)
                if near is not None:
                    at = near
                elif j > j1:
                    at = min(at + 1, i2 - 1)
                got[at].append(j)
    return got


def score_audio(spoken: list[Spoken], heard: list[tuple[list[str], str]], norm: Any
                ) -> dict[str, Any]:
    import jiwer

    ref = [(i, w) for i, s in enumerate(spoken) for w in norm(s.text).split()]
    hyp = [(j, w) for j, (users, _) in enumerate(heard) for u in users for w in norm(u).split()]
    matched = align([w for _, w in ref], [w for _, w in hyp])
    got: dict[int, list[tuple[int, str]]] = {i: [] for i in range(len(spoken))}  # line → hyp
    for (line, _), js in zip(ref, matched, strict=True):
        got[line] += [hyp[j] for j in js]
    prompts = [vocabulary(norm(p).split()) for _, p in heard]
    n = len(prompts)
    items, window = [], 0
    for i, s in enumerate(spoken):
        if got[i]:
            window = Counter(j for j, _ in got[i]).most_common(1)[0][0]
        words_heard = vocabulary([w for _, w in got[i]])
        for kind, words in s.plants:
            want = [norm(x) for x in words]
            items.append((kind, window, want, all(has(x, words_heard) for x in want)))

    def pct(hits: list[bool]) -> float | None:
        return round(100 * sum(hits) / len(hits), 1) if hits else None

    def recalled(w: int, want: list[str]) -> bool:
        return all(has(x, prompts[w]) for x in want)

    out: dict[str, Any] = {"windows": n}
    for k in (5, 10, 20):
        out[f"fact_recall_pct_{k}"] = pct([recalled(w + k, x) for kind, w, x, _ in items
                                           if kind == "fact" and w + k < n])
    out["commitment_recall_pct"] = pct([recalled(min(w + 20, n - 1), x)
                                        for kind, w, x, _ in items if kind == "commitment"])
    ref_text = " ".join(w for _, w in ref)
    hyp_text = " ".join(w for _, w in hyp)
    if ref_text and hyp_text:  # jiwer's minimum-edit alignment: the standard WER
        m = jiwer.process_words(ref_text, hyp_text)
        lost, wer = m.deletions, round(100 * m.wer, 1)
    else:
        lost, wer = len(ref), None
    out |= {
        "speech_heard_pct": round(100 * (len(ref) - lost) / max(1, len(ref)), 1),
        "words_lost": lost,
        "wer": wer,
        "items_planted": len(items),
        "items_heard": sum(h for *_, h in items),
    }
    for k in (10, 20):
        out[f"heard_recall_pct_{k}"] = pct([recalled(w + k, x) for _, w, x, h in items
                                            if h and w + k < n])
    return out


def daemon_config(cfg: Any, tmp: Path, wav: Path, asr_model: str | None) -> Any:
    """The config as given, its files moved into ``tmp``, the WAV as input, fast."""
    def up(section: Any, **kw: Any) -> Any:
        return section.model_copy(update=kw)

    asr = cfg.asr if asr_model is None else up(cfg.asr, backend="faster-whisper",
                                                model=asr_model)
    return cfg.model_copy(update={
        "audio": up(cfg.audio, input="wav", input_wav=wav, output="wav",
                    output_wav=tmp / "out.wav", fast=True),
        "conversation": up(cfg.conversation, transcript_file=tmp / "transcript.txt"),
        "memory": up(cfg.memory, enabled=True, journal_dir=tmp / "journal",
                     profile_path=tmp / "profile.json", encryption_key_env=None),
        "service": up(cfg.service, status_file=tmp / "status.json"),
        "asr": asr})


def play_audio(cfg: Any, windows: list[Any], tmp: Path, asr_model: str | None
               ) -> dict[str, Any]:
    """Render, run the daemon on it, score its windows (blocking; minutes on a CPU)."""
    from entropi.bench.continuity import junk_pct
    from entropi.memory.ledger import LedgerStore, ledger_path
    from entropi.memory.transcript_file import TranscriptFile
    from entropi.service.daemon import RunOptions, run_daemon

    tmp.mkdir(parents=True, exist_ok=True)
    wav = tmp / "user.wav"
    render_wav(windows, wav)
    run_cfg = daemon_config(cfg, tmp, wav, asr_model)
    code = run_daemon(run_cfg, RunOptions(summary_json=tmp / "summary.json"))
    norm = normaliser()
    heard = daemon_windows(TranscriptFile(run_cfg.conversation.transcript_file).blocks())
    out = score_audio(assign_plants(windows, norm), heard, norm)
    ledger = LedgerStore(ledger_path(run_cfg.memory.profile_path)).load()
    out["ledger_junk_pct"] = junk_pct(
        [i.text for i in ledger.items], windows,
        lambda words, text: all(has(norm(w), vocabulary(norm(text).split())) for w in words))
    out["daemon_exit"] = code
    return out
