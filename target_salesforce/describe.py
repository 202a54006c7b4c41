"""Object and field metadata, asked for once per run: one describeGlobal, one describe per object.

Every sink needs its object's describe before its first write, and streams of the same object (or parents reached
through lookups) ask again; Salesforce counts each describe against the daily API limit, so the answers are kept.
"""

from __future__ import annotations

import difflib
import threading
from typing import Any, Protocol

from target_salesforce.errors import ConfigError

DISCOVERY_COMMAND = "target-salesforce-describe"


class JsonClient(Protocol):
    def json(self, method: str, path: str, **kwargs: Any) -> Any: ...


class DescribeCache:
    """Thread-safe: sinks asking for the same object at once wait for one describe call instead of each making one."""

    def __init__(self, client: JsonClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._names: dict[str, str] | None = None
        self._object_locks: dict[str, threading.Lock] = {}
        self._describes: dict[str, dict] = {}
        self._field_maps: dict[str, dict[str, dict]] = {}

    def object_names(self) -> dict[str, str]:
        """Lower-case object name → its API name, for every object the user can see (describeGlobal)."""
        with self._lock:
            if self._names is None:
                answer = self._client.json("GET", "sobjects/")
                self._names = {entry["name"].lower(): entry["name"] for entry in answer["sobjects"]}
            return self._names

    def describe(self, sobject: str) -> dict:
        """The object's describe, whatever the case of ``sobject``; an unknown name is a ConfigError."""
        name = self.canonical_name(sobject)
        with self._object_lock(name):
            return self._describe_unlocked(name)

    def field_map(self, sobject: str) -> dict[str, dict]:
        """Lower-case field name → field describe: Salesforce field names are case-insensitive."""
        name = self.canonical_name(sobject)
        with self._object_lock(name):
            if name not in self._field_maps:
                fields = self._describe_unlocked(name)["fields"]
                self._field_maps[name] = {field["name"].lower(): field for field in fields}
            return self._field_maps[name]

    def canonical_name(self, sobject: str) -> str:
        """The API name of ``sobject``, or a ConfigError that suggests close names and the discovery command."""
        names = self.object_names()
        name = names.get(sobject.strip().lower())
        if name is not None:
            return name
        close = difflib.get_close_matches(sobject.lower(), list(names), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(names[c] for c in close)}? " if close else ""
        raise ConfigError(
            f"Salesforce object {sobject!r} does not exist or is not visible to this user; {hint}"
            f"list the objects with `{DISCOVERY_COMMAND}`"
        )

    def _describe_unlocked(self, name: str) -> dict:
        """The cached describe; the caller holds the object's lock so that only one thread asks."""
        if name not in self._describes:
            self._describes[name] = self._client.json("GET", f"sobjects/{name}/describe")
        return self._describes[name]

    def _object_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._object_locks.setdefault(name, threading.Lock())
