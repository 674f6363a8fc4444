"""The Numbers pages: the tenant's phone numbers, buying (after a confirmation: it may cost
money) and importing them, carrier accounts, assigning a number to an agent, releasing it, and a
test call placed by the built-in simulated caller. They call agents.services.numbers, as the
API does."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from agents.models import CarrierAccount, PhoneNumber
from agents.services import numbers as services
from calls.models import Call
from calls.selectors import with_outcome
from calls.services import outbound_call_admit
from console.context import (
    confirmation,
    console_view,
    owned,
    paginate,
    service_errors_to_form,
)
from console.forms.numbers import (
    AssignForm,
    CallScriptForm,
    CarrierAccountForm,
    ImportForm,
    PurchaseForm,
    SearchForm,
    carrier_accounts,
    credential_errors,
)
from tenants.access import TenantContext
from tenants.errors import Forbidden, InvalidInput, ServiceError, TooManyRequests, Unavailable
from workers.tasks import new_call_sid, place_test_call

RECENT_CALLS = 5


def _number(ctx: TenantContext, public_id: str) -> PhoneNumber:
    numbers = PhoneNumber.objects.for_tenant(ctx.tenant).select_related("carrier_account", "agent")
    return owned(PhoneNumber, ctx, public_id, numbers)


def _refused(form: forms.Form, error: ServiceError) -> None:
    """A service's refusal shown on the form; a missing permission stays a 403 page."""
    if isinstance(error, Forbidden):
        raise error
    service_errors_to_form(form, error)


def _cost_notice(account: CarrierAccount) -> str:
    if account.kind == CarrierAccount.Kind.TWILIO:
        return (
            "Twilio charges your Twilio account for this number every month until you "
            "release it, and for the calls it takes."
        )
    return "Sandbox numbers are free: they only ever ring the built-in call simulator."


# --- Numbers ----------------------------------------------------------------------------------


@console_view("numbers:read")
def index(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    numbers = (
        PhoneNumber.objects.for_tenant(ctx.tenant)
        .select_related("carrier_account", "agent")
        .order_by("status", "-created_at")
    )
    return render(request, "console/numbers/list.html", {"page": paginate(request, numbers)})


def _buy_page(
    request: HttpRequest,
    ctx: TenantContext,
    search: SearchForm,
    *,
    purchase: PurchaseForm | None = None,
    status: int = 200,
) -> HttpResponse:
    results: list[Any] = []
    if search.is_bound and search.is_valid():
        try:
            results = services.phone_number_search(
                account=search.cleaned_data["carrier_account"],
                actor=ctx.actor,
                area_code=search.cleaned_data["area_code"],
                contains=search.cleaned_data["contains"],
            )
        except ServiceError as error:
            _refused(search, error)
    context = {
        "search": search,
        "results": results,
        "searched": search.is_bound and not search.errors,
        "account": search.cleaned_data.get("carrier_account") if search.is_bound else None,
        "purchase": purchase,
        "has_accounts": carrier_accounts(ctx.tenant, sellers_only=True).exists(),
    }
    return render(request, "console/numbers/buy.html", context, status=status)


@console_view("numbers:write")
def buy(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    """Search a carrier's numbers (GET), pick one (POST), confirm, and buy it."""
    if request.method != "POST":
        return _buy_page(request, ctx, SearchForm(ctx.tenant, request.GET or None))
    purchase = PurchaseForm(ctx.tenant, request.POST)
    account_id = request.POST.get("carrier_account", "")
    search = SearchForm(ctx.tenant, {"carrier_account": account_id} if account_id else None)
    if not purchase.is_valid():
        return _buy_page(request, ctx, search, purchase=purchase, status=400)
    account: CarrierAccount = purchase.cleaned_data["carrier_account"]
    e164: str = purchase.cleaned_data["phone_number"]
    allowance = services.purchase_allowance(ctx.tenant)
    asked = confirmation(
        request,
        title="Buy this number",
        message=_cost_notice(account),
        danger=False,
        details=[
            ("Number", e164),
            ("Carrier", f"{account.name} ({account.get_kind_display()})"),
            (
                "Numbers bought in the last 24 hours",
                f"{allowance.used} of {allowance.limit} allowed",
            ),
        ],
    )
    if asked is not None:
        return asked
    try:
        number = services.phone_number_purchase(
            tenant=ctx.tenant, actor=ctx.actor, account=account, e164=e164
        )
    except ServiceError as error:
        _refused(purchase, error)
        status = error.status if isinstance(error, TooManyRequests) else 400
        return _buy_page(request, ctx, search, purchase=purchase, status=status)
    messages.success(request, f"You bought {number.e164}. Assign it to an agent to take calls.")
    return redirect("console:number", id=number.public_id)


@console_view("numbers:write")
def import_number(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    """Bring a number a carrier account already has; its calls are pointed here."""
    form = ImportForm(ctx.tenant, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            number = services.phone_number_import(
                tenant=ctx.tenant,
                actor=ctx.actor,
                account=form.cleaned_data["carrier_account"],
                e164=form.cleaned_data["phone_number"].strip(),
                agent=form.cleaned_data["agent"],
            )
        except ServiceError as error:
            _refused(form, error)
        else:
            messages.success(request, f"{number.e164} is imported; its calls now come here.")
            return redirect("console:number", id=number.public_id)
    status = 400 if form.errors else 200
    return render(request, "console/numbers/import.html", {"form": form}, status=status)


def _number_page(
    request: HttpRequest,
    ctx: TenantContext,
    number: PhoneNumber,
    *,
    assign: AssignForm | None = None,
    script: CallScriptForm | None = None,
    status: int = 200,
) -> HttpResponse:
    calls = with_outcome(Call.objects.for_tenant(ctx.tenant).filter(phone_number=number))
    initial = {
        "agent": number.agent.public_id if number.agent else "",
        "friendly_name": number.friendly_name,
    }
    context = {
        "number": number,
        "active": number.status == PhoneNumber.Status.ACTIVE,
        "can_test_call": number.status == PhoneNumber.Status.ACTIVE
        and number.carrier_account.kind != CarrierAccount.Kind.OPENAI_SIP,
        "assign": assign or AssignForm(ctx.tenant, initial=initial),
        "script": script or CallScriptForm(),
        "calls": list(calls.order_by("-started_at", "-id")[:RECENT_CALLS]),
    }
    return render(request, "console/numbers/detail.html", context, status=status)


@console_view("numbers:read")
def detail(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    return _number_page(request, ctx, _number(ctx, id))


@require_POST
@console_view("numbers:write")
def assign(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """Choose the agent answering the number (or none), and its name."""
    number = _number(ctx, id)
    form = AssignForm(ctx.tenant, request.POST)
    if form.is_valid():
        try:
            services.phone_number_update(
                number=number,
                actor=ctx.actor,
                agent=form.cleaned_data["agent"],
                friendly_name=form.cleaned_data["friendly_name"].strip(),
            )
        except ServiceError as error:
            _refused(form, error)
        else:
            agent = form.cleaned_data["agent"]
            messages.success(
                request,
                f"{agent.name} answers {number.e164}."
                if agent
                else f"No agent answers {number.e164} now.",
            )
            return redirect("console:number", id=number.public_id)
    return _number_page(request, ctx, number, assign=form, status=400)


@require_POST
@console_view("numbers:write")
def release(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    number = _number(ctx, id)
    asked = confirmation(
        request,
        title="Release this number",
        message=(
            "The number goes back to the carrier: calls to it stop reaching your agents, and "
            "someone else may get it. This cannot be undone."
        ),
        details=[
            ("Number", number.e164),
            ("Carrier", f"{number.carrier_account.name}"),
            ("Agent answering it", number.agent.name if number.agent else "none"),
        ],
    )
    if asked is not None:
        return asked
    try:
        services.phone_number_release(number=number, actor=ctx.actor)
    except Forbidden:
        raise
    except ServiceError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, f"{number.e164} is released.")
    return redirect("console:number", id=number.public_id)


@require_POST
@console_view("numbers:write")
def test_call(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """Ring the number with the built-in simulated caller (a Celery task: in-process, the request
    waits for the whole call; with a worker, the call happens there). It is an outbound call:
    it counts against the tenant's outbound calls a minute."""
    number = _number(ctx, id)
    form = CallScriptForm(request.POST)
    if number.status != PhoneNumber.Status.ACTIVE:
        form.add_error(None, "This number was released; it takes no calls.")
    elif number.carrier_account.kind == CarrierAccount.Kind.OPENAI_SIP:
        form.add_error(None, "OpenAI SIP numbers are called through their SIP trunk.")
    if not form.is_valid():
        return _number_page(request, ctx, number, script=form, status=400)
    try:
        outbound_call_admit(tenant=ctx.tenant)
    except (TooManyRequests, Unavailable) as error:
        form.add_error(None, error.detail)
        return _number_page(request, ctx, number, script=form, status=error.status)
    call_sid = new_call_sid()
    place_test_call.delay(ctx.tenant.pk, number.public_id, call_sid, form.cleaned_data["script"])
    call = Call.objects.for_tenant(ctx.tenant).filter(carrier_call_id=call_sid).first()
    if call is not None:
        messages.success(request, f"Test call to {number.e164} placed.")
        return redirect("console:call", id=call.public_id)
    messages.info(
        request,
        f"The test call to {number.e164} is on its way; it shows here once it reaches the server "
        f"at {settings.PUBLIC_BASE_URL}.",
    )
    return redirect(f"{reverse('console:calls')}?number={number.e164}")


# --- Carrier accounts -------------------------------------------------------------------------


@console_view("numbers:read")
def carrier_account_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    accounts = CarrierAccount.objects.for_tenant(ctx.tenant).order_by("name")
    return render(request, "console/numbers/carriers.html", {"page": paginate(request, accounts)})


@console_view("numbers:write")
def carrier_account_new(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = CarrierAccountForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        config, secrets = form.credentials()
        try:
            account = services.carrier_account_create(
                tenant=ctx.tenant,
                actor=ctx.actor,
                kind=form.cleaned_data["kind"],
                name=form.cleaned_data["name"],
                config=config,
                secrets=secrets,
            )
        except ServiceError as error:
            _refused(form, credential_errors(error) if isinstance(error, InvalidInput) else error)
        else:
            messages.success(request, f"Carrier account {account.name} added.")
            return redirect("console:carrier-accounts")
    status = 400 if form.errors else 200
    return render(request, "console/numbers/carrier_new.html", {"form": form}, status=status)


urlpatterns = [
    path("", index, name="numbers"),
    path("buy/", buy, name="number-buy"),
    path("import/", import_number, name="number-import"),
    path("carriers/", carrier_account_list, name="carrier-accounts"),
    path("carriers/new/", carrier_account_new, name="carrier-account-new"),
    path("<str:id>/", detail, name="number"),
    path("<str:id>/assign/", assign, name="number-assign"),
    path("<str:id>/release/", release, name="number-release"),
    path("<str:id>/test-call/", test_call, name="number-test-call"),
]
