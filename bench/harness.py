"""What every scenario of the benchmark uses: servers in their own processes, wrk, the host's config, the database.

Nothing here measures by itself; ``run.py`` puts the pieces together and prints the table.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from smsconnector.testing.database import Database

HERE = Path(__file__).parent
PYTHON = sys.executable
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"
ADMIN_TOKEN = "bench-admin-token"
OPENMARKET = {"account_id": "000-000-000-00000", "password": "bench-mt-password", "inbound_username": "openmarket",
              "inbound_password": "bench-inbound-password"}
PUBLIC_URL = "https://sms.bench.example"


# -- processes ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server in its own process, so the load generator and the measured process never share a core's GIL."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    port: int = field(default_factory=free_port)
    health: str = "/healthz"
    #: serves ``GET /bench/statements`` (``host_app.py``)
    counts_sql: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Server:
        env = {**os.environ, **self.env}
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self.process = subprocess.Popen(argv, env=env, cwd=self.cwd, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{argv} exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + self.health, timeout=1).status_code < 500:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"{argv} did not become healthy")

    def statements(self) -> dict[str, int]:
        """The SQL statements (by first word) and commits the host has run so far."""
        return dict(httpx.get(self.url + "/bench/statements", timeout=10).json()) if self.counts_sql else {}

    def rss_kib(self) -> tuple[int, int]:
        """(current RSS, peak RSS) of the server process, in KiB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status)[1]), int(re.search(r"VmHWM:\s+(\d+)", status)[1])  # type: ignore[index]

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        stop(self.process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(Exception):
        process.stderr.close()  # type: ignore[union-attr]


@dataclass
class Worker:
    """``smsconnector worker`` in its own process, beside a host whose configuration says ``[worker] in_server =
    false``: the web process answers, this one routes and sends."""

    config: Path
    cwd: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def statements(self) -> dict[str, int]:
        return {}  # it serves no HTTP to ask

    def __enter__(self) -> Worker:
        env = {**os.environ, "SMSCONNECTOR_CONFIG": str(self.config)}
        self.process = subprocess.Popen([PYTHON, "-m", "smsconnector.cli", "worker"], env=env, cwd=self.cwd,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stderr = self.process.stderr
        assert stderr is not None
        said, deadline = b"", time.monotonic() + 30
        while b"smsconnector worker:" not in said:  # it says so once it is working
            ready, _, _ = select.select([stderr], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(stderr.fileno(), 4096) if ready else b""
            if not chunk:
                self.process.kill()
                raise RuntimeError(f"the worker did not start: {said.decode()[-2000:]}")
            said += chunk
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        stop(self.process)


#: where ``profiled`` writes py-spy's raw samples (``run.py --profile DIR``); None: no profiling
PROFILE_DIR: Path | None = None


def _process_ticks(pid: int) -> tuple[int, int]:
    """The user and the system CPU clock ticks the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    return sum(_process_ticks(pid)) / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int, int]:
    """All cores' busy, idle and stolen clock ticks so far (``/proc/stat``; time waiting for I/O counts as idle;
    stolen: time a virtual machine's cores were ready to run but the hypervisor ran something else)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return user + nice + system + irq + softirq, idle + iowait, steal


@dataclass
class CpuSplit:
    """Where the machine's CPU went while a block ran, each in shares of one core: the measured process (and
    how much of it the kernel's), the processes the block ran and waited for (wrk), everything else, idle, and
    what the hypervisor took from this virtual machine (stolen: its other guests' work, on the same cores)."""

    name: str = "host"
    seconds: float = 0.0
    process: float = 0.0
    system: float = 0.0
    children: float = 0.0
    machine: float = 0.0
    idle: float = 0.0
    stolen: float = 0.0

    def __str__(self) -> str:
        others = max(0.0, self.machine - self.process - self.children)
        return (f"{self.name} {self.process:.0%} ({self.system:.0%} in the kernel), wrk {self.children:.0%}, "
                f"the rest of the machine {others:.0%}, idle {self.idle:.0%}, stolen by the hypervisor "
                f"{self.stolen:.0%}")

    def per(self, count: int) -> str:
        """The measured process's CPU for each of ``count`` requests, e.g. '213 us'."""
        return f"{self.process * self.seconds / count * 1e6:,.0f} us" if count else ""


@contextlib.contextmanager
def cpu_split(pid: int, name: str = "host") -> Iterator[CpuSplit]:
    """Measure where the CPU goes while the block runs (filled in when it ends). A server's CPU per request
    moves from run to run on this kind of machine; this says whether the server itself, the load generator or
    something else on the machine took it."""

    def children() -> float:
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        return used.ru_utime + used.ru_stime

    split, tick = CpuSplit(name), os.sysconf("SC_CLK_TCK")
    (user, system), waited, (busy, idle, stolen), wall = (_process_ticks(pid), children(), _machine_ticks(),
                                                          time.monotonic())
    try:
        yield split
    finally:
        (user_now, system_now), (busy_now, idle_now, stolen_now) = _process_ticks(pid), _machine_ticks()
        split.seconds = seconds = time.monotonic() - wall
        split.process = (user_now - user + system_now - system) / tick / seconds
        split.system = (system_now - system) / tick / seconds
        split.children = (children() - waited) / seconds
        split.machine, split.idle = (busy_now - busy) / tick / seconds, (idle_now - idle) / tick / seconds
        split.stolen = (stolen_now - stolen) / tick / seconds


@dataclass
class Busy:
    """What a server did while a block ran (filled in when the block ends): its share of one core, and for
    the host the SQL statements and commits it ran."""

    share: float = 0.0
    sql: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"host CPU {self.share:.0%}"

    def per(self, count: int, what: str = "message") -> str:
        """Statements and commits per ``what``, e.g. '9.0 SQL (5.0 SELECT), 1.00 commits per message'."""
        if not count or not self.sql:
            return ""
        statements = sum(v for k, v in self.sql.items() if k != "COMMIT")
        selects = self.sql.get("SELECT", 0)
        return (f"{statements / count:.1f} SQL ({selects / count:.1f} SELECT), "
                f"{self.sql.get('COMMIT', 0) / count:.2f} commits per {what}")


@contextlib.contextmanager
def watched(server: Server | Worker, name: str) -> Iterator[Busy]:
    """Measure the server's CPU share (and SQL) while the block runs; with ``PROFILE_DIR`` set, also sample it
    with py-spy into ``PROFILE_DIR/name.txt`` (collapsed stacks: read them with ``profile.py``)."""
    pid = server.pid
    busy = Busy()
    spy: subprocess.Popen[bytes] | None = None
    if PROFILE_DIR is not None:
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen([shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy"), "record", "-p",
                                str(pid), "-f", "raw", "-r", "100", "--gil", "-o",
                                str(PROFILE_DIR / f"{name}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sql, cpu, wall = server.statements(), cpu_seconds(pid), time.monotonic()
    try:
        yield busy
    finally:
        busy.share = (cpu_seconds(pid) - cpu) / (time.monotonic() - wall)
        busy.sql = {k: v - sql.get(k, 0) for k, v in server.statements().items()}
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)


def uvicorn_argv(app: str) -> list[str]:
    """The same uvicorn settings for every server: one process, the loop and HTTP parser uvicorn picks (see
    :func:`server_stack`), as ``smsconnector serve`` runs."""
    return [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
            "--no-access-log"]


def server_stack() -> str:
    """What uvicorn picks here on its own ("auto"): uvloop and httptools where installed (the host depends on
    both), else asyncio's loop and h11. The ceiling's rate doubles with them, so the table names them."""
    import importlib.util

    import uvicorn

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"uvicorn {uvicorn.__version__} ({loop}, {http})"


@dataclass
class Sample:
    at: float  #: seconds since the sampler started
    rss_kib: int
    progress: int


class RssSampler:
    """Samples a process's RSS and a progress count (rows stored, say) every ``interval`` seconds."""

    def __init__(self, pid: int, progress: Callable[[], int], interval: float = 1.0) -> None:
        self.pid, self.progress, self.interval = pid, progress, interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.take()
            self._stop.wait(self.interval)

    def take(self) -> Sample:
        status = Path(f"/proc/{self.pid}/status").read_text()
        sample = Sample(time.monotonic() - self._start, int(re.search(r"VmRSS:\s+(\d+)", status)[1]),  # type: ignore[index]
                        self.progress())
        self.samples.append(sample)
        return sample

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def at_progress(self, share: float, total: int) -> Sample:
        """The first sample at which ``share`` of ``total`` was done (the last sample if never)."""
        return next((s for s in self.samples if s.progress >= share * total), self.samples[-1])

    def peak_kib(self) -> int:
        return max(s.rss_kib for s in self.samples)


# -- load ------------------------------------------------------------------------------------------------


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int  #: answered, fillers excluded
    errors: int  #: non-2xx answers and socket errors, fillers excluded
    seconds: float = 0.0


def ensure_installed(command: str) -> str:
    """The path of ``command``, installed with apt (its package named alike) when missing."""
    found = shutil.which(command)
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", command], check=False, capture_output=True)
    found = shutil.which(command)
    if not found:
        sys.exit(f"{command} is needed: apt-get install {command}")
    return found


def _ms(value: str) -> float:
    found = re.match(r"([\d.]+)(us|ms|s|m)", value)
    if found is None:
        raise RuntimeError(f"wrk printed a latency this does not read: {value!r}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _read_wrk(out: str) -> Load:
    if "99%" not in out or re.search(r"99%\s+-?nan", out):
        raise RuntimeError(f"wrk measured nothing:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    fillers = re.search(r"^fillers: (\d+)", out, re.M)
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    assert found is not None
    seconds = _ms(found[2] + found[3]) / 1000
    filler_count = int(fillers[1]) if fillers else 0
    requests = int(found[1]) - filler_count
    return Load(
        requests_per_second=requests / seconds,
        p50_ms=_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        p99_ms=_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        requests=requests,
        errors=(int(non_2xx[1]) if non_2xx else 0) - filler_count
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
        seconds=seconds,
    )


def wrk(url: str, requests_file: Path, *, connections: int, seconds: float, threads: int = 2,
        rate: float | None = None) -> Load:
    """Replay ``requests_file`` against ``url`` for ``seconds``, starting over when it runs out; as fast as
    the server answers, or with ``rate``, that many requests a second on a fixed schedule (each thread a
    request every ``threads / rate`` s on whichever connection is free, so slow answers lower the rate only
    once every connection waits for one)."""
    pace = ["every", f"{1000 * threads / rate:.3f}"] if rate else []
    out = subprocess.run(
        [ensure_installed("wrk"), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
         "--timeout", "20s", "-s", str(HERE / "replay.lua"), url, "--", str(requests_file), str(threads), *pace],
        check=True, capture_output=True, text=True,
    ).stdout
    return _read_wrk(out)


def wrk_once(url: str, requests_file: Path, *, connections: int, limit: float, threads: int = 2) -> Load:
    """Send every request of ``requests_file`` to ``url`` once; stop when all are answered or after ``limit`` s.

    wrk runs for its whole ``-d`` even when its threads are done, so this watches the threads (they end
    when their share is answered) and interrupts wrk then: its figures cover the run and not the wait.
    """
    process = subprocess.Popen(
        [ensure_installed("wrk"), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(limit))}s", "--latency",
         "--timeout", "20s", "-s", str(HERE / "replay.lua"), url, "--", str(requests_file), str(threads), "once"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    tasks = Path(f"/proc/{process.pid}/task")
    started = False
    while process.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            running = len(list(tasks.iterdir()))
            started = started or running > 1
            if started and running == 1:
                process.send_signal(signal.SIGINT)
                break
        time.sleep(0.02)
    out, err = process.communicate()
    if process.returncode not in (0, -signal.SIGINT):
        raise RuntimeError(f"wrk failed: {err}")
    return _read_wrk(out)


def wrk_plain(url: str, script: Path, *, connections: int, seconds: float, headers: Mapping[str, str] = {},
              threads: int = 2) -> Load:
    """The same request over and over (``script`` sets method and body): the baselines against the fakes."""
    argv = [ensure_installed("wrk"), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "--timeout", "20s", "-s", str(script)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return _read_wrk(subprocess.run([*argv, url], check=True, capture_output=True, text=True).stdout)


def replay_line(method: str, path: str, headers: Mapping[str, str], body: str = "") -> str:
    """One request for ``replay.lua``."""
    assert "\t" not in body and "\n" not in body
    return "\t".join([method, path, *(f"{k}: {v}" for k, v in headers.items()), body]) + "\n"


# -- the host --------------------------------------------------------------------------------------------


#: entry points none of the figures include; the compliance gate and the router are measured
UNMEASURED = {"ivr", "adkeywords", "automation", "simulator"}


def entry_point_names() -> list[str]:
    from importlib.metadata import entry_points

    return [ep.name for ep in entry_points(group="smsconnector")]


def host_config(folder: Path, database_url: str, *, numbers: Mapping[str, str], rate: float = 0,
                fake_twilio: str | None = None, fake_openmarket: str | None = None, sender: bool = True,
                in_server: bool = True) -> Path:
    """The host's TOML: ``numbers`` maps each brand number to its provider; ``in_server``: false for a web
    process beside a :class:`Worker`."""
    path = folder / "smsconnector.toml"
    listed = "".join(f"""
[[numbers]]
number = "{number}"
provider = "{provider}"
skill = "support"
""" for number, provider in numbers.items())
    openmarket = ""
    if "openmarket" in numbers.values():
        openmarket = "\n[plugins.openmarket]\n" + "".join(f'{k} = "{v}"\n' for k, v in OPENMARKET.items())
        if fake_openmarket:
            openmarket += f'api_base_url = "{fake_openmarket}"\n'
    path.write_text(f"""
database_url = "{database_url}"
public_url = "{PUBLIC_URL}"
log_level = "warning"

[sender]
default_rate_per_second = {rate}
enabled = {str(sender).lower()}

[worker]
in_server = {str(in_server).lower()}

[api]
admin_tokens = ["{ADMIN_TOKEN}"]
{listed}
[plugins]
disabled = {sorted(set(entry_point_names()) & UNMEASURED)!r}

[plugins.twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
{f'api_base_url = "{fake_twilio}"' if fake_twilio else ""}
{openmarket}
# The outbound runs reply to numbers whose consent is not what is measured (the gate's checks still run
# for every message).
[plugins.compliance.consent]
conversational = "none"
""")
    return path


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a private schema in the local PostgreSQL."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    from smsconnector.testing.database import postgres_schema

    with postgres_schema() as url:
        yield url


def migrate(config: Path) -> None:
    subprocess.run([PYTHON, "-m", "smsconnector.cli", "--config", str(config), "db", "upgrade"], check=True,
                   capture_output=True)


def host(config: Path, folder: Path) -> Server:
    """The host (``smsconnector.asgi:app``, counting its SQL) on the ceiling's uvicorn settings; migrate first."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return Server(uvicorn_argv("host_app:app"), env={"SMSCONNECTOR_CONFIG": str(config), "PYTHONPATH": path},
                  cwd=folder, counts_sql=True)


class Db:
    """Synchronous reads of what the host stored."""

    def __init__(self, database_url: str) -> None:
        self._db = Database(database_url)

    def scalar(self, sql: str, **params: Any) -> int:
        return int(self._db.scalar(sql, **params) or 0)

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return self._db.rows(sql, **params)

    def close(self) -> None:
        self._db.engine.dispose()

    def wait_quiet(self, sql: str, *, settle: float = 1.0, limit: float = 600.0, until: int | None = None) -> int:
        """Poll ``sql`` (a count) until it equals ``until``, or, without it, stops changing for ``settle`` s."""
        deadline = time.monotonic() + limit
        last, since = self.scalar(sql), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.scalar(sql)
            if until is not None and now == until:
                return now
            if now != last:
                last, since = now, time.monotonic()
            elif until is None and time.monotonic() - since >= settle:
                return now
        return last


def post_json(url: str, body: Any, *, token: str, method: str = "POST") -> Any:
    answer = httpx.request(method, url, content=json.dumps(body), timeout=30,
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    answer.raise_for_status()
    return answer.json() if answer.content else None
