"""Fault scenarios: what a failure in the middle of live calls and queued work leaves behind.

Each scenario runs the real thing (the server, Celery workers, Redis, PostgreSQL, the Realtime
simulator as the model, simulated Twilio callers), breaks one part of it, and states what it
checked through `checks`, which `make chaos` prints. See docs/testing.md."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from billing.models import UsageEvent
from calls.models import Call, Outcome, PostCallJob
from tests.fakes.openai import FakeOpenAI
from tests.workers.conftest import LoopThread, Simulator, asgi_server, simulator  # noqa: F401
from workers.simulator import RealtimeSimulator

LOGS = Path(django_settings.BASE_DIR) / "test-artifacts" / "chaos"


class Checks:
    """Asserts one property of the outcome and prints it, so a run says what it proved."""

    def __init__(self, scenario: str) -> None:
        print(f"\n{scenario}", flush=True)

    def that(self, what: str, holds: bool) -> None:
        assert holds, what
        print(f"  checked: {what}", flush=True)

    def within(
        self, seconds: float, what: str, condition: Callable[[], bool], already: float = 0.0
    ) -> None:
        """`what` comes true within `seconds` of a moment `already` seconds ago."""
        took = already + wait_for(what, condition, seconds - already)
        print(f"  checked: {what} (after {took:.1f} s; the limit is {seconds:g} s)", flush=True)


@pytest.fixture
def checks(request: pytest.FixtureRequest) -> Checks:
    doc = (request.function.__doc__ or request.function.__name__).strip().splitlines()[0]
    return Checks(doc)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def database_url() -> str:
    """The test database, as the application's role: what the product's processes connect to."""
    database = connection.settings_dict
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


def wait_for(what: str, condition: Callable[[], bool], seconds: float) -> float:
    """Wait until `condition` holds; return how long it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds:g} s"
        time.sleep(0.2)
    return time.monotonic() - started


class Process:
    """A child process in a process group of its own (so a kill takes its children too), its
    output in <logs>/<name>.log."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.log"
        with self.log.open("a") as log:
            self.popen = subprocess.Popen(  # noqa: S603
                args,
                env=env,
                cwd=django_settings.BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_for_port(self, port: int, seconds: float = 30) -> None:
        def listening() -> bool:
            assert self.popen.poll() is None, f"{self.name} exited; see {self.log}"
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_for(f"{self.name} listening", listening, seconds)

    def kill(self) -> None:
        """SIGKILL the process and its children at once: no shutdown, nothing handed back."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


class Stack:
    """The product's processes on their own Redis: `uvicorn` serving the ASGI app and a Celery
    worker with its beat, on the test database (as the application's role), with the Realtime
    simulator and a fake OpenAI REST API in this process."""

    def __init__(self, logs: Path, sim: RealtimeSimulator, model: FakeOpenAI, **env: str) -> None:
        self.redis_port, self.port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": self.redis_url,
            # The test process's keys: the sandbox's webhook signatures and stored secrets.
            "SECRET_KEY": django_settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": os.environ["FIELD_ENCRYPTION_KEYS"],
            "OPENAI_API_KEY": model.api_key,
            "OPENAI_BASE_URL": model.url,
            "OPENAI_REALTIME_URL": sim.url,
            "PUBLIC_BASE_URL": self.base_url,
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            **env,
        }
        # test-artifacts/chaos/<scenario>/: this run's logs only.
        self.logs = logs
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        self.redis: Process | None = None
        self.server: Process | None = None
        self.worker: Process | None = None
        self.workers_started = 0

    def start(self) -> "Stack":
        self.start_redis()
        self.start_server()
        self.start_worker()
        return self

    def start_server(self) -> None:
        self.server = Process(
            "server",
            [
                *(sys.executable, "-m", "uvicorn", "config.asgi:application"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--no-access-log", "--log-level", "warning"),
            ],
            self.env,
            self.logs,
        )
        self.server.wait_for_port(self.port)

    def start_redis(self) -> None:
        self.redis = Process(
            "redis",
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port)),
                *("--save", "", "--appendonly", "no"),
            ],
            self.env,
            self.logs,
        )
        self.redis.wait_for_port(self.redis_port)

    def start_worker(self) -> None:
        """A worker (two processes) with the beat, whose schedule starts afresh each time."""
        self.workers_started += 1
        schedule = self.logs / f"beat-schedule-{self.workers_started}"
        self.worker = Process(
            "worker",
            [
                *(sys.executable, "-m", "celery", "--app", "config", "worker", "--beat"),
                *("--schedule", str(schedule), "--pool", "prefork", "--concurrency", "2"),
                *("--loglevel", "INFO", "--without-mingle", "--without-gossip"),
            ],
            self.env,
            self.logs,
        )

    def stop(self) -> None:
        for process in (self.worker, self.server, self.redis):
            if process is not None:
                process.stop()


@pytest.fixture
def fake_model() -> Iterator[FakeOpenAI]:
    model = FakeOpenAI().start()
    yield model
    model.server.stop()


@pytest.fixture
def stack_simulator(fake_model: FakeOpenAI) -> Iterator[Simulator]:
    thread = LoopThread()
    sim = thread.run(RealtimeSimulator(api_key=fake_model.api_key).start())
    yield Simulator(sim, thread)
    thread.run(sim.stop())
    thread.stop()


@pytest.fixture
def make_stack(
    request: pytest.FixtureRequest,
    transactional_db: None,
    stack_simulator: Simulator,
    fake_model: FakeOpenAI,
) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []
    logs = LOGS / request.node.name

    def make(**env: str) -> Stack:
        stacks.append(Stack(logs, stack_simulator.sim, fake_model, **env).start())
        return stacks[-1]

    yield make
    for stack in stacks:
        stack.stop()


# --- What every scenario checks afterwards ---------------------------------------------------


def live_calls() -> int:
    live = [Call.Status.RINGING, Call.Status.IN_PROGRESS]
    return Call.all_tenants.filter(status__in=live).count()


def check_processed_exactly_once(checks: Checks, calls: list[Call], seconds: float) -> None:
    """Every call's after-call work ran once: one outcome, and one usage event for each
    resolved call (none for the others), whatever was lost or repeated on the way."""
    ids = [call.pk for call in calls]
    checks.within(
        seconds,
        f"the after-call work of all {len(ids)} calls completed",
        lambda: (
            PostCallJob.all_tenants.filter(call_id__in=ids, finished_at=None).count() == 0
            and Call.all_tenants.filter(pk__in=ids, processed_at=None).count() == 0
        ),
    )
    outcomes = list(Outcome.all_tenants.filter(call_id__in=ids).values_list("call_id", "label"))
    checks.that("each call has exactly one outcome", sorted(c for c, _ in outcomes) == sorted(ids))
    resolved = sorted(
        Call.all_tenants.get(pk=c).public_id for c, label in outcomes if label == "resolved"
    )
    billed = sorted(
        UsageEvent.all_tenants.filter(reference__in=[call.public_id for call in calls]).values_list(
            "reference", flat=True
        )
    )
    checks.that(
        f"one usage event per resolved call, none lost or doubled ({len(billed)} for "
        f"{len(resolved)} resolved)",
        billed == resolved,
    )
