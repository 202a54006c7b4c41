"""Object and field metadata, asked for once per run: one describe per object, describeGlobal only when needed.

Every sink needs its object's describe before its first write, and streams of the same object (or parents reached
through lookups) ask again; Salesforce counts each describe against the daily API limit, so the answers are kept.
"""

from __future__ import annotations

import difflib
import re
import threading
from typing import Any, Protocol

from target_salesforce.errors import ConfigError, SalesforceApiError

DISCOVERY_COMMAND = "target-salesforce-describe"
# What an object API name can be (Account, My_Object__c, ns__Obj__c): anything else is not sent in a URL path.
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


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
        """The object's describe, whatever the case of ``sobject``; an unknown name is a ConfigError.

        Asked for directly, without describeGlobal first: a run that names its objects costs one call per object.
        The object list is read only to explain a name Salesforce does not know.
        """
        key = sobject.strip().lower()
        with self._object_lock(key):
            if key not in self._describes:
                self._describes[key] = self._fetch(sobject.strip())
            return self._describes[key]

    def field_map(self, sobject: str) -> dict[str, dict]:
        """Lower-case field name → field describe: Salesforce field names are case-insensitive."""
        describe = self.describe(sobject)
        key = describe["name"].lower()
        with self._object_lock(key):
            if key not in self._field_maps:
                self._field_maps[key] = {field["name"].lower(): field for field in describe["fields"]}
            return self._field_maps[key]

    def canonical_name(self, sobject: str) -> str:
        """The API name of ``sobject``, or a ConfigError that suggests close names and the discovery command."""
        return self.describe(sobject)["name"]

    def _fetch(self, sobject: str) -> dict:
        if _API_NAME.fullmatch(sobject):
            try:
                return self._client.json("GET", f"sobjects/{sobject}/describe")
            except SalesforceApiError as exc:
                if exc.status != 404:
                    raise
        raise self._unknown(sobject)

    def _unknown(self, sobject: str) -> ConfigError:
        names = self.object_names()
        close = difflib.get_close_matches(sobject.lower(), list(names), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(names[c] for c in close)}? " if close else ""
        return ConfigError(
            f"Salesforce object {sobject!r} does not exist or is not visible to this user; {hint}"
            f"list the objects with `{DISCOVERY_COMMAND}`"
        )

    def _object_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._object_locks.setdefault(name, threading.Lock())
