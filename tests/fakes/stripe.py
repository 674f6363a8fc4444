"""A fake of Stripe's REST API (v1) for billing: customers, billing meters, meter events and their
summaries, invoices, invoice items and credit notes, plus signed webhook events.

It speaks Stripe's wire format: `Authorization: Bearer sk_…`, form-encoded bodies with bracket
nesting (`payload[value]=3`, `lines[0][unit_amount]=70`), JSON responses whose `object` fields name
the resource, Stripe's error documents, and v1 idempotency keys (PROTOCOLS.md section 4). Point the
SDK at it with::

    client = stripe.StripeClient(
        fake.api_key,
        base_addresses={"api": fake.url, "meter_events": fake.url},
        max_network_retries=0,
    )

Like Stripe, it rejects parameters an endpoint does not take (the allowed names are read from the
SDK's own `stripe.params` TypedDicts), so a typo or a request option passed as a parameter fails
here as it would in production. Simplifications: meter events are validated synchronously (Stripe
accepts them and reports errors later), their timestamps are not checked against Stripe's 35-day
window, summaries ignore `value_grouping_window`, and nothing is ever paginated beyond one page
except meter lists.
"""

import copy
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import stripe
from stripe.params import (
    CreditNoteCreateParams,
    CreditNoteRetrieveParams,
    CustomerCreateParams,
    CustomerDeleteParams,
    CustomerRetrieveParams,
    InvoiceCreateParams,
    InvoiceFinalizeInvoiceParams,
    InvoiceItemCreateParams,
    InvoicePayParams,
    InvoiceRetrieveParams,
    InvoiceVoidInvoiceParams,
)
from stripe.params.billing import (
    MeterCreateParams,
    MeterEventCreateParams,
    MeterEventSummaryListParams,
    MeterListParams,
    MeterRetrieveParams,
)

from tests.fakes.server import FakeServer, Recorded, Reply

API_KEY = "sk_test_fake_stripe_0123456789abcdef"

Params = dict[str, Any]
Result = tuple[int, Any]
Endpoint = Callable[[Params, re.Match[str]], Result]

_KEY = re.compile(r"(?P<name>[^\[\]]+)(?P<rest>(?:\[[^\[\]]*\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_INTEGER = re.compile(r"-?\d+")
_REQUEST_OPTIONS = stripe.RequestOptions.__optional_keys__ | stripe.RequestOptions.__required_keys__
_ERROR_TYPES = {401: "authentication_error", 402: "card_error", 429: "rate_limit_error"}


def nest_form(pairs: Iterable[tuple[str, str]]) -> Params:
    """Turn Stripe's bracket-nested form fields into nested dicts and lists, as Stripe reads them:
    `a[0][b]=1&m[k]=v&x=2` -> `{"a": [{"b": "1"}], "m": {"k": "v"}, "x": "2"}`. A numeric (or empty)
    segment makes a list, any other a dict; values stay strings."""
    root: Params = {}
    for key, value in pairs:
        match = _KEY.fullmatch(key)
        path = [match["name"], *_SEGMENT.findall(match["rest"])] if match else [key]
        node: Any = root
        for depth, segment in enumerate(path):
            slot: Any = segment
            if isinstance(node, list):
                if segment == "":
                    slot = len(node)
                elif segment.isdigit():
                    slot = int(segment)
                else:
                    raise ValueError(f"Invalid array index {segment!r} in {key!r}")
                node.extend([None] * (slot + 1 - len(node)))
            if depth == len(path) - 1:
                node[slot] = value
                break
            child = node[slot] if isinstance(node, list) else node.get(slot)
            if not isinstance(child, dict | list):
                following = path[depth + 1]
                child = [] if following == "" or following.isdigit() else {}
                node[slot] = child
            node = child
    return root


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class StripeFailure(Exception):
    """A Stripe error response. `saved` says whether Stripe would store it under the request's
    idempotency key: validation failures are not saved, failures of an executing request are."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str = "invalid_request_error",
        saved: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {
                "type": type,
                "message": message,
                "code": code,
                "param": param,
                "doc_url": f"https://stripe.com/docs/error-codes/{code}" if code else None,
            }
        }
        self.saved = saved


def _invalid(message: str, param: str | None = None, code: str | None = None) -> StripeFailure:
    return StripeFailure(400, message, code=code, param=param, saved=False)


def _missing(param: str) -> StripeFailure:
    return _invalid(f"Missing required param: {param}.", param, "parameter_missing")


def _no_such(kind: str, ident: str, param: str | None = None) -> StripeFailure:
    # A missing resource named in the path is a 404; one named by a parameter is a 400.
    return StripeFailure(
        404 if param is None else 400,
        f"No such {kind}: '{ident}'",
        code="resource_missing",
        param=param or "id",
    )


def _check_params(params: Params, typed: Any) -> None:
    allowed = (typed.__required_keys__ | typed.__optional_keys__) - _REQUEST_OPTIONS
    for name in params:
        if name not in allowed:
            raise _invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
    for name in typed.__required_keys__ - _REQUEST_OPTIONS:
        if name not in params:
            raise _missing(name)


def _text(params: Params, name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str):
        raise _invalid(f"Invalid string: {name}", name, "parameter_invalid_string")
    return value


def _integer(params: Params, name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str) or not _INTEGER.fullmatch(value):
        raise _invalid(f"Invalid integer: {value}", name, "parameter_invalid_integer")
    return int(value)


def _boolean(params: Params, name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise _invalid(f"Invalid boolean: {value}", name, "parameter_invalid_boolean")
    return bool(value == "true")


def _metadata(params: Params, name: str = "metadata") -> dict[str, str]:
    value = params.get(name, {})
    if value == "":
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _invalid("Invalid hash", name, "parameter_invalid_hash")
    return {k: v for k, v in value.items() if v != ""}  # an empty value unsets a key


def _list_object(url: str, data: list[Any], has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


@dataclass
class _Saved:
    fingerprint: tuple[str, str, Params]
    status: int
    body: Any
    request_id: str


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    times: int


@dataclass
class FakeStripe:
    api_key: str = API_KEY
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id
    meters: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id
    meter_events: list[dict[str, Any]] = field(default_factory=list)  # those counted, in order
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)  # invoice JSON, by id
    invoice_items: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id
    credit_notes: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id
    keys: list[str] = field(default_factory=list)  # Idempotency-Key headers, in arrival order
    replays: int = 0  # responses replayed from the idempotency store
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._saved: dict[str, _Saved] = {}
        self._failures: list[_Failure] = []
        self._by_identifier: dict[str, dict[str, Any]] = {}

    # Lifecycle and test helpers.

    def start(self) -> "FakeStripe":
        routes: list[tuple[str, str, Endpoint]] = [
            ("POST", r"/v1/customers", self._create_customer),
            ("GET", r"/v1/customers/(?P<id>[^/]+)", self._retrieve_customer),
            ("DELETE", r"/v1/customers/(?P<id>[^/]+)", self._delete_customer),
            ("GET", r"/v1/billing/meters", self._list_meters),
            ("POST", r"/v1/billing/meters", self._create_meter),
            ("GET", r"/v1/billing/meters/(?P<id>[^/]+)", self._retrieve_meter),
            ("GET", r"/v1/billing/meters/(?P<id>[^/]+)/event_summaries", self._summaries),
            ("POST", r"/v1/billing/meter_events", self._create_meter_event),
            ("POST", r"/v1/invoices", self._create_invoice),
            ("GET", r"/v1/invoices/(?P<id>[^/]+)", self._retrieve_invoice),
            ("POST", r"/v1/invoices/(?P<id>[^/]+)/finalize", self._finalize_invoice),
            ("POST", r"/v1/invoices/(?P<id>[^/]+)/void", self._void_invoice),
            ("POST", r"/v1/invoices/(?P<id>[^/]+)/pay", self._pay_invoice),
            ("POST", r"/v1/invoiceitems", self._create_invoice_item),
            ("POST", r"/v1/credit_notes", self._create_credit_note),
            ("GET", r"/v1/credit_notes/(?P<id>[^/]+)", self._retrieve_credit_note),
        ]
        for method, pattern, endpoint in routes:
            self.server.route(method, pattern, self._serving(endpoint))
        for method in ("GET", "POST", "DELETE", "PUT", "PATCH"):
            self.server.route(method, r"/.*", self._serving(self._unrecognised))
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def reset(self) -> None:
        """Forget every resource, key, injected failure and recorded request, so one running
        fake can serve many tests (stopping a server takes half a second)."""
        with self._lock:
            for store in (
                self.customers,
                self.meters,
                self.invoices,
                self.invoice_items,
                self.credit_notes,
                self._saved,
                self._by_identifier,
            ):
                store.clear()
            self.meter_events.clear()
            self.keys.clear()
            self._failures.clear()
            self.server.requests.clear()
            self.replays = 0

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[Recorded]:
        return self.server.requests

    def fail_next(self, method: str, path_regex: str, status: int = 500, times: int = 1) -> None:
        """Make the next `times` requests whose method matches and whose path matches
        `path_regex` in full fail with a Stripe error of `status` (an `api_error` for 5xx),
        without applying anything."""
        with self._lock:
            self._failures.append(_Failure(method.upper(), re.compile(path_regex), status, times))

    def add_meter(
        self,
        event_name: str,
        *,
        display_name: str | None = None,
        formula: str = "sum",
        customer_key: str = "stripe_customer_id",
        value_key: str = "value",
    ) -> str:
        """Create an active meter up front, as if made in the Dashboard; returns its id."""
        with self._lock:
            meter = self._new_meter(
                display_name or event_name, event_name, formula, customer_key, value_key
            )
            return str(meter["id"])

    def invoice_object(self, invoice_id: str) -> dict[str, Any]:
        """The invoice's current JSON, e.g. as the data object of an `invoice.paid` event."""
        with self._lock:
            return copy.deepcopy(self.invoices[invoice_id])

    def items_of(self, invoice_id: str) -> list[dict[str, Any]]:
        """The invoice items attached to an invoice, in the order they were added."""
        with self._lock:
            return [
                copy.deepcopy(item)
                for item in self.invoice_items.values()
                if item["invoice"] == invoice_id
            ]

    def pay(self, invoice_id: str) -> dict[str, Any]:
        """Mark an open invoice paid, as the customer paying it would; returns its JSON."""
        with self._lock:
            invoice = self.invoices[invoice_id]
            if invoice["status"] != "open":
                raise ValueError(f"invoice {invoice_id} is {invoice['status']}, not open")
            self._mark_paid(invoice)
            return copy.deepcopy(invoice)

    def signed_event(
        self,
        event_type: str,
        data_object: dict[str, Any],
        secret: str,
        *,
        event_id: str | None = None,
        created: int | None = None,
        timestamp: int | None = None,
    ) -> tuple[bytes, str]:
        """The raw body of a Stripe Event and its `Stripe-Signature` header, signed with `secret`
        at `timestamp` (default now)."""
        event: dict[str, Any] = {
            "id": event_id or new_id("evt"),
            "object": "event",
            "api_version": stripe.api_version,
            "created": created if created is not None else int(time.time()),
            "data": {"object": data_object},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        body = json.dumps(event).encode()
        header = stripe.WebhookSignature.generate_signature_header(
            body.decode(), secret, timestamp=timestamp
        )
        return body, header

    # Request handling: authentication, injected failures, idempotency.

    def _serving(self, endpoint: Endpoint) -> Callable[[Recorded, re.Match[str]], Reply]:
        def serve(request: Recorded, match: re.Match[str]) -> Reply:
            with self._lock:
                status, body, headers = self._serve(request, match, endpoint)
                # Serialised after the lock is released, so hand out a copy of live state.
                return Reply(status, copy.deepcopy(body), headers)

        return serve

    def _serve(
        self, request: Recorded, match: re.Match[str], endpoint: Endpoint
    ) -> tuple[int, Any, dict[str, str]]:
        headers = {"Request-Id": new_id("req")}
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            failure = StripeFailure(
                401,
                "Invalid API Key provided: "
                + request.headers.get("authorization", "").removeprefix("Bearer ")[:12]
                + "****",
                type="authentication_error",
            )
            return failure.status, failure.body, headers
        key = request.headers.get("idempotency-key")
        if key is not None:
            self.keys.append(key)
        injected = self._take_failure(request)
        if injected is not None:
            # Not saved under the idempotency key (Stripe saves 500s of requests that started
            # executing): the injected failure stands for an outage before execution, and not
            # saving it lets a test retry with the same key and see the request succeed.
            return injected.status, injected.body, headers
        try:
            if request.method == "POST":
                pairs = parse_qsl(request.body.decode(), keep_blank_values=True)
            else:
                pairs = [(name, v) for name, values in request.query.items() for v in values]
            params = nest_form(pairs)
        except ValueError as exc:
            failure = _invalid(str(exc))
            return failure.status, failure.body, headers
        params.pop("expand", None)  # expansion is not faked; ids stay ids

        # Idempotency only means something for POST (PROTOCOLS.md 4.6).
        fingerprint = (request.method, request.path, params)
        if request.method == "POST" and key is not None and key in self._saved:
            saved = self._saved[key]
            if saved.fingerprint != fingerprint:
                failure = StripeFailure(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with. Try using a key other than "
                    f"'{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
                return failure.status, failure.body, headers
            self.replays += 1
            headers["Idempotent-Replayed"] = "true"
            headers["Original-Request"] = saved.request_id
            return saved.status, copy.deepcopy(saved.body), headers
        try:
            status, body = endpoint(params, match)
            save = True
        except StripeFailure as failure:
            status, body, save = failure.status, failure.body, failure.saved
        if request.method == "POST" and key is not None and save:
            self._saved[key] = _Saved(
                copy.deepcopy(fingerprint), status, copy.deepcopy(body), headers["Request-Id"]
            )
        return status, body, headers

    def _take_failure(self, request: Recorded) -> StripeFailure | None:
        for failure in self._failures:
            if failure.method == request.method and failure.path.fullmatch(request.path):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                kind = "api_error" if failure.status >= 500 else "invalid_request_error"
                return StripeFailure(
                    failure.status,
                    f"Injected failure: HTTP {failure.status} for {request.method} {request.path}",
                    type=_ERROR_TYPES.get(failure.status, kind),
                )
        return None

    def _unrecognised(self, params: Params, match: re.Match[str]) -> Result:
        raise StripeFailure(404, f"Unrecognized request URL: {match.group(0)}", saved=False)

    # Customers.

    def _create_customer(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, CustomerCreateParams)
        customer: dict[str, Any] = {
            "id": new_id("cus"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": int(time.time()),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": _text(params, "description"),
            "email": _text(params, "email"),
            "invoice_prefix": secrets.token_hex(4).upper(),
            "livemode": False,
            "metadata": _metadata(params),
            "name": _text(params, "name"),
            "phone": _text(params, "phone"),
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
        }
        self.customers[customer["id"]] = customer
        return 200, customer

    def _customer(self, ident: str, param: str | None = None) -> dict[str, Any]:
        customer = self.customers.get(ident)
        if customer is None:
            raise _no_such("customer", ident, param)
        return customer

    def _retrieve_customer(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, CustomerRetrieveParams)
        customer = self._customer(match["id"])
        if customer.get("deleted"):
            return 200, {"id": customer["id"], "object": "customer", "deleted": True}
        return 200, customer

    def _delete_customer(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, CustomerDeleteParams)
        customer = self._customer(match["id"])
        if customer.get("deleted"):
            raise _no_such("customer", match["id"])
        customer["deleted"] = True
        return 200, {"id": customer["id"], "object": "customer", "deleted": True}

    def _live_customer(self, params: Params) -> dict[str, Any]:
        ident = _text(params, "customer", required=True)
        assert ident is not None
        customer = self._customer(ident, "customer")
        if customer.get("deleted"):
            raise _no_such("customer", ident, "customer")
        return customer

    # Billing meters, meter events and summaries.

    def _new_meter(
        self, display_name: str, event_name: str, formula: str, customer_key: str, value_key: str
    ) -> dict[str, Any]:
        if any(
            m["event_name"] == event_name and m["status"] == "active" for m in self.meters.values()
        ):
            raise StripeFailure(
                400,
                f"An active meter with event_name '{event_name}' already exists.",
                code="resource_already_exists",
                param="event_name",
            )
        now = int(time.time())
        meter: dict[str, Any] = {
            "id": new_id("mtr"),
            "object": "billing.meter",
            "created": now,
            "customer_mapping": {"event_payload_key": customer_key, "type": "by_id"},
            "default_aggregation": {"formula": formula},
            "display_name": display_name,
            "event_name": event_name,
            "event_time_window": None,
            "livemode": False,
            "status": "active",
            "status_transitions": {"deactivated_at": None},
            "updated": now,
            "value_settings": {"event_payload_key": value_key},
        }
        self.meters[meter["id"]] = meter
        return meter

    def _create_meter(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, MeterCreateParams)
        display_name = _text(params, "display_name", required=True)
        event_name = _text(params, "event_name", required=True)
        assert display_name is not None and event_name is not None
        aggregation = params["default_aggregation"]
        formula = aggregation.get("formula") if isinstance(aggregation, dict) else None
        if formula not in ("sum", "count", "last"):
            raise _invalid(
                f"Invalid default_aggregation[formula]: {formula}",
                "default_aggregation[formula]",
                "parameter_invalid_string",
            )
        mapping = params.get("customer_mapping") or {}
        settings = params.get("value_settings") or {}
        meter = self._new_meter(
            display_name,
            event_name,
            formula,
            mapping.get("event_payload_key", "stripe_customer_id"),
            settings.get("event_payload_key", "value"),
        )
        if params.get("event_time_window"):
            meter["event_time_window"] = params["event_time_window"]
        return 200, meter

    def _list_meters(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, MeterListParams)
        limit = _integer(params, "limit") or 10
        if not 1 <= limit <= 100:
            raise _invalid("limit must be between 1 and 100", "limit", "parameter_invalid_integer")
        meters = [m for m in self.meters.values() if params.get("status") in (None, m["status"])]
        after = params.get("starting_after")
        if after is not None:
            ids = [m["id"] for m in meters]
            if after not in ids:
                raise _no_such("billing meter", after, "starting_after")
            meters = meters[ids.index(after) + 1 :]
        return 200, _list_object("/v1/billing/meters", meters[:limit], len(meters) > limit)

    def _meter(self, ident: str) -> dict[str, Any]:
        meter = self.meters.get(ident)
        if meter is None:
            raise _no_such("billing meter", ident)
        return meter

    def _retrieve_meter(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, MeterRetrieveParams)
        return 200, self._meter(match["id"])

    def _create_meter_event(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, MeterEventCreateParams)
        event_name = _text(params, "event_name", required=True)
        payload = params["payload"]
        if not isinstance(payload, dict):
            raise _invalid("Invalid hash", "payload", "parameter_invalid_hash")
        meter = next(
            (
                m
                for m in self.meters.values()
                if m["event_name"] == event_name and m["status"] == "active"
            ),
            None,
        )
        if meter is None:
            raise _invalid(
                f"No active meter was found with event_name '{event_name}'.",
                "event_name",
                "resource_missing",
            )
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        if not payload.get(customer_key):
            raise _invalid(f"Missing required param: payload[{customer_key}].", "payload")
        value = payload.get(value_key)
        if not isinstance(value, str) or not _INTEGER.fullmatch(value):
            raise _invalid(
                f"Invalid payload[{value_key}]: must be an integer string, got {value!r}.",
                f"payload[{value_key}]",
            )
        identifier = _text(params, "identifier") or new_id("ident")
        if identifier in self._by_identifier:
            return 200, self._by_identifier[identifier]  # counted once, whatever the retry
        timestamp = _integer(params, "timestamp")
        event: dict[str, Any] = {
            "object": "billing.meter_event",
            "created": int(time.time()),
            "event_name": event_name,
            "identifier": identifier,
            "livemode": False,
            "payload": payload,
            "timestamp": timestamp if timestamp is not None else int(time.time()),
        }
        self._by_identifier[identifier] = event
        self.meter_events.append(event)
        return 200, event

    def _summaries(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, MeterEventSummaryListParams)
        meter = self._meter(match["id"])
        customer = _text(params, "customer", required=True)
        start = _integer(params, "start_time", required=True)
        end = _integer(params, "end_time", required=True)
        assert start is not None and end is not None
        if params.get("value_grouping_window"):
            raise _invalid(
                "The Stripe fake does not support value_grouping_window.", "value_grouping_window"
            )
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        events = sorted(
            (
                e
                for e in self.meter_events
                if e["event_name"] == meter["event_name"]
                and e["payload"].get(customer_key) == customer
                and start <= e["timestamp"] < end
            ),
            key=lambda e: e["timestamp"],
        )
        values = [int(e["payload"][value_key]) for e in events]
        formula = meter["default_aggregation"]["formula"]
        if formula == "count":
            aggregated = float(len(values))
        elif formula == "last":
            aggregated = float(values[-1]) if values else 0.0
        else:
            aggregated = float(sum(values))
        summary: dict[str, Any] = {
            "object": "billing.meter_event_summary",
            "id": new_id("mtrusg"),
            "aggregated_value": aggregated,
            "end_time": end,
            "livemode": False,
            "meter": meter["id"],
            "start_time": start,
        }
        return 200, _list_object(f"/v1/billing/meters/{meter['id']}/event_summaries", [summary])

    # Invoices and invoice items.

    def _invoice(self, ident: str, param: str | None = None) -> dict[str, Any]:
        invoice = self.invoices.get(ident)
        if invoice is None:
            raise _no_such("invoice", ident, param)
        return invoice

    @staticmethod
    def _recompute(invoice: dict[str, Any]) -> None:
        total = sum(line["amount"] for line in invoice["lines"]["data"])
        invoice["subtotal"] = invoice["subtotal_excluding_tax"] = total
        invoice["total"] = invoice["total_excluding_tax"] = total
        invoice["amount_due"] = max(total - invoice["pre_payment_credit_notes_amount"], 0)
        if invoice["status"] in ("draft", "open"):
            invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]

    @staticmethod
    def _mark_paid(invoice: dict[str, Any]) -> None:
        invoice["status"] = "paid"
        invoice["amount_paid"] = invoice["amount_due"]
        invoice["amount_remaining"] = 0
        invoice["status_transitions"]["paid_at"] = int(time.time())

    def _create_invoice(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, InvoiceCreateParams)
        customer = self._live_customer(params)
        collection = _text(params, "collection_method") or "charge_automatically"
        if collection not in ("charge_automatically", "send_invoice"):
            raise _invalid(
                f"Invalid collection_method: {collection}",
                "collection_method",
                "parameter_invalid_string",
            )
        days_until_due = _integer(params, "days_until_due")
        due_date = _integer(params, "due_date")
        if collection == "send_invoice" and days_until_due is None and due_date is None:
            raise _invalid(
                "Invoices with collection_method=send_invoice need days_until_due or due_date.",
                "days_until_due",
            )
        now = int(time.time())
        ident = new_id("in")
        invoice: dict[str, Any] = {
            "id": ident,
            "object": "invoice",
            "account_country": "US",
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "auto_advance": _boolean(params, "auto_advance", False),
            "collection_method": collection,
            "created": now,
            "currency": (_text(params, "currency") or "usd").lower(),
            "customer": customer["id"],
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "days_until_due": days_until_due,
            "description": _text(params, "description"),
            "due_date": due_date,
            "hosted_invoice_url": None,
            "lines": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/invoices/{ident}/lines",
            },
            "livemode": False,
            "metadata": _metadata(params),
            "number": None,
            "period_end": now,
            "period_start": now,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subtotal": 0,
            "subtotal_excluding_tax": 0,
            "total": 0,
            "total_excluding_tax": 0,
        }
        self.invoices[ident] = invoice
        if params.get("pending_invoice_items_behavior") == "include":
            for item in self.invoice_items.values():
                if item["customer"] == customer["id"] and item["invoice"] is None:
                    self._attach(item, invoice)
        return 200, invoice

    def _retrieve_invoice(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, InvoiceRetrieveParams)
        return 200, self._invoice(match["id"])

    def _attach(self, item: dict[str, Any], invoice: dict[str, Any]) -> None:
        item["invoice"] = invoice["id"]
        invoice["lines"]["data"].append(
            {
                "id": new_id("il"),
                "object": "line_item",
                "amount": item["amount"],
                "currency": item["currency"],
                "description": item["description"],
                "invoice": invoice["id"],
                "livemode": False,
                "metadata": item["metadata"],
                "parent": {
                    "type": "invoice_item_details",
                    "invoice_item_details": {
                        "invoice_item": item["id"],
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": None,
                    },
                    "subscription_item_details": None,
                },
                "period": item["period"],
                "quantity": item["quantity"],
            }
        )
        invoice["lines"]["total_count"] = len(invoice["lines"]["data"])
        self._recompute(invoice)

    def _create_invoice_item(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, InvoiceItemCreateParams)
        customer = self._live_customer(params)
        invoice = None
        invoice_id = _text(params, "invoice")
        if invoice_id is not None:
            invoice = self._invoice(invoice_id, "invoice")
            if invoice["customer"] != customer["id"]:
                raise StripeFailure(
                    400,
                    f"Invoice {invoice_id} belongs to a different customer.",
                    param="invoice",
                )
            if invoice["status"] != "draft":
                raise StripeFailure(
                    400,
                    f"You can only add invoice items to draft invoices; {invoice_id} is "
                    f"{invoice['status']}.",
                    code="invoice_not_editable",
                    param="invoice",
                )
        quantity = _integer(params, "quantity") or 1
        amount = _integer(params, "amount")
        if amount is None:
            decimal = _text(params, "unit_amount_decimal")
            if decimal is None:
                raise _missing("amount")
            try:
                amount = int((Decimal(decimal) * quantity).to_integral_value())
            except InvalidOperation:
                raise _invalid(f"Invalid decimal: {decimal}", "unit_amount_decimal") from None
        currency = _text(params, "currency") or (invoice["currency"] if invoice else None)
        if currency is None:
            raise _missing("currency")
        if invoice is not None and currency.lower() != invoice["currency"]:
            raise _invalid(
                f"The currency {currency} does not match the invoice's {invoice['currency']}.",
                "currency",
            )
        now = int(time.time())
        period = params.get("period") or {}
        if not isinstance(period, dict):
            raise _invalid("Invalid hash", "period", "parameter_invalid_hash")
        item: dict[str, Any] = {
            "id": new_id("ii"),
            "object": "invoiceitem",
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer["id"],
            "date": now,
            "description": _text(params, "description"),
            "discountable": _boolean(params, "discountable", True),
            "invoice": None,
            "livemode": False,
            "metadata": _metadata(params),
            "period": {
                "start": _integer(period, "start") or now,
                "end": _integer(period, "end") or now,
            },
            "proration": False,
            "quantity": quantity,
        }
        self.invoice_items[item["id"]] = item
        if invoice is not None:
            self._attach(item, invoice)
        return 200, item

    def _finalize_invoice(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, InvoiceFinalizeInvoiceParams)
        invoice = self._invoice(match["id"])
        if invoice["status"] != "draft":
            raise StripeFailure(
                400,
                f"This invoice is already finalized ({invoice['status']}); only a draft "
                "invoice can be finalized.",
                code="invoice_not_editable",
            )
        now = int(time.time())
        invoice["status"] = "open"
        invoice["status_transitions"]["finalized_at"] = now
        invoice["number"] = f"FAKE-{len(self._finalized()):04d}"
        if "auto_advance" in params:
            invoice["auto_advance"] = _boolean(params, "auto_advance", False)
        if invoice["days_until_due"] is not None:
            invoice["due_date"] = now + invoice["days_until_due"] * 86400
        self._recompute(invoice)
        if invoice["amount_due"] == 0:
            self._mark_paid(invoice)  # as Stripe does with an invoice for nothing
        return 200, invoice

    def _finalized(self) -> list[dict[str, Any]]:
        return [i for i in self.invoices.values() if i["status"] != "draft"]

    def _void_invoice(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, InvoiceVoidInvoiceParams)
        invoice = self._invoice(match["id"])
        if invoice["status"] not in ("open", "uncollectible"):
            raise StripeFailure(
                400,
                f"You can only void an open invoice; {invoice['id']} is {invoice['status']}.",
                code="invoice_not_editable",
            )
        invoice["status"] = "void"
        invoice["amount_remaining"] = 0
        invoice["status_transitions"]["voided_at"] = int(time.time())
        return 200, invoice

    def _pay_invoice(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, InvoicePayParams)
        invoice = self._invoice(match["id"])
        if invoice["status"] != "open":
            raise StripeFailure(
                400,
                f"Invoice {invoice['id']} is {invoice['status']}; only an open invoice can be "
                "paid.",
                code="invoice_not_editable",
            )
        self._mark_paid(invoice)
        return 200, invoice

    # Credit notes.

    def _create_credit_note(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, CreditNoteCreateParams)
        invoice_id = _text(params, "invoice", required=True)
        assert invoice_id is not None
        invoice = self._invoice(invoice_id, "invoice")
        if invoice["status"] not in ("open", "paid"):
            raise StripeFailure(
                400,
                f"Credit notes can only be issued for open or paid invoices; {invoice_id} is "
                f"{invoice['status']}.",
                code="invoice_not_editable",
                param="invoice",
            )
        ident = new_id("cn")
        lines = self._credit_note_lines(params, invoice)
        total = sum(line["amount"] for line in lines)
        if total <= 0:
            raise _invalid("The credit note total must be positive.", "lines")
        if invoice["status"] == "open":
            # Stripe would credit an excess beyond amount_remaining post-payment; the fake only
            # credits what is still owed.
            if total > invoice["amount_remaining"]:
                raise _invalid(
                    f"The credit note total {total} exceeds the invoice's amount_remaining "
                    f"{invoice['amount_remaining']}.",
                    "lines",
                )
            kind = "pre_payment"
        else:
            creditable = invoice["amount_paid"] - invoice["post_payment_credit_notes_amount"]
            if total > creditable:
                raise _invalid(
                    f"The credit note total {total} exceeds the {creditable} left to credit.",
                    "lines",
                )
            split = sum(
                _integer(params, name) or 0
                for name in ("refund_amount", "credit_amount", "out_of_band_amount")
            )
            if split != total:
                raise _invalid(
                    "For a paid invoice, refund_amount + credit_amount + out_of_band_amount "
                    f"must equal the credit note total ({total}), not {split}.",
                    "out_of_band_amount",
                )
            kind = "post_payment"
        note: dict[str, Any] = {
            "id": ident,
            "object": "credit_note",
            "amount": total,
            "amount_shipping": 0,
            "created": int(time.time()),
            "credit_amount": _integer(params, "credit_amount") or 0,
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "invoice": invoice_id,
            "lines": {
                "object": "list",
                "data": [{**line, "id": new_id("cnli")} for line in lines],
                "has_more": False,
                "url": f"/v1/credit_notes/{ident}/lines",
            },
            "livemode": False,
            "memo": _text(params, "memo"),
            "metadata": _metadata(params),
            "number": f"{invoice['number']}-CN-{len(self._notes_of(invoice_id)) + 1:02d}",
            "out_of_band_amount": _integer(params, "out_of_band_amount"),
            "post_payment_amount": total if kind == "post_payment" else 0,
            "pre_payment_amount": total if kind == "pre_payment" else 0,
            "reason": _text(params, "reason"),
            "refunds": [],
            "status": "issued",
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "total": total,
            "total_excluding_tax": total,
            "type": kind,
            "voided_at": None,
        }
        self.credit_notes[ident] = note
        invoice[f"{kind}_credit_notes_amount"] += total
        if kind == "pre_payment":
            self._recompute(invoice)
            if invoice["amount_remaining"] == 0:
                self._mark_paid(invoice)  # fully credited: nothing left to collect
        return 200, note

    def _notes_of(self, invoice_id: str) -> list[dict[str, Any]]:
        return [n for n in self.credit_notes.values() if n["invoice"] == invoice_id]

    @staticmethod
    def _credit_note_lines(params: Params, invoice: dict[str, Any]) -> list[dict[str, Any]]:
        raw = params.get("lines")
        if raw is None:
            amount = _integer(params, "amount")
            if amount is None:
                raise _missing("lines")
            raw = [{"type": "custom_line_item", "unit_amount": str(amount), "quantity": "1"}]
        if not isinstance(raw, list):
            raise _invalid("Invalid array", "lines", "parameter_invalid_array")
        invoice_lines = {line["id"]: line for line in invoice["lines"]["data"]}
        lines = []
        for index, line in enumerate(raw):
            where = f"lines[{index}]"
            if not isinstance(line, dict):
                raise _invalid("Invalid hash", where, "parameter_invalid_hash")
            kind = line.get("type")
            quantity = _integer(line, "quantity") or 1
            if kind == "custom_line_item":
                unit_amount = _integer(line, "unit_amount")
                if unit_amount is None:
                    raise _missing(f"{where}[unit_amount]")
                description = _text(line, "description")
                amount = unit_amount * quantity
                invoice_line = None
            elif kind == "invoice_line_item":
                invoice_line = _text(line, "invoice_line_item")
                if invoice_line not in invoice_lines:
                    raise _no_such("invoice line item", str(invoice_line), f"{where}")
                amount = _integer(line, "amount") or invoice_lines[invoice_line]["amount"]
                description = invoice_lines[invoice_line]["description"]
                unit_amount = amount // quantity
            else:
                raise _invalid(f"Invalid {where}[type]: {kind}", f"{where}[type]")
            lines.append(
                {
                    "object": "credit_note_line_item",
                    "amount": amount,
                    "description": description,
                    "invoice_line_item": invoice_line,
                    "livemode": False,
                    "metadata": _metadata(line),
                    "quantity": quantity,
                    "type": kind,
                    "unit_amount": unit_amount,
                }
            )
        return lines

    def _retrieve_credit_note(self, params: Params, match: re.Match[str]) -> Result:
        _check_params(params, CreditNoteRetrieveParams)
        note = self.credit_notes.get(match["id"])
        if note is None:
            raise _no_such("credit note", match["id"])
        return 200, note
