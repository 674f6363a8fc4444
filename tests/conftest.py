"""Fixtures shared by the whole suite. The suite runs against real PostgreSQL and Redis."""

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from celery.signals import task_postrun, task_prerun
from django.conf import settings as django_settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import Client
from django.test.client import ClientHandler
from django_otp import DEVICE_ID_SESSION_KEY
from rest_framework.test import APIClient

from agents.models import (
    Agent,
    AgentVersion,
    CarrierAccount,
    Document,
    Integration,
    KnowledgeBase,
    NumberPurchase,
    PhoneNumber,
    PromptRevision,
    PromptTemplate,
    Tool,
)
from billing.models import CreditNote, Invoice, UsageEvent
from calls import recordings
from calls.models import Call, Erasure, RetentionCheckpoint
from tenants import rls
from tenants.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Tenant,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from tenants.roles import Role
from tests import factories
from tests.fakes.twilio import FakeTwilio


def _reachable(url: str, default_port: int) -> str | None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        return f"{host}:{port} ({exc.strerror or exc})"
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Fail at once, naming what is missing, when PostgreSQL or Redis cannot be reached."""
    if hasattr(config, "workerinput"):  # xdist workers: the controller already checked
        return
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    problems = []
    if not database_url.startswith(("postgres://", "postgresql://")):
        problems.append(
            "DATABASE_URL must point at PostgreSQL (make test sets "
            "postgres://postgres@127.0.0.1:5432/switchboard)"
        )
    elif failure := _reachable(database_url, 5432):
        problems.append(f"PostgreSQL is unreachable at {failure}")
    if not redis_url.startswith("redis://"):
        problems.append("REDIS_URL must point at Redis (make test sets redis://127.0.0.1:6379/1)")
    elif failure := _reachable(redis_url, 6379):
        problems.append(f"Redis is unreachable at {failure}")
    if problems:
        pytest.exit("Cannot run the tests: " + "; ".join(problems), returncode=2)

    # Rate-limit counters live in Redis with real expiries; start every run from a clean slate
    # so limits counted by an earlier run cannot trip this one.
    import redis

    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture(autouse=True)
def _test_speedups(settings: Any) -> None:
    # Production serves hashed files from collectstatic's manifest; tests render pages without
    # running collectstatic.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # PBKDF2's deliberate slowness (~0.4 s a password) would dominate the suite's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def verified_login(client: Client, user: User) -> Client:
    """Sign `client` in as `user` with a verified TOTP device, as the sign-in flow would."""
    device = factories.TOTPDeviceFactory(user=user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def key_client(api_key: ApiKey) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.secret}")
    return client


@dataclass
class TenantWorld:
    """One tenant holding one of every kind of resource."""

    tenant: Tenant
    owner: Membership
    member: Membership
    invitation: Invitation
    api_key: ApiKey
    audit_event: AuditEvent
    integration: Integration
    tool: Tool
    knowledge_base: KnowledgeBase
    document: Document
    prompt_template: PromptTemplate
    prompt_revision: PromptRevision
    agent: Agent
    version: AgentVersion  # a complete draft
    published_version: AgentVersion  # taking all of the agent's calls
    carrier_account: CarrierAccount  # sandbox
    twilio_account: CarrierAccount  # pointing at the fake Twilio
    phone_number: PhoneNumber
    number_purchase: NumberPurchase  # how `phone_number` was bought
    call: Call  # answered, ended and processed: a short transcript, an outcome, a recording
    webhook_endpoint: WebhookEndpoint
    webhook_delivery: WebhookDelivery  # about `call`
    usage_event: UsageEvent  # `call`, billed
    invoice: Invoice  # finalized, with a usage line charging `usage_event`
    credit_note: CreditNote  # on `invoice`
    erasure: Erasure  # of a number that called before (counts only, never the number)
    retention_checkpoint: RetentionCheckpoint
    twilio: FakeTwilio

    @property
    def client(self) -> APIClient:
        """An API client authenticated with a key holding every scope."""
        return key_client(self.api_key)

    def session_client(self, role: str = Role.OWNER) -> APIClient:
        """An API client signed in (with TOTP) as a member with `role`."""
        membership = (
            self.owner
            if role == Role.OWNER
            else factories.MembershipFactory(tenant=self.tenant, role=role)
        )
        client = APIClient()
        verified_login(client, membership.user)
        return client

    def public_ids(self) -> set[str]:
        return {
            value.public_id
            for value in vars(self).values()
            if isinstance(getattr(value, "public_id", None), str)
        }


def make_world(name: str, twilio: FakeTwilio) -> TenantWorld:
    tenant = factories.TenantFactory(name=f"{name} Inc")
    integration = factories.IntegrationFactory(tenant=tenant)
    knowledge_base = factories.KnowledgeBaseFactory(tenant=tenant)
    document = factories.DocumentFactory(knowledge_base=knowledge_base)
    factories.ChunkFactory(document=document)
    revision = factories.PromptRevisionFactory(
        template=factories.PromptTemplateFactory(tenant=tenant)
    )
    agent = factories.AgentFactory(tenant=tenant)
    published = factories.published_version(agent=agent, prompt_revision=revision)
    factories.TrafficAllocationFactory(version=published)
    carrier_account = factories.CarrierAccountFactory(tenant=tenant)
    phone_number = factories.PhoneNumberFactory(carrier_account=carrier_account, agent=agent)
    call = factories.CallFactory(phone_number=phone_number)
    factories.CallEventFactory(
        call=call,
        sequence=1,
        offset_ms=900,
        payload={"speaker": "agent", "text": "Thanks for calling, how can I help?"},
    )
    factories.CallEventFactory(call=call, sequence=2, offset_ms=4200)
    factories.OutcomeFactory(call=call)
    Call.objects.for_tenant(tenant).filter(pk=call.pk).update(
        **recordings.store(tenant.public_id, call.public_id, b"\x7f" * 800, b"\xff" * 800)
    )
    call.refresh_from_db()
    webhook_endpoint = factories.WebhookEndpointFactory(tenant=tenant)
    usage_event = factories.UsageEventFactory(
        tenant=tenant,
        reference=call.public_id,
        occurred_at=call.ended_at,
        agent=agent.public_id,
        version=published.public_id,
    )
    ended: datetime = usage_event.occurred_at
    invoice = factories.InvoiceFactory(
        tenant=tenant, period_start=ended - timedelta(days=1), period_end=ended + timedelta(days=1)
    )
    factories.InvoiceLineFactory(invoice=invoice, position=1, events_through=usage_event.pk)
    return TenantWorld(
        tenant=tenant,
        owner=factories.MembershipFactory(tenant=tenant, role=Role.OWNER),
        member=factories.MembershipFactory(tenant=tenant, role=Role.VIEWER),
        invitation=factories.InvitationFactory(tenant=tenant),
        api_key=factories.ApiKeyFactory(tenant=tenant),
        audit_event=factories.AuditEventFactory(tenant=tenant),
        integration=integration,
        tool=factories.ToolFactory(tenant=tenant, integration=integration),
        knowledge_base=knowledge_base,
        document=document,
        prompt_template=revision.template,
        prompt_revision=revision,
        agent=agent,
        version=factories.AgentVersionFactory(agent=agent, prompt_revision=revision),
        published_version=published,
        carrier_account=carrier_account,
        twilio_account=factories.CarrierAccountFactory(
            tenant=tenant,
            kind=CarrierAccount.Kind.TWILIO,
            config={"account_sid": twilio.account_sid},
            secrets={"auth_token": twilio.auth_token},
        ),
        phone_number=phone_number,
        number_purchase=factories.NumberPurchaseFactory(phone_number=phone_number),
        call=call,
        webhook_endpoint=webhook_endpoint,
        webhook_delivery=factories.WebhookDeliveryFactory(
            endpoint=webhook_endpoint, subject=call.public_id
        ),
        twilio=twilio,
        usage_event=usage_event,
        invoice=invoice,
        credit_note=factories.CreditNoteFactory(invoice=invoice),
        erasure=factories.ErasureFactory(tenant=tenant),
        retention_checkpoint=factories.RetentionCheckpointFactory(tenant=tenant),
    )


@pytest.fixture(scope="session")
def fake_twilio() -> Iterator[FakeTwilio]:
    twilio = FakeTwilio().start()
    yield twilio
    twilio.server.stop()


@pytest.fixture(autouse=True)
def _twilio_points_at_the_fake(settings: Any, fake_twilio: FakeTwilio) -> None:
    settings.TWILIO_API_BASE_URL = fake_twilio.url


@pytest.fixture(scope="session")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _files_go_to_a_temporary_directory(settings: Any, media_root: Any) -> None:
    settings.MEDIA_ROOT = str(media_root)


@pytest.fixture(scope="session", autouse=True)
def _an_empty_task_queue() -> None:
    """Tasks a previous run queued on the broker and nobody consumed would reach this run's
    workers, about rows that no longer exist."""
    from config.celery import app

    if not app.conf.task_always_eager:
        app.control.purge()


@pytest.fixture
def world(db: None, fake_twilio: FakeTwilio) -> TenantWorld:
    return make_world("Alpha", fake_twilio)


@pytest.fixture
def other_world(db: None, fake_twilio: FakeTwilio) -> TenantWorld:
    return make_world("Beta", fake_twilio)


@pytest.fixture
def make_client() -> Callable[..., APIClient]:
    return key_client


@pytest.fixture
def celery_eager() -> Any:
    """Run Celery tasks in the test's own process, as the embedded (make run) mode does."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


# --- Row-level security -----------------------------------------------------------------------
# The suite runs as the application's role, like production: migrations run as the owner
# (pytest-django's test database set-up), then every connection logs in as DATABASE_APP_ROLE,
# subject to row-level security. Test code itself (factories, assertions) sets up and inspects
# any tenant's rows, so the test thread's connections bypass it; but whenever product code
# takes over on that thread (a request through the test client, a task), the bypass is lifted
# for its duration, and product code sees exactly what it would in production. Servers started
# by tests (live server, call bridges, Celery workers) run on threads of their own without it.


def _set_test_bypass(connection: Any, value: str) -> None:
    if (
        connection.vendor != "postgresql"
        or threading.current_thread() is not threading.main_thread()
    ):
        return
    if connection.connection is None:
        return
    # On the driver's connection, so that tests counting queries do not see it. (When the
    # test's transaction already failed, its rollback restores the setting.)
    with contextlib.suppress(psycopg.Error):
        connection.connection.execute(
            "SELECT set_config(%s, %s, false)", [rls.BYPASS_SETTING, value]
        )


def _test_code_bypasses(sender: Any, connection: Any, **kwargs: Any) -> None:
    _set_test_bypass(connection, "on")


def _product_code_starts(**kwargs: Any) -> None:
    for connection in connections.all(initialized_only=True):
        _set_test_bypass(connection, "off")


def _product_code_ends(**kwargs: Any) -> None:
    for connection in connections.all(initialized_only=True):
        _set_test_bypass(connection, "on")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    database = connections["default"]
    owner = database.settings_dict["USER"]
    role = django_settings.DATABASE_APP_ROLE
    with django_db_blocker.unblock(), database.cursor() as cursor:
        # Transactional tests empty the tables with TRUNCATE between tests; production never
        # grants it (TRUNCATE ignores row-level security).
        cursor.execute(f'GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO "{role}"')
    with django_db_blocker.unblock():
        database.close()
        database.close_pool()
    # One connection per thread, never pooled: a pooled connection would carry the test
    # thread's bypass to a server thread.
    database.settings_dict["OPTIONS"].pop("pool", None)
    database.settings_dict["USER"] = role
    connection_created.connect(_test_code_bypasses, dispatch_uid="tests.rls.bypass")
    client_call = ClientHandler.__call__

    def as_in_production(handler: ClientHandler, environ: Any) -> Any:
        _product_code_starts()
        try:
            return client_call(handler, environ)
        finally:
            _product_code_ends()

    ClientHandler.__call__ = as_in_production
    task_prerun.connect(_product_code_starts, dispatch_uid="tests.rls.task_prerun")
    task_postrun.connect(_product_code_ends, dispatch_uid="tests.rls.task_postrun")
    yield
    ClientHandler.__call__ = client_call
    with django_db_blocker.unblock():
        database.close()
    database.settings_dict["USER"] = owner


@pytest.fixture
def rls_enforced(db: None) -> Iterator[None]:
    """The test thread's connection without the bypass: what production code sees."""
    _product_code_starts()
    yield
    _product_code_ends()
