"""A JACK server on the dummy backend: a real duplex device on machines without sound cards.

Used by the audio tests and ``entropi bench audio``. Only a server this object started is
stopped by it; a running one (any settings) is reused as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from entropi.core.errors import DeviceError

# libjack would otherwise spawn its own jackd (from ~/.jackdrc) when a client connects.
os.environ.setdefault("JACK_NO_START_SERVER", "1")


def jack_running() -> bool:
    if shutil.which("jack_wait") is None:
        return False
    out = subprocess.run(["jack_wait", "-c"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip() == "running"  # jack_wait -c exits 0 either way


def jack_ports(direction: str | None = None) -> list[str]:
    """Port names; ``direction`` "input" or "output" keeps only those (from ``jack_lsp -p``)."""
    out = subprocess.run(["jack_lsp", "-p"], capture_output=True, text=True, timeout=10)
    ports: list[str] = []
    for line in out.stdout.splitlines():
        if not line.startswith(("\t", " ")):
            ports.append(line.strip())
        elif direction is not None and ports and direction not in line.split(":", 1)[-1]:
            ports.pop()  # the properties line of the port just listed: wrong direction
    return ports


def jack_connect(source: str, destination: str) -> None:
    subprocess.run(["jack_connect", source, destination], check=True, capture_output=True,
                   timeout=10)


class JackDummy:
    """``jackd --no-realtime -d dummy -r RATE -p PERIOD --capture 1 --playback 1``."""

    def __init__(self, rate: int = 24_000, period: int = 1_920) -> None:
        self.command = ["jackd", "--no-realtime", "-d", "dummy", "-r", str(rate),
                        "-p", str(period), "--capture", "1", "--playback", "1"]
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None  # jackd's output goes to a file: an unread pipe could block it

    @staticmethod
    def installed() -> bool:
        return all(shutil.which(tool) for tool in ("jackd", "jack_wait", "jack_lsp"))

    def start(self, timeout: float = 15.0) -> bool:
        """Make sure a server runs; True if this call started it."""
        if not self.installed():
            raise DeviceError("jackd is not installed; apt-get install jackd2")
        if jack_running():
            return False
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.seek(0)
                err = self._log.read().decode(errors="replace")
                self.stop()
                raise DeviceError(f"jackd exited at start: {err.strip()[-300:]}")
            # Ready = the server answers and its dummy ports exist (clients can connect).
            if jack_running() and "system:playback_1" in jack_ports():
                from entropi.transports.devices import rescan

                rescan()  # PortAudio lists JACK devices only if JACK ran at initialisation
                return True
            time.sleep(0.1)
        self.stop()
        raise DeviceError(f"jackd did not become ready within {timeout:g} s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            from entropi.transports.devices import release_portaudio

            release_portaudio()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> JackDummy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
