"""The web console for tenants' members. Each area of the console is a module of its own."""

from django.urls import include, path

from console.views import (
    agents,
    billing,
    calls,
    dashboard,
    knowledge,
    numbers,
    settings,
    team,
    tools,
)

console_patterns = [
    path("agents/", include(agents.urlpatterns)),
    path("tools/", include(tools.urlpatterns)),
    path("knowledge/", include(knowledge.urlpatterns)),
    path("numbers/", include(numbers.urlpatterns)),
    path("calls/", include(calls.urlpatterns)),
    path("billing/", include(billing.urlpatterns)),
    path("team/", include(team.urlpatterns)),
    path("settings/", include(settings.urlpatterns)),
]

urlpatterns = [
    path("", dashboard.dashboard, name="home"),
    path("", include((console_patterns, "console"))),
]
