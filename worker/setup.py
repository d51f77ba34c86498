"""``amends setup``: register amends' search attributes on a Temporal namespace, idempotently.

An upsert of a search attribute the namespace does not know fails the
workflow task forever, so a server must know amends' attributes
(``workflows.search.ALL``) before the first incident opens. ``amends dev``
and the test fixtures register them when they start their own server; this
is for any other server (self-hosted cluster, a long-lived dev server).
Temporal Cloud registers them through its own control plane (``tcld`` or
the web console), not the operator service.

Only the missing attributes are added, so running it again changes nothing.
``amends worker`` checks at start (``unregistered``) and refuses to poll a
namespace that lacks any of them, naming them and this command.
A name the namespace already has with another type is an error: the
workflow would upsert values of the wrong type, and Temporal cannot change
an attribute's type in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from workflows import search


def type_name(value: int) -> str:
    """``Keyword``, ``Int``, ... as the ``temporal`` CLI spells the types."""
    name = IndexedValueType.Name(IndexedValueType.ValueType(value)).removeprefix("INDEXED_VALUE_TYPE_")
    return search.CLI_TYPES.get(name, name.title().replace("_", ""))


def wanted_type(key: SearchAttributeKey) -> int:
    return int(key.indexed_value_type)


class SearchAttributeConflict(Exception):
    """The namespace has an amends attribute name with another type; nothing was added."""


@dataclass
class SetupResult:
    namespace: str
    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)


async def registered(client: Client, namespace: str) -> dict[str, int]:
    """Every search attribute the namespace knows (custom and system), by name, with its type."""
    resp = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    return {**dict(resp.system_attributes), **dict(resp.custom_attributes)}


async def register_search_attributes(
    client: Client, namespace: str | None = None, keys: tuple[SearchAttributeKey, ...] = search.ALL
) -> SetupResult:
    """Add the ``keys`` the namespace lacks; raise ``SearchAttributeConflict`` on a type clash."""
    namespace = namespace or client.namespace
    existing = await registered(client, namespace)
    clashes = [
        f"{k.name} is {type_name(existing[k.name])} on namespace {namespace!r}, amends needs "
        f"{type_name(wanted_type(k))}"
        for k in keys
        if k.name in existing and existing[k.name] != wanted_type(k)
    ]
    if clashes:
        raise SearchAttributeConflict(
            "; ".join(clashes)
            + " (a search attribute's type cannot be changed: remove it with "
            "`temporal operator search-attribute remove` if nothing uses it)"
        )
    result = SetupResult(namespace, present=[k.name for k in keys if k.name in existing])
    missing = {k.name: IndexedValueType.ValueType(wanted_type(k)) for k in keys if k.name not in existing}
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
        except RPCError as err:
            # Another `amends setup` may have added some meanwhile: look again
            # rather than fail, and only then decide.
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
            return await register_search_attributes(client, namespace, keys)
    result.added = list(missing)
    return result


async def unregistered(client: Client, namespace: str | None = None,
                       keys: tuple[SearchAttributeKey, ...] = search.ALL) -> list[str]:
    """What the workflow would upsert in vain: each of ``keys`` the namespace lacks or has with another type."""
    namespace = namespace or client.namespace
    existing = await registered(client, namespace)
    return [
        k.name if k.name not in existing
        else f"{k.name} (is {type_name(existing[k.name])}, needs {type_name(wanted_type(k))})"
        for k in keys
        if existing.get(k.name) != wanted_type(k)
    ]
