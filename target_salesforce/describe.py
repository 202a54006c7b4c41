"""Object and field metadata, asked for once per run: the describes a run needs in one call where possible.

Every sink needs its object's describe before its first write, and streams of the same object (or parents reached
through lookups) ask again; Salesforce counts each describe against the daily API limit, so the answers are kept.
When the config names more than one object to describe (its objects, and the parents its ``Rel.Field`` mappings
look up through), the first describe asks for all of them in one Composite request, which counts as one API call
whatever the number of subrequests (up to 25 each): 10 records with a lookup cost token, describes, write.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from target_salesforce.dependencies import guessed_parent, mapped_parents
from target_salesforce.errors import ConfigError, SalesforceApiError

DISCOVERY_COMMAND = "target-salesforce-describe"
# What an object API name can be (Account, My_Object__c, ns__Obj__c): anything else is not sent in a URL path.
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Subrequests a Composite request may carry.
COMPOSITE_MAX_SUBREQUESTS = 25


class JsonClient(Protocol):
    api_version: str

    def json(self, method: str, path: str, **kwargs: Any) -> Any: ...


class DescribeCache:
    """Thread-safe: sinks asking for the same object at once wait for one describe call instead of each making one.

    ``lookups`` (object named in the config → its ``Rel.Field`` mapping targets, see ``configured_lookups``) are
    described together on the first ``describe``, with the parents those targets most likely reference.
    """

    def __init__(self, client: JsonClient, lookups: Mapping[str, Iterable[str]] | None = None) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._names: dict[str, str] | None = None
        self._object_locks: dict[str, threading.Lock] = {}
        self._describes: dict[str, dict] = {}
        self._missing: set[str] = set()  # lower-case names Salesforce answered 404 for
        self._field_maps: dict[str, dict[str, dict]] = {}
        self._lookups = {name: frozenset(targets) for name, targets in (lookups or {}).items()}
        self._prefetch_lock = threading.Lock()
        self._prefetched = not self._lookups

    def object_names(self) -> dict[str, str]:
        """Lower-case object name → its API name, for every object the user can see (describeGlobal)."""
        with self._lock:
            if self._names is None:
                answer = self._client.json("GET", "sobjects/")
                self._names = {entry["name"].lower(): entry["name"] for entry in answer["sobjects"]}
            return self._names

    def describe(self, sobject: str) -> dict:
        """The object's describe, whatever the case of ``sobject``; an unknown name is a ConfigError.

        Asked for directly, without describeGlobal first: the first call also describes the configured objects and
        their parents (one Composite call), later ones only what is still unknown (one call per object). The
        object list is read only to explain a name Salesforce does not know.
        """
        name = sobject.strip()
        key = name.lower()
        self._prefetch(name)
        with self._object_lock(key):
            if key not in self._describes:
                self._describe_many([name])
            if key in self._missing:
                raise self._unknown(name)
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

    def _prefetch(self, first: str) -> None:
        """Once per run: describe ``first``, the configured objects and their guessed parents together, then any
        parent the children's describes reference that the guesses missed (one more call)."""
        with self._prefetch_lock:
            if self._prefetched:
                return
            self._prefetched = True
            guesses = (guessed_parent(t, child) for child, targets in self._lookups.items() for t in targets)
            self._describe_many([first, *self._lookups, *(g for g in guesses if g)])
            missed = [
                parent
                for child, targets in self._lookups.items()
                if child.lower() in self._describes
                for parent in mapped_parents(self._describes[child.lower()], targets)
            ]
            self._describe_many(missed)

    def _describe_many(self, names: Iterable[str]) -> None:
        """Describe the names not known yet: one plain describe for a single object, Composite for several."""
        todo: dict[str, str] = {}
        for name in names:
            key = name.lower()
            if key in self._describes or key in self._missing:
                continue
            if _API_NAME.fullmatch(name):
                todo.setdefault(key, name)
            else:
                self._missing.add(key)  # never sent in a URL: reported like a name Salesforce does not know
        if len(todo) == 1:
            [name] = todo.values()
            self._keep(name, self._fetch(name))
            return
        batch = list(todo.values())
        for start in range(0, len(batch), COMPOSITE_MAX_SUBREQUESTS):
            self._describe_composite(batch[start : start + COMPOSITE_MAX_SUBREQUESTS])

    def _fetch(self, sobject: str) -> dict | None:
        """One ``GET .../describe``; None when Salesforce does not know the object."""
        try:
            return self._client.json("GET", f"sobjects/{sobject}/describe")
        except SalesforceApiError as exc:
            if exc.status != 404:
                raise
            return None

    def _describe_composite(self, names: list[str]) -> None:
        """Up to 25 describes in one Composite request (one API call); a 404 subrequest is an unknown object."""
        base = f"/services/data/v{self._client.api_version}/sobjects"
        body = {
            "allOrNone": False,
            "compositeRequest": [
                {"method": "GET", "url": f"{base}/{name}/describe", "referenceId": name} for name in names
            ],
        }
        # Only reads: re-sending after a lost answer is harmless.
        answer = self._client.json("POST", "composite", json=body, idempotent=True)
        results = {r.get("referenceId"): r for r in answer.get("compositeResponse") or ()}
        for name in names:
            result = results.get(name) or {}
            status = result.get("httpStatusCode")
            if status == 200:
                self._keep(name, result["body"])
            elif status == 404:
                self._keep(name, None)
            else:
                errors = result.get("body")
                first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
                raise SalesforceApiError(
                    int(status or 500), str(first.get("errorCode") or "UNKNOWN"), str(first.get("message") or "")
                )

    def _keep(self, name: str, describe: dict | None) -> None:
        if describe is None:
            self._missing.add(name.lower())
        else:
            self._describes[name.lower()] = describe

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
