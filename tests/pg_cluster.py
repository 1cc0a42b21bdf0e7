"""A throwaway PostgreSQL cluster for tests/test_data.py and bench/data.py.

``initdb`` in a fresh temporary directory, ``pg_ctl`` serving it on a free loopback port (and a
private socket directory), trust authentication, no fsync: a database to read from, made in a
second or two, removed at the end. Debian's ``postgresql`` package puts the binaries in
/usr/lib/postgresql/VERSION/bin, off the PATH; .ci/run installs it. ``initdb`` refuses to run as
root: as root the cluster runs as the ``postgres`` user the package creates (``runuser``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

#: A free port can be taken between probing it and the server's bind: try a few.
START_ATTEMPTS = 3
#: The superuser the tests connect as (trust authentication: any password is accepted).
USER = "staging"


def binaries() -> Path | None:
    """The directory of initdb and pg_ctl: on the PATH, else Debian's newest version."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3].split(".")[0])
    )
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ClusterError(RuntimeError):
    """initdb or pg_ctl failed; the message holds what they and the server log said."""


class Cluster:
    """``Cluster.start()`` → a running cluster; ``url(database)``; ``stop()`` removes it all."""

    def __init__(self, bin_dir: Path, root: Path, port: int, run_as: str | None) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = port
        self.run_as = run_as

    @classmethod
    def start(cls, bin_dir: Path) -> Cluster:
        run_as = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="staging-pg-"))
        if run_as is not None:
            import pwd

            account = pwd.getpwnam(run_as)
            os.chown(root, account.pw_uid, account.pw_gid)
        cluster = cls(bin_dir, root, 0, run_as)
        try:
            cluster._run(
                "initdb", "-D", str(cluster.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"
            )
            for attempt in range(START_ATTEMPTS):
                cluster.port = _free_port()
                try:
                    cluster._pg_ctl_start()
                    break
                except ClusterError:
                    if attempt == START_ATTEMPTS - 1:
                        raise
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / tool), *args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        try:
            return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120, cwd=self.root)
        except subprocess.CalledProcessError as exc:
            log = self.root / "server.log"
            said = exc.stdout + exc.stderr + (log.read_text(errors="replace") if log.exists() else "")
            raise ClusterError(f"{tool} failed ({exc.returncode}):\n{said}") from None

    def _pg_ctl_start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
        )

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql+psycopg://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(self.data))
            except ClusterError:
                pass  # already gone: the directory goes all the same
        shutil.rmtree(self.root, ignore_errors=True)
