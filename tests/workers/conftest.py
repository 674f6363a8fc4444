"""Live-call fixtures: the real server on a free port, the Realtime simulator as the model, and
helpers to set up an agent that answers a number."""

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import uvicorn

from agents.models import AgentVersion, CarrierAccount, PhoneNumber, Tool
from agents.services import agents as agent_services
from agents.services import knowledge as knowledge_services
from agents.services import tools as tool_services
from tenants.access import Actor
from tests import factories
from tests.fakes.openai import FakeOpenAI
from workers.simulator import RealtimeSimulator

T = TypeVar("T")
SYSTEM = Actor.system("tests")


class LoopThread:
    """An event loop in its own thread, for servers the test drives from outside."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Simulator:
    sim: RealtimeSimulator
    thread: LoopThread

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.thread.run(coroutine)


@pytest.fixture
def simulator(settings: Any) -> Iterator[Simulator]:
    thread = LoopThread()
    sim = thread.run(RealtimeSimulator(api_key="sk-test").start())
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_REALTIME_URL = sim.url
    yield Simulator(sim, thread)
    thread.run(sim.stop())
    thread.stop()


@pytest.fixture
def asgi_server(transactional_db: None, settings: Any, simulator: Simulator) -> Iterator[str]:
    """The real ASGI application (HTTP, WebSockets) served by uvicorn on a free port."""
    from config.asgi import application

    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host="127.0.0.1",
            port=0,
            lifespan="on",
            log_level="warning",
            ws_max_size=16 * 1024 * 1024,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{port}"
    settings.ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
    yield settings.PUBLIC_BASE_URL
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def fake_openai(settings: Any) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    settings.OPENAI_BASE_URL = fake.url
    yield fake
    fake.server.stop()


GREETING = "Thanks for calling Harbour Dental, how can I help?"


def phone_agent(
    *,
    account: CarrierAccount | None = None,
    greeting: str = GREETING,
    fallback: str = "",
    extra_tools: tuple[Tool, ...] = (),
    **version_fields: Any,
) -> tuple[PhoneNumber, AgentVersion]:
    """An agent with knowledge, a search tool, a transfer and a hang-up (and `extra_tools`, of
    the account's tenant), published and taking all calls on a new number."""
    account = account or factories.CarrierAccountFactory()
    tenant = account.tenant
    kb = knowledge_services.knowledge_base_create(tenant=tenant, actor=SYSTEM, name="FAQ")
    knowledge_services.document_add(
        knowledge_base=kb,
        actor=SYSTEM,
        title="Hours",
        filename="hours.txt",
        content_type="text/plain",
        raw=b"We open at nine on Saturday mornings.",
    )
    tools = [
        tool_services.tool_create(
            tenant=tenant,
            actor=SYSTEM,
            name="search_faq",
            kind=Tool.Kind.SEARCH_KNOWLEDGE,
            description="Look things up.",
        ),
        tool_services.tool_create(
            tenant=tenant,
            actor=SYSTEM,
            name="transfer",
            kind=Tool.Kind.TRANSFER_CALL,
            description="Hand over to a person.",
        ),
        tool_services.tool_create(
            tenant=tenant,
            actor=SYSTEM,
            name="end_call",
            kind=Tool.Kind.END_CALL,
            description="End the call.",
        ),
        *extra_tools,
    ]
    agent = factories.AgentFactory(tenant=tenant, fallback_number=fallback)
    version = agent_services.version_create(
        agent=agent,
        actor=SYSTEM,
        greeting=greeting,
        tools=tools,
        knowledge_bases=[kb],
        prompt_revision=factories.PromptRevisionFactory(
            template=factories.PromptTemplateFactory(tenant=tenant)
        ),
        transfer_targets=[{"name": "front desk", "destination": "+14155550199"}],
        **version_fields,
    )
    agent_services.version_publish(version=version, actor=SYSTEM)
    number = factories.PhoneNumberFactory(carrier_account=account, agent=agent)
    return number, version
