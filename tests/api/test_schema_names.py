"""The OpenAPI document keys its shapes by class name: two shapes of one name would
silently describe one endpoint's answer with the other's fields."""

from __future__ import annotations

import importlib
import inspect

from pydantic import BaseModel

API_MODULES = [
    "conversations.api_schemas",
    "conversations.api",
    "conversations.contact_api",
    "conversations.team_api",
    "conversations.queue_api",
    "conversations.template_api",
    "whatsapp.api",
    "vbcrm.api",
    "vbcrm.api_base",
]


def test_no_two_api_shapes_share_a_name():
    seen: dict[str, str] = {}
    clashes = []
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, BaseModel) or cls.__module__ != module_name:
                continue
            if name in seen and seen[name] != module_name:
                clashes.append(f"{name}: {seen[name]} and {module_name}")
            seen.setdefault(name, module_name)
    assert not clashes, clashes


def test_the_contact_endpoint_documents_its_own_shape(client):
    schema = client.get("/api/openapi.json").json()
    answer = schema["paths"]["/api/whatsapp/contacts/{contact_id}"]["get"]["responses"]["200"]
    ref = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "custom_fields" in schema["components"]["schemas"][ref]["properties"]
