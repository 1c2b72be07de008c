"""`gan-restore serve` as a child process (tests, the load benchmark), watched through its log.

The server binds free ports chosen by the operating system (`--any_free_ports`) and says which in its
log; every wait here is on a line the server writes (its ports, a model version becoming AVAILABLE, a
request starting with `--log_request_starts`), read as it arrives, never on a timer. Models reach it
the way the Pusher publishes them: `contracts.serving_layout.publish`.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from typing import List, Sequence

from contracts import serving_layout

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTENING = re.compile(r"gRPC on (?P<host>[\d.]+):(?P<grpc>\d+), REST on (?:[\d.]+:(?P<rest>\d+)|off)")


def push_version(saved_model_dir: str, base: str, model: str, version: int) -> str:
    """Publish a SavedModel as <base>/<model>/<version> (the Pusher's atomic publish, fixed version)."""
    return serving_layout.publish(saved_model_dir, os.path.join(base, model), version=version)


class LogWatcher:
    """Collects a child's output lines (in a thread) and lets callers block until a line appears."""

    def __init__(self, stream, copy_to: str):
        self.lines: List[str] = []
        self._cond = threading.Condition()
        self._closed = False
        self._copy = open(copy_to, "w")
        self._thread = threading.Thread(target=self._read, args=(stream,), name="log-watcher", daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self._copy.write(line)
            self._copy.flush()
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._copy.close()

    def mark(self) -> int:
        """The number of lines so far: `wait_for(..., after=mark)` then only sees newer lines."""
        with self._cond:
            return len(self.lines)

    def wait_for(self, pattern: str, after: int = 0, timeout: float = 300.0, count: int = 1) -> re.Match:
        """The `count`-th line at index >= `after` matching `pattern` (a regex), waiting for it to be
        written. The timeout only bounds a failure; a closed stream (the process died) fails at once."""
        rx = re.compile(pattern)
        with self._cond:
            seen, found = after, 0
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    found += bool(m)
                    if m and found == count:
                        return m
                seen = len(self.lines)
                if self._closed:
                    raise RuntimeError(f"the process ended before logging {pattern!r}:\n" + "\n".join(self.lines[-40:]))
                if not self._cond.wait(timeout):
                    raise TimeoutError(f"no log line {pattern!r} within {timeout} s:\n" + "\n".join(self.lines[-40:]))

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines) + "\n"


class ServerProcess:
    """`gan-restore serve` on free loopback ports, its log copied to `log_path`; stop() sends SIGTERM."""

    def __init__(self, model_base: str, log_path: str, extra_args: Sequence[str] = (), poll_seconds: float = 0.5):
        self.model_base, self.log_path = model_base, log_path
        cmd: List[str] = [sys.executable, "-m", "cli.main", "serve", "--model_base", model_base,
                          "--host", "127.0.0.1", "--any_free_ports", "--log_request_starts",
                          "--file_system_poll_wait_seconds", str(poll_seconds), *extra_args]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        self.log = LogWatcher(self.proc.stdout, log_path)
        m = self.log.wait_for(LISTENING.pattern)
        self.grpc_port = int(m["grpc"])
        self.rest_port = int(m["rest"]) if m["rest"] else 0

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def log_text(self) -> str:
        return self.log.text()

    def wait_available(self, model: str, version: int, after: int = 0, timeout: float = 300.0) -> None:
        """Until the server logs that `model` `version` is AVAILABLE (its model store's line)."""
        self.log.wait_for(rf"model {re.escape(model)} version {int(version)} AVAILABLE", after, timeout)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful), SIGKILL only if it does not exit within `timeout`; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
