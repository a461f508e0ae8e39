"""How every Preflight process reaches Temporal: one data converter (pydantic), one
search attribute that lists a person's sessions."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

from settings import Settings

OWNER = SearchAttributeKey.for_keyword("PreflightOwner")
"""Who started a session: `GET /sessions` lists by it."""


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


async def register_search_attributes(client: Client) -> None:
    """Make sure the namespace indexes `PreflightOwner` (idempotent)."""
    known = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    if OWNER.name in known.custom_attributes:
        return
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={OWNER.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
        )
    )
