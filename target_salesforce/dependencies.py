"""Which objects of a run are parents of which: so that parents are written before the children that look them up.

A child stream that maps a lookup through the parent's external id (Contact ``{"account_key":
"Account.External_Id__c"}``) fails with ``INVALID_FIELD: Foreign key external ID: X not found`` when its batch
is written before the batch that creates the parent. Taps emit streams in their own order, so the target orders
the writes instead: a full drain goes level by level (objects without parents in the run first), and a child
batch that drains on its own first drains the pending batches of its parents.

The graph is over objects, built from every stream's field mapping (relationship → the object its lookup field
references, from the describe). The streams named in ``streams`` are all added when the first stream starts, so a
cycle among them is reported before anything is written; a stream that arrives later adds its own edges. A lookup
from an object to itself (Account's parent account) is no edge: its records are in one batch anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from target_salesforce.errors import ConfigError
from target_salesforce.settings import DELETE_MODES, StreamSettings, object_candidates, stream_settings


class Describes(Protocol):
    def object_names(self) -> dict[str, str]: ...

    def describe(self, sobject: str) -> dict: ...


class Writes(Protocol):
    """What the graph needs of a sink: the object it writes and the objects its lookups reference."""

    object_name: str
    parent_objects: frozenset[str]


def object_of(describes: Describes, stream_name: str, settings: StreamSettings) -> str | None:
    """The object a stream writes: its ``object`` setting, else the stream name (also after a ``schema-`` prefix)."""
    if settings.object:
        return describes.describe(settings.object)["name"]
    names = describes.object_names()
    return next((names[c.lower()] for c in object_candidates(stream_name) if c.lower() in names), None)


def configured_lookups(config: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Every object the config names (``object`` and ``streams.*.object``) → its relationship targets
    (``Account.External_Id__c``): what a run will describe, known before the first record arrives."""
    named = [(config.get("object"), config.get("field_mapping"))]
    named += [(s.object, s.field_mapping) for s in (stream_settings(config, n) for n in config.get("streams") or {})]
    lookups: dict[str, set[str]] = {}
    for sobject, mapping in named:
        if isinstance(sobject, str) and sobject.strip():
            targets = lookups.setdefault(sobject.strip(), set())
            targets.update(t for t in (mapping or {}).values() if isinstance(t, str) and "." in t)
    return {sobject: frozenset(targets) for sobject, targets in lookups.items()}


# Standard relationships not named after the object they reference. Who, What and the Owner of Lead or Case are
# polymorphic (the mapping refuses them), so a wrong guess there only costs a subrequest.
_STANDARD_PARENTS = {"reportsto": "Contact", "owner": "User", "createdby": "User", "lastmodifiedby": "User"}


def guessed_parent(target: str, child: str) -> str | None:
    """The object a relationship target most likely looks up, before the child's describe says which.

    Custom relationships end in ``__r`` for an object ending in ``__c`` (``Invoice__r`` → ``Invoice__c``), ``Parent``
    is the child's own object, and most standard relationships carry their object's name (``Account``). The guess
    lets the parent be described in the same call as the child; the child's ``referenceTo`` has the last word.
    """
    relationship = target.partition(".")[0].strip()
    lowered = relationship.lower()
    if not relationship or lowered in ("who", "what"):
        return None
    if lowered.endswith("__r"):
        return relationship[:-3] + "__c"
    if lowered == "parent":
        return child
    return _STANDARD_PARENTS.get(lowered, relationship)


def mapped_parents(describe: Mapping[str, Any], targets: Iterable[str]) -> frozenset[str]:
    """The objects that relationship columns reference (``Account.External_Id__c`` on Contact → Account)."""
    relationships = {
        f["relationshipName"].lower(): f["referenceTo"]
        for f in describe.get("fields") or ()
        if f.get("relationshipName") and f.get("referenceTo")
    }
    parents = set()
    for target in targets:
        relationship, dot, _ = target.partition(".")
        references = relationships.get(relationship.lower()) if dot else None
        if references and len(references) == 1:
            parents.add(references[0])
    parents.discard(describe["name"])
    return frozenset(parents)


class DependencyGraph:
    """Object → the objects it references, for every stream of the run; refuses a cycle."""

    def __init__(self) -> None:
        self._parents: dict[str, set[str]] = {}
        self._configured_checked = False

    def add_configured(self, config: Mapping[str, Any], describes: Describes) -> None:
        """Add every stream named in ``streams`` (once), so that a cycle among them fails before any write."""
        if self._configured_checked:
            return
        self._configured_checked = True
        for stream_name in config.get("streams") or {}:
            settings = stream_settings(config, stream_name)
            try:
                sobject = object_of(describes, stream_name, settings)
            except ConfigError:
                continue  # an unknown object fails that stream's own set-up, if the stream ever comes
            if sobject is not None and settings.sync_mode not in DELETE_MODES:  # a delete sets no lookup
                targets = (settings.field_mapping or {}).values()
                self.add(sobject, mapped_parents(describes.describe(sobject), targets))

    def add(self, sobject: str, parents: Iterable[str]) -> None:
        self._parents.setdefault(sobject, set()).update(parents)
        cycle = find_cycle(self._parents)
        if cycle:
            raise ConfigError(
                f"The streams' lookups form a cycle ({' → '.join(cycle)}): no object can be written first; load "
                "one of these streams in a separate run, or map a lookup to record ids instead of an external id."
            )


def find_cycle(parents: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle as a path whose last node is its first (``[A, B, A]``), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for parent in sorted(parents.get(node, ())):
            if state.get(parent) == 1:
                return [*path[path.index(parent) :], parent]
            if parent not in state:
                found = visit(parent, [*path, parent])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(parents):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def parents_among(sink: Writes, sinks: Iterable[Writes]) -> list[Writes]:
    """The sinks writing an object that ``sink``'s lookups reference."""
    return [other for other in sinks if other is not sink and other.object_name in sink.parent_objects]


def levels(sinks: Sequence[Writes]) -> list[list[Writes]]:
    """``sinks`` grouped so that every sink comes in a later group than the sinks writing its parents.

    Requires an acyclic graph (``DependencyGraph.add`` refuses cycles).
    """
    depth: dict[int, int] = {}

    def depth_of(sink: Writes) -> int:
        if id(sink) not in depth:
            depth[id(sink)] = 1 + max((depth_of(p) for p in parents_among(sink, sinks)), default=-1)
        return depth[id(sink)]

    grouped: dict[int, list[Writes]] = {}
    for sink in sinks:
        grouped.setdefault(depth_of(sink), []).append(sink)
    return [grouped[d] for d in sorted(grouped)]
