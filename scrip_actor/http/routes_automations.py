"""Automations (``/v1/programs/{id}/automations``): definitions, trigger, cancel, subscriptions (docs/automations.md).

Each handler decodes, makes one call on ``engine.automations`` (definitions) or ``engine.automation_runs`` (the
runner: cancel, subscriptions) and encodes.
"""

from __future__ import annotations

from typing import Any, Literal

from scrip_actor.automations import Automation, AutomationCreate, AutomationUpdate, Subscription
from scrip_actor.http.routing import Call, Endpoint, ListOf, listing
from scrip_actor.http.schemas import PageQuery, Search

__all__ = ["ENDPOINTS"]

_ALL = "/v1/programs/{program_id}/automations"
_ONE = _ALL + "/{automation_id}"
_TAG = "Automations"


class AutomationQuery(PageQuery, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The hosted filters of the list (all apply together), newest first."""

    trigger_type: Literal["cron", "one_time", "immediate", "participant_state"] | None = None
    scope: Literal["program", "participants"] | None = None
    status: Literal["active", "paused", "archived"] | None = None
    source: Literal["api", "rule_action"] | None = None
    search: Search | None = None


class SubscriptionQuery(PageQuery, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``status`` of the subscriptions to list."""

    status: Literal["active", "completed", "failed"] | None = None


def _ids(call: Call) -> tuple[str, str]:
    return call.path["program_id"], call.path["automation_id"]


async def create_automation(call: Call) -> Automation:
    """Define an automation; an ``immediate`` one fires at once."""
    automation: Automation = await call.engine.automations.create(call.path["program_id"], call.body)
    return automation


async def list_automations(call: Call) -> ListOf[Any]:
    """The program's automations, newest first, filtered."""
    query: AutomationQuery = call.query
    return listing(
        call.engine.automations.list(
            call.path["program_id"],
            trigger_type=query.trigger_type,
            scope=query.scope,
            status=query.status,
            source=query.source,
            search=query.search,
            limit=query.limit,
            cursor=query.cursor,
        )
    )


async def get_automation(call: Call) -> Automation:
    """One automation, with its fan-out's progress."""
    automation: Automation = call.engine.automations.get(*_ids(call))
    return automation


async def update_automation(call: Call) -> Automation:
    """Change an automation; a new cron, timezone or trigger_at reschedules it."""
    automation: Automation = await call.engine.automations.update(*_ids(call), call.body)
    return automation


async def delete_automation(call: Call) -> Automation:
    """Archive an automation for good (again: the same answer)."""
    automation: Automation = await call.engine.automations.archive(*_ids(call))
    return automation


async def trigger_automation(call: Call) -> Automation:
    """Fire now (400 unless active and idle, or cron with program scope)."""
    automation: Automation = await call.engine.automations.trigger(*_ids(call))
    return automation


async def cancel_automation(call: Call) -> Automation:
    """Stop the running or pending fan-out at its next batch (400 if none)."""
    automation: Automation = await call.engine.automation_runs.cancel(*_ids(call))
    return automation


async def refresh_subscriptions(call: Call) -> Automation:
    """participant_state and active only (400 otherwise): the participants are enrolled again, in the background."""
    await call.engine.automations.request_refresh(*_ids(call))
    automation: Automation = call.engine.automations.get(*_ids(call))
    return automation


async def list_subscriptions(call: Call) -> ListOf[Any]:
    """The participant_state automation's subscriptions in participant order (empty for other types)."""
    query: SubscriptionQuery = call.query
    automation = call.engine.automations.get(*_ids(call))
    page = call.engine.automation_runs.subscriptions.list(automation, query.status, query.limit, query.cursor)
    return listing(page)


ENDPOINTS = [
    Endpoint(
        "POST",
        _ALL,
        create_automation,
        "Create an automation",
        _TAG,
        body=AutomationCreate,
        response=Automation,
        status=201,
    ),
    Endpoint(
        "GET",
        _ALL,
        list_automations,
        "A program's automations",
        _TAG,
        query=AutomationQuery,
        response=ListOf[Automation],
    ),
    Endpoint("GET", _ONE, get_automation, "Get an automation", _TAG, response=Automation),
    Endpoint(
        "PATCH", _ONE, update_automation, "Change an automation", _TAG, body=AutomationUpdate, response=Automation
    ),
    Endpoint("DELETE", _ONE, delete_automation, "Archive an automation", _TAG, response=Automation),
    Endpoint("POST", _ONE + "/trigger", trigger_automation, "Fire an automation now", _TAG, response=Automation),
    Endpoint("POST", _ONE + "/cancel", cancel_automation, "Cancel a running fan-out", _TAG, response=Automation),
    Endpoint(
        "POST",
        _ONE + "/refresh-subscriptions",
        refresh_subscriptions,
        "Re-enrol participants",
        _TAG,
        response=Automation,
        status=202,
    ),
    Endpoint(
        "GET",
        _ONE + "/subscriptions",
        list_subscriptions,
        "An automation's subscriptions",
        _TAG,
        query=SubscriptionQuery,
        response=ListOf[Subscription],
    ),
]
