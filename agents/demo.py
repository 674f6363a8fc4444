"""The demo tenant's agent: a prompt, a knowledge base, tools, a published version answering a
sandbox number. Built through the same services as the API."""

from agents.services import agents, knowledge, numbers, prompts, tools
from tenants.access import Actor
from tenants.models import Tenant

FRONT_DESK = (
    "You are the front desk of {{ company }}, a dental clinic. Greet callers warmly, answer "
    "questions about opening hours, location, parking and prices using the clinic's knowledge "
    "base, and book nothing yourself: for appointments, transfer the caller to the front desk "
    "team. Keep every answer to one or two sentences. If the caller is done, end the call."
)
FAQ = """Opening hours: Monday to Friday, 8am to 6pm; Saturday 9am to 1pm; closed on Sundays.

Address: 12 Harbour Street. Free parking behind the building; the 14 and 22 buses stop outside.

Prices: a check-up costs $85 and a cleaning $120. We accept cards and most insurance plans.

Emergencies: call during opening hours and we will see you the same day."""


def populate(*, tenant: Tenant, actor: Actor) -> list[str]:
    _, revision = prompts.prompt_template_create(
        tenant=tenant,
        actor=actor,
        name="Front desk",
        body=FRONT_DESK,
        variables=[{"name": "company", "type": "string", "default": "Demo Dental"}],
    )
    faq = knowledge.knowledge_base_create(tenant=tenant, actor=actor, name="Clinic FAQ")
    knowledge.document_add(
        knowledge_base=faq,
        actor=actor,
        title="Clinic FAQ",
        filename="faq.md",
        content_type="text/markdown",
        raw=FAQ.encode(),
    )
    toolbox = [
        tools.tool_create(
            tenant=tenant,
            actor=actor,
            name="search_faq",
            kind="search_knowledge",
            description="Look up opening hours, address, parking, prices.",
        ),
        tools.tool_create(
            tenant=tenant,
            actor=actor,
            name="transfer_to_front_desk",
            kind="transfer_call",
            description="Hand the caller to a person, e.g. to book an appointment.",
        ),
        tools.tool_create(
            tenant=tenant,
            actor=actor,
            name="end_call",
            kind="end_call",
            description="End the call once the caller has what they needed.",
        ),
    ]
    agent = agents.agent_create(
        tenant=tenant, actor=actor, name="Reception", description="Answers the clinic's main line."
    )
    version = agents.version_create(
        agent=agent,
        actor=actor,
        prompt_revision=revision,
        tools=toolbox,
        knowledge_bases=[faq],
        greeting="Thanks for calling Demo Dental, how can I help?",
        transfer_targets=[
            {
                "name": "front desk",
                "destination": "+15555550100",
                "description": "The reception team",
            }
        ],
    )
    agents.version_publish(version=version, actor=actor)
    sandbox = numbers.carrier_account_create(
        tenant=tenant, actor=actor, kind="sandbox", name="Sandbox"
    )
    available = numbers.phone_number_search(account=sandbox, actor=actor, limit=1)
    number = numbers.phone_number_purchase(
        tenant=tenant, actor=actor, account=sandbox, e164=available[0].e164, agent=agent
    )
    return [
        f"agent       {agent.name} ({agent.public_id}), version 1 published",
        f"number      {number.e164} (sandbox) rings {agent.name}",
    ]
