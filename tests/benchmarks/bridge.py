"""The call bridge under load: N concurrent calls, 20 ms frames both ways at real-time pace.

Three paths carry the same traffic in one run, one after another, to the same Realtime
simulator process, which answers every appended frame with a frame of model audio:

- direct: the load generator talks to the simulator itself (the baseline);
- relay: the floor, a minimal pass-through relay (tests/benchmarks/processes.py: plain
  websockets, JSON in and out) between a Twilio-shaped client and the simulator;
- bridge: the real server (uvicorn serving config.asgi, on PostgreSQL and Redis): a signed
  voice webhook, TwiML, the Media Streams WebSocket with its token and signature, marks echoed
  as Twilio echoes them.

Each frame carries its sequence number and send time (workers.audio.timestamp_frame) and the
simulator's answer carries the sequence back, so every frame's round trip is measured. Added
latency at a percentile is that percentile of a path's round trips minus the direct path's.
CPU is the relay's or the server's own process time while the frames flow, per call-minute;
memory per call is the process's resident memory above its idle level, divided by N.
"""

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import random
import secrets
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvloop
from websockets.asyncio.client import ClientConnection, connect

from tests.benchmarks.database import recreate_database
from workers import audio
from workers.caller import sign

logging.getLogger("httpx").setLevel(logging.WARNING)

FRAME_SECONDS = 0.02
LEVELS = (1, 10, 25, 50, 75, 100)
SECONDS = 10.0
MIN_FRAMES = 1500  # per round and path, so that a p99 rests on at least 15 samples
QUICK_LEVELS = (1, 10)
QUICK_SECONDS = 3.0
IDLE_SECONDS = 3.0
ONE_FRAME_MS = FRAME_SECONDS * 1000
RESULTS = Path(__file__).resolve().parent / "results"


# --- Processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Process:
    """A child process, with its CPU time and resident memory read from /proc."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        log = (RESULTS / f"{name}.log").open("w")
        self.popen = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + 30
        while True:
            assert self.popen.poll() is None, f"{name} exited; see {RESULTS / name}.log"
            assert time.monotonic() < deadline, f"{name} did not start"
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()


def prepare_database() -> tuple[str, str]:
    """Re-create the benchmark database, migrate it, and give it a tenant whose published agent
    answers a sandbox number. Returns the number and its webhook signing token."""
    recreate_database()
    from agents.services import agents as agent_services
    from tenants.access import Actor
    from tests import factories
    from workers.twilio import signing_token

    actor = Actor.system("benchmark")
    tenant = factories.TenantFactory(name="Benchmark", max_concurrent_calls=10_000)
    account = factories.CarrierAccountFactory(tenant=tenant)
    agent = factories.AgentFactory(tenant=tenant)
    version = agent_services.version_create(
        agent=agent,
        actor=actor,
        greeting="",  # only the measured frames flow
        prompt_revision=factories.PromptRevisionFactory(
            template=factories.PromptTemplateFactory(tenant=tenant)
        ),
        max_call_duration_seconds=3600,
    )
    agent_services.version_publish(version=version, actor=actor)
    number = factories.PhoneNumberFactory(carrier_account=account, agent=agent)
    return number.e164, signing_token(account)


# --- One call's frames --------------------------------------------------------------------------


@dataclass
class Leg:
    sent: dict[int, int] = field(default_factory=dict)  # sequence -> send time (ns)
    round_trips: list[int] = field(default_factory=list)  # ns
    highest: int = -1
    reordered: int = 0

    def answered(self, payload: str, now: int) -> None:
        stamp = audio.read_timestamp(base64.b64decode(payload[:24]))
        if stamp is None or stamp[0] not in self.sent:
            return  # not one of ours (a greeting, say)
        sequence = stamp[0]
        self.round_trips.append(now - self.sent[sequence])
        if sequence < self.highest:
            self.reordered += 1
        self.highest = max(self.highest, sequence)


def _between(text: str, key: str) -> str | None:
    start = text.find(key)
    if start < 0:
        return None
    start += len(key)
    return text[start : text.find('"', start)]


@dataclass
class Stream:
    """One call as the load generator sees it: how to wrap an outgoing frame, and how to read
    what comes back."""

    ws: ClientConnection
    carrier: bool  # Twilio-shaped (relay, bridge) rather than Realtime-shaped (direct)
    stream_sid: str = ""
    leg: Leg = field(default_factory=Leg)

    def frame(self, sequence: int, payload: str) -> str:
        if not self.carrier:
            return '{"type":"input_audio_buffer.append","audio":"' + payload + '"}'
        return (
            f'{{"event":"media","sequenceNumber":"{sequence + 2}","media":{{"track":"inbound",'
            f'"chunk":"{sequence + 1}","timestamp":"{sequence * 20}","payload":"{payload}"}},'
            f'"streamSid":"{self.stream_sid}"}}'
        )

    async def receive(self) -> None:
        async for message in self.ws:
            now = time.monotonic_ns()
            text = message if isinstance(message, str) else message.decode()
            if text.startswith('{"event":"mark"'):  # Twilio echoes a mark once played
                await self.ws.send(
                    '{"event":"mark","streamSid":"'
                    + self.stream_sid
                    + '","mark":{"name":"'
                    + str(_between(text, '"name":"'))
                    + '"}}'
                )
                continue
            payload = _between(text, '"payload":"' if self.carrier else '"delta":"')
            if payload:
                self.leg.answered(payload, now)

    async def send_frames(self, start_at: float, count: int) -> None:
        loop = asyncio.get_running_loop()
        filler = audio.TONE_FRAME
        for sequence in range(count):
            delay = start_at + sequence * FRAME_SECONDS - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic_ns()
            self.leg.sent[sequence] = now
            chunk = base64.b64encode(audio.timestamp_frame(sequence, now, filler)).decode()
            await self.ws.send(self.frame(sequence, chunk))

    async def hang_up(self) -> None:
        if self.carrier:
            stop = '{"event":"stop","streamSid":"' + self.stream_sid + '","stop":{}}'
            with contextlib.suppress(Exception):  # already closed by the other side
                await self.ws.send(stop)
        await self.ws.close()


# --- The three paths -------------------------------------------------------------------------


def _twilio_start(stream_sid: str, call_sid: str, token: str) -> list[str]:
    start = {
        "streamSid": stream_sid,
        "accountSid": "AC" + "0" * 32,
        "callSid": call_sid,
        "tracks": ["inbound"],
        "customParameters": {"token": token},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    return [
        json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        json.dumps(
            {"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": start}
        ),
    ]


@dataclass
class Via:
    name: str
    open: Callable[[], Awaitable[Stream]]
    process: Process | None


def direct_path(simulator_url: str) -> Via:
    async def open_() -> Stream:
        ws = await connect(
            simulator_url + "/realtime?model=gpt-realtime",
            additional_headers={"Authorization": "Bearer sk-bench"},
            max_size=None,
            compression=None,
        )
        return Stream(ws, carrier=False)

    return Via("direct", open_, None)


def relay_path(relay: Process) -> Via:
    async def open_() -> Stream:
        ws = await connect(f"ws://127.0.0.1:{relay.port}/", max_size=None, compression=None)
        stream = Stream(ws, carrier=True, stream_sid="MZ" + secrets.token_hex(16))
        for message in _twilio_start(stream.stream_sid, "CA" + secrets.token_hex(16), ""):
            await ws.send(message)
        return stream

    return Via("relay", open_, relay)


def bridge_path(server: Process, number: str, signing_token: str) -> Via:
    base = f"http://127.0.0.1:{server.port}"

    async def open_() -> Stream:
        call_sid = "CA" + secrets.token_hex(16)
        params = {
            "CallSid": call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": "+15005550006",
            "To": number,
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        path = "/carriers/twilio/voice"
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(
                base + path,
                data=params,
                headers={"X-Twilio-Signature": sign(signing_token, base + path, params)},
            )
        answer.raise_for_status()
        stream_element = ET.fromstring(answer.text).find("./Connect/Stream")  # noqa: S314 - our own server's TwiML
        assert stream_element is not None, answer.text
        url = str(stream_element.get("url"))
        token = next(
            str(p.get("value"))
            for p in stream_element.findall("Parameter")
            if p.get("name") == "token"
        )
        ws = await connect(
            url,
            additional_headers={"X-Twilio-Signature": sign(signing_token, url, {})},
            max_size=None,
            compression=None,
        )
        stream = Stream(ws, carrier=True, stream_sid="MZ" + secrets.token_hex(16))
        for message in _twilio_start(stream.stream_sid, call_sid, token):
            await ws.send(message)
        return stream

    return Via("bridge", open_, server)


# --- Rounds ---------------------------------------------------------------------------------


def percentile(values: list[int], share: float) -> float:
    """In milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] / 1e6


@dataclass
class Round:
    path: str
    calls: int
    frames_sent: int
    frames_back: int
    lost: int
    reordered: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_seconds_per_call_minute: float | None
    rss_mib: float | None
    added: dict[str, float] = field(default_factory=dict)
    mib_per_call: float | None = None
    cpu_vs_relay: float | None = None


async def measure(path: Via, calls: int, seconds: float, idle_rate: float = 0.0) -> Round:
    """`idle_rate` is the process's CPU seconds per second with no call: not a cost of calls."""
    loop = asyncio.get_running_loop()
    streams = list(await asyncio.gather(*(path.open() for _ in range(calls))))
    receivers = [asyncio.ensure_future(s.receive()) for s in streams]
    await asyncio.sleep(1.0)  # every model session is open
    frames = int(seconds / FRAME_SECONDS)
    cpu_before = path.process.cpu_seconds() if path.process else 0.0
    began = loop.time()
    start_at = began + 0.05
    # Calls are not in step with each other: each starts somewhere within one frame.
    await asyncio.gather(
        *(s.send_frames(start_at + random.random() * FRAME_SECONDS, frames) for s in streams)
    )
    await asyncio.sleep(0.5)  # the last answers come back
    window = loop.time() - began
    cpu = None
    if path.process:
        cpu = max(0.0, path.process.cpu_seconds() - cpu_before - idle_rate * window)
    rss = path.process.rss_bytes() / 2**20 if path.process else None
    await asyncio.gather(*(s.hang_up() for s in streams), return_exceptions=True)
    for receiver in receivers:
        receiver.cancel()
    await asyncio.sleep(1.0)  # the calls wind down before the next round
    trips = [t for s in streams for t in s.leg.round_trips]
    sent = sum(len(s.leg.sent) for s in streams)
    return Round(
        path=path.name,
        calls=calls,
        frames_sent=sent,
        frames_back=len(trips),
        lost=sent - len(trips),
        reordered=sum(s.leg.reordered for s in streams),
        p50_ms=percentile(trips, 0.50),
        p95_ms=percentile(trips, 0.95),
        p99_ms=percentile(trips, 0.99),
        cpu_seconds_per_call_minute=(cpu / (calls * window / 60)) if cpu is not None else None,
        rss_mib=rss,
    )


async def bench(paths: list[Via], levels: tuple[int, ...], seconds: float) -> dict[str, Any]:
    for path in paths:  # warm up: imports, connection pools, caches
        await measure(path, 2, 1.0)
    idle = {p.name: p.process.rss_bytes() / 2**20 for p in paths if p.process}
    measured = [p for p in paths if p.process]
    before = {p.name: p.process.cpu_seconds() for p in measured if p.process}
    await asyncio.sleep(IDLE_SECONDS)
    idle_rate = {
        p.name: (p.process.cpu_seconds() - before[p.name]) / IDLE_SECONDS
        for p in measured
        if p.process
    }
    rounds: list[Round] = []
    for calls in levels:
        by_path = {}
        for path in paths:
            print(f"  {calls:>4} calls via {path.name} …", flush=True)
            length = max(seconds, MIN_FRAMES * FRAME_SECONDS / calls)
            by_path[path.name] = await measure(path, calls, length, idle_rate.get(path.name, 0.0))
        base = by_path["direct"]
        for result in by_path.values():
            for key in ("p50_ms", "p95_ms", "p99_ms"):
                result.added[key] = round(getattr(result, key) - getattr(base, key), 2)
            if result.rss_mib is not None:
                result.mib_per_call = round((result.rss_mib - idle[result.path]) / calls, 3)
            relay_cpu = by_path["relay"].cpu_seconds_per_call_minute
            if result.cpu_seconds_per_call_minute is not None and relay_cpu:
                result.cpu_vs_relay = round(result.cpu_seconds_per_call_minute / relay_cpu, 2)
        rounds += by_path.values()
    bridge = [r for r in rounds if r.path == "bridge"]
    relay = {r.calls: r for r in rounds if r.path == "relay"}
    within_a_frame = [r.calls for r in bridge if r.added["p99_ms"] < ONE_FRAME_MS]
    return {
        "seconds_per_round": seconds,
        "idle_rss_mib": idle,
        "idle_cpu_per_second": idle_rate,
        "rounds": [vars(r) for r in rounds],
        "summary": {
            "largest_n_with_p99_added_under_one_frame": max(within_a_frame, default=0),
            "lost_frames_bridge": sum(r.lost for r in bridge),
            "reordered_frames_bridge": sum(r.reordered for r in bridge),
            "worst_cpu_vs_relay": max((r.cpu_vs_relay or 0) for r in bridge),
            "p99_added_ms_where_relay_floor_under_5ms": {
                r.calls: r.added["p99_ms"] for r in bridge if relay[r.calls].added["p99_ms"] < 5
            },
        },
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    number, token = prepare_database()
    python = sys.executable
    env = dict(os.environ)
    sim_port, relay_port, server_port = free_port(), free_port(), free_port()
    simulator_url = f"ws://127.0.0.1:{sim_port}/v1"
    module = "tests.benchmarks.processes"
    processes = [
        Process("simulator", [python, "-m", module, "simulator", str(sim_port)], env, sim_port)
    ]
    try:
        processes.append(
            Process(
                "relay",
                [python, "-m", module, "relay", str(relay_port), simulator_url],
                env,
                relay_port,
            )
        )
        server_env = {
            **env,
            "DEBUG": "0",
            "OPENAI_API_KEY": "sk-benchmark",
            "OPENAI_REALTIME_URL": simulator_url,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{server_port}",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
        }
        server_args = [
            python,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(server_port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        server = Process("server", server_args, server_env, server_port)
        processes.append(server)
        paths = [
            direct_path(simulator_url),
            relay_path(processes[1]),
            bridge_path(server, number, token),
        ]
        levels: tuple[int, ...] = QUICK_LEVELS if args.quick else LEVELS
        if args.levels:
            levels = tuple(int(n) for n in args.levels.split(","))
        seconds = args.seconds or (QUICK_SECONDS if args.quick else SECONDS)
        print(f"bridge: {len(levels)} levels x {len(paths)} paths x {seconds:g} s", flush=True)
        return uvloop.run(bench(paths, levels, seconds))
    finally:
        for process in reversed(processes):
            process.stop()


def markdown(report: dict[str, Any]) -> str:
    summary = report["summary"]
    lines = [
        f"# Bridge benchmark ({report['ran_at']}, {report['cpus']} CPUs, "
        f"at least {report['seconds_per_round']:g} s and {MIN_FRAMES} frames per round)",
        "",
        "Round trip of a 20 ms frame, load generator → path → Realtime simulator → back. "
        "*Added* is the path's percentile minus the direct path's. CPU is the relay's or the "
        "server's process time while frames flow, above its idle rate, per call-minute.",
        "",
        "| calls | path | p50 ms | p95 ms | p99 ms | added p50 | added p95 | added p99 "
        "| CPU s per call-min | x relay | MiB per call | lost | reordered |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def show(value: Any, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for r in report["rounds"]:
        lines.append(
            f"| {r['calls']} | {r['path']} | {show(r['p50_ms'])} | {show(r['p95_ms'])} "
            f"| {show(r['p99_ms'])} | {show(r['added']['p50_ms'])} | {show(r['added']['p95_ms'])} "
            f"| {show(r['added']['p99_ms'])} | {show(r['cpu_seconds_per_call_minute'], 3)} "
            f"| {show(r['cpu_vs_relay'])} | {show(r['mib_per_call'], 3)} | {r['lost']} "
            f"| {r['reordered']} |"
        )
    lines += [
        "",
        f"- Largest N with the bridge's p99 added latency under one frame (20 ms): "
        f"**{summary['largest_n_with_p99_added_under_one_frame']}**",
        f"- Bridge frames lost: **{summary['lost_frames_bridge']}**, reordered: "
        f"**{summary['reordered_frames_bridge']}**",
        f"- Worst bridge CPU per call against the relay floor: "
        f"**{summary['worst_cpu_vs_relay']}x** (target ≤ 1.3x)",
        f"- Bridge p99 added (ms) at the N where the floor's own stays under 5 ms: "
        f"{summary['p99_added_ms_where_relay_floor_under_5ms']} (target ≤ 5)",
        "",
    ]
    return "\n".join(lines)
