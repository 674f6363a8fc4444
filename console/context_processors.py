from typing import Any

from django.http import HttpRequest

from console.context import can
from console.nav import nav_for
from tenants.access import memberships_of


def console(request: HttpRequest) -> dict[str, Any]:
    """What the console layout needs on every page: tenant, permissions, navigation, switcher."""
    ctx = getattr(request, "console", None)
    if ctx is None:
        return {}
    allowed = can(ctx)
    assert ctx.actor.user is not None
    return {
        "console": ctx,
        "can": allowed,
        "nav": nav_for(allowed.permissions, request.path),
        "memberships": memberships_of(ctx.actor.user),
    }
