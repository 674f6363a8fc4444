from agents.models.agents import (
    Agent,
    AgentVersion,
    TrafficAllocation,
    VersionKnowledgeBase,
    VersionTool,
)
from agents.models.knowledge import Chunk, Document, KnowledgeBase
from agents.models.numbers import CarrierAccount, NumberPurchase, PhoneNumber
from agents.models.prompts import PromptRevision, PromptTemplate
from agents.models.tools import Integration, Tool

__all__ = [
    "Agent",
    "AgentVersion",
    "CarrierAccount",
    "Chunk",
    "Document",
    "Integration",
    "KnowledgeBase",
    "NumberPurchase",
    "PhoneNumber",
    "PromptRevision",
    "PromptTemplate",
    "Tool",
    "TrafficAllocation",
    "VersionKnowledgeBase",
    "VersionTool",
]
