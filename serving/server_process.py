"""Run the local server as a child process (tests, the load benchmark, demos) and push models to it.

`push_version` is the atomic push TF Serving expects: copy into a hidden temp directory beside the
target, then rename, so a poller never sees a half-written version.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import List, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push_version(saved_model_dir: str, base: str, model: str, version: int) -> str:
    """Copy a SavedModel to <base>/<model>/<version> atomically (temp dir + rename)."""
    os.makedirs(os.path.join(base, model), exist_ok=True)
    dst = os.path.join(base, model, str(int(version)))
    if os.path.exists(dst):
        raise FileExistsError(f"{dst} exists: versions are immutable, push a new number")
    tmp = os.path.join(base, model, f".tmp-{int(version)}-{os.getpid()}")
    shutil.copytree(saved_model_dir, tmp)
    os.rename(tmp, dst)
    return dst


class ServerProcess:
    """`gan-restore serve` on free loopback ports, logging to `log_path`; stop() sends SIGTERM."""

    def __init__(self, model_base: str, log_path: str, extra_args: Sequence[str] = (), poll_seconds: float = 0.5):
        self.grpc_port, self.rest_port = free_loopback_port(), free_loopback_port()
        self.model_base, self.log_path = model_base, log_path
        cmd: List[str] = [sys.executable, "-m", "pipeline.cli", "serve", "--model_base", model_base,
                          "--host", "127.0.0.1", "--port", str(self.grpc_port),
                          "--rest_api_port", str(self.rest_port),
                          "--file_system_poll_wait_seconds", str(poll_seconds), *extra_args]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def log_text(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def version_state(self, model: str, version: int) -> str:
        try:
            with urllib.request.urlopen(f"{self.rest_url}/v1/models/{model}/versions/{version}", timeout=5) as r:
                return json.loads(r.read())["model_version_status"][0]["state"]
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return "UNKNOWN"

    def wait_available(self, model: str, version: int, timeout: float = 180.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            if self.version_state(model, version) == "AVAILABLE":
                return
            time.sleep(0.3)
        raise TimeoutError(f"{model} v{version} not AVAILABLE after {timeout} s:\n{self.log_text()[-3000:]}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful), SIGKILL only if it does not exit within `timeout`; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
