"""Reads of webhook endpoints and their delivery log, with the access rule: a user sees
the endpoints they registered (staff see all of them through admin)."""

from __future__ import annotations

from django.db.models import QuerySet

from conversations.models import WebhookDelivery, WebhookEndpoint
from vbcrm.types import User

DELIVERY_LOG_SIZE = 50


def webhook_endpoint_list(*, user: User) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(owner=user).prefetch_related("sessions").order_by("id")


def webhook_endpoint_get(*, user: User, endpoint_id: int) -> WebhookEndpoint:
    """The endpoint if ``user`` registered it; ``DoesNotExist`` otherwise."""
    return webhook_endpoint_list(user=user).get(pk=endpoint_id)


def webhook_delivery_log(*, endpoint: WebhookEndpoint) -> list[WebhookDelivery]:
    """The newest deliveries of an endpoint (without their bodies)."""
    return list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .defer("body")
        .order_by("-id")[:DELIVERY_LOG_SIZE]
    )


def webhook_delivery_get(*, user: User, delivery_id: int) -> WebhookDelivery:
    return WebhookDelivery.objects.select_related("endpoint").get(
        pk=delivery_id, endpoint__owner=user
    )
