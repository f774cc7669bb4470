"""Services of the fault tests' own, which they may stop and start at will: a PostgreSQL
cluster made with `initdb` in a temporary folder and a `redis-server`, each on a free port of
127.0.0.1. The machine's shared PostgreSQL (5432) and Redis (6379) are never touched.

PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user
(`runuser`), in a folder that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from test_production import free_port


def answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    path = Path(found[-1]).parent if found else None
    if path is None and shutil.which("initdb"):
        path = Path(shutil.which("initdb")).parent
    if path is None:
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    return path


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free port; `database()` makes one to use."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="crmforge-faults-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.made = 0
        self.start()

    def database(self) -> str:
        """The URL of a new, empty database of this cluster."""
        self.made += 1
        name = f"t{self.made}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                cwd=self.folder, check=False)
        assert result.returncode == 0, f"{tool} failed: {result.stdout}{result.stderr}"

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
                   "-c fsync=off -c max_connections=50")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every session (as a restart does), `immediate` is a
        crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A `redis-server` keeping nothing on disk, on a free port; `stop()` and `start()` again
    on the same port."""

    def __init__(self) -> None:
        if not shutil.which("redis-server"):
            pytest.skip("no redis-server on this machine")
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not answers(self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    close = stop
