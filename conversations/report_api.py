"""REST API for the reports (mounted under /api/whatsapp/ by vbcrm/api.py): the figures
of the reports page as JSON, under the same access rule (``report_selectors``)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from conversations.api_schemas import MAX_ID
from conversations.report_selectors import report_build, report_filters
from conversations.report_tables import report_json
from vbcrm.api_base import ApiError, errors, request_user
from vbcrm.errors import error_items

router = Router(tags=["reports"])


class ReportQuery(Schema):
    range: Literal["today", "7", "30", "90", "custom"] = Field(
        "30", description="today, the last 7, 30 or 90 days (today included), or custom."
    )
    from_: date | None = Field(
        None, alias="from", description="First day (with range=custom), in your time zone."
    )
    to: date | None = Field(None, description="Last day, included (with range=custom).")
    number: int | None = Field(None, ge=1, le=MAX_ID, description="Only this number.")
    queue: int | None = Field(None, ge=1, le=MAX_ID, description="Only this queue.")
    agent: int | None = Field(
        None, ge=1, le=MAX_ID, description="Only this agent's figures (owners and staff)."
    )


class Period(Schema):
    from_: date = Field(alias="from")
    to: date
    time_zone: str = Field(description="The zone days and hours are counted in.")


class MessagesDay(Schema):
    day: date
    inbound: int = Field(description="Customers' messages.")
    agents: int = Field(description="Agents' replies (sent from VB CRM).")
    automatic: int = Field(description="The number's bot and automatic replies.")
    phone: int = Field(description="Sent from the phone linked to the number.")


class ConversationsDay(Schema):
    day: date
    new: int
    reopened: int
    closed: int


class Timing(Schema):
    count: int
    median_seconds: float | None
    p90_seconds: float | None = Field(description="90th percentile (continuous).")


class AgentTimes(Schema):
    agent_id: int | None = Field(
        description="null: no agent (answered from the phone, or closed while unassigned)."
    )
    name: str
    first_response: Timing = Field(description="First replies this agent wrote.")
    resolution: Timing = Field(description="Conversations closed while this agent held them.")


class NumberTimes(Schema):
    number_id: int
    name: str
    first_response: Timing
    resolution: Timing


class WaitingNumber(Schema):
    number_id: int
    name: str
    waiting: int
    oldest_since: str = Field(description="ISO 8601 time of the oldest unanswered message.")
    oldest_seconds: float


class Waiting(Schema):
    waiting: int = Field(description="Conversations, not closed, whose customer waits now.")
    oldest_since: str | None
    oldest_seconds: float | None
    per_number: list[WaitingNumber]


class ReportOut(Schema):
    period: Period
    messages: list[MessagesDay]
    conversations: list[ConversationsDay]
    first_response: Timing = Field(
        description="The customer's first message of an opening to the first human reply."
    )
    resolution: Timing = Field(description="From (re)opening to closing.")
    per_agent: list[AgentTimes]
    per_number: list[NumberTimes]
    waiting: Waiting
    busiest_hours: list[list[int]] = Field(
        description="Customers' messages by weekday (Monday first) and hour (0-23)."
    )


@router.get(
    "/reports",
    response={200: ReportOut, **errors(401, 422)},
    summary="Report figures",
    by_alias=True,
)
def report(request: HttpRequest, query: Query[ReportQuery]) -> dict:
    """The reports page's figures for a period, in your time zone. Owners get their
    numbers (every agent), staff every number, agents their own figures on the numbers
    they work. Times are in seconds; a percentile is null when nothing was measured."""
    params = {
        "range": query.range,
        "from": query.from_.isoformat() if query.from_ else "",
        "to": query.to.isoformat() if query.to else "",
        "number": str(query.number or ""),
        "queue": str(query.queue or ""),
        "agent": str(query.agent or ""),
    }
    try:
        filters = report_filters(user=request_user(request), params=params)
    except ValidationError as exc:
        raise ApiError(
            422,
            "invalid",
            [
                {"field": field or "range", "message": message, "code": code}
                for field, code, message in error_items(exc)
            ],
        ) from None
    return report_json(report_build(filters=filters))
