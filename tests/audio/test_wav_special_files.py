"""A FIFO, socket or device where a WAV should be is refused at once, never opened in a way
that blocks: the audit's output FIFO hung the event loop and ignored SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from entropi.audio.wav import WavWriter, open_wav_source, read_wav
from entropi.core.errors import InputError


@pytest.mark.parametrize("where", ["output", "input"])
def test_a_fifo_is_refused_without_blocking_in_a_real_process(tmp_path, where):
    """In a subprocess with a timeout: a blocking open would hang the test, not pass it."""
    fifo = tmp_path / "x.wav"
    os.mkfifo(fifo)
    call = (f"WavWriter({str(fifo)!r})" if where == "output" else
            f"open_wav_source({str(fifo)!r})")
    code = textwrap.dedent(f"""
        from entropi.audio.wav import WavWriter, open_wav_source
        from entropi.core.errors import InputError
        try:
            {call}
        except InputError as exc:
            print(exc.message)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert str(fifo) in proc.stdout and ("FIFO" in proc.stdout or "No such device" in
                                         proc.stdout), proc.stdout


def test_devices_are_refused_and_a_real_file_still_works(tmp_path):
    with pytest.raises(InputError, match="/dev/null: cannot write WAV"):
        WavWriter("/dev/null")
    with pytest.raises(InputError, match="/dev/zero: is a character device"):
        read_wav("/dev/zero")
    with pytest.raises(InputError, match="is a character device"):
        open_wav_source("/dev/zero")
    writer = WavWriter(tmp_path / "ok.wav")
    writer.write(np.full(2400, 0.25, np.float32))
    writer.close()
    assert read_wav(tmp_path / "ok.wav").size == 2400
