from django.urls import path
from rest_framework.routers import SimpleRouter

from agents.api import agents, knowledge, numbers, prompts, tools

router = SimpleRouter(trailing_slash=False)
router.register("prompt-templates", prompts.PromptTemplateViewSet, basename="prompt-template")
router.register("prompt-revisions", prompts.PromptRevisionViewSet, basename="prompt-revision")
router.register("integrations", tools.IntegrationViewSet, basename="integration")
router.register("tools", tools.ToolViewSet, basename="tool")
router.register("knowledge-bases", knowledge.KnowledgeBaseViewSet, basename="knowledge-base")
router.register("documents", knowledge.DocumentViewSet, basename="document")
router.register("agents", agents.AgentViewSet, basename="agent")
router.register("versions", agents.VersionViewSet, basename="version")
router.register("carrier-accounts", numbers.CarrierAccountViewSet, basename="carrier-account")
router.register("phone-numbers", numbers.PhoneNumberViewSet, basename="phone-number")

urlpatterns = [
    path("integration-kinds", tools.IntegrationKindsView.as_view(), name="integration-kinds"),
    *router.urls,
]
