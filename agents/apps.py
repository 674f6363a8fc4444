from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agents and their versions, prompts, tools, knowledge, phone numbers and routing."""

    name = "agents"
