import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import stripe_events

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's event deliveries. A bad signature is a 400 (Stripe retries, an attacker learns
    nothing); a stored event is acknowledged even if it was seen before."""
    try:
        event = stripe_events.verify(request.body, request.headers.get("Stripe-Signature", ""))
    except stripe_events.Rejected as exc:
        logger.warning("Stripe webhook refused: %s", exc)
        return HttpResponse(status=400)
    stored = stripe_events.store(event)
    result = stripe_events.process(stored)
    return HttpResponse(result, status=200, content_type="text/plain")
