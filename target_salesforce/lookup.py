"""Finding existing record ids by a field value with SOQL, for matching on fields Salesforce cannot upsert on.

Salesforce's native upsert only matches on Id or an external-id field. To match on an idLookup field such as
Contact.Email, or to update by external id without ever creating, the target asks which records hold each value.
Values are escaped as SOQL string literals and sent in chunks that keep each request URI well under
Salesforce's 16,384-byte limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Protocol

# SOQL string-literal escapes (Salesforce SOQL reference, "Quoted String Escape Sequences").
_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\b": "\\b",
        "\f": "\\f",
    }
)

# Characters of quoted values per query. URL-encoding can triple a character's size, so 4,000 characters of
# literals stay below 16,384 bytes of URI with room for the SELECT and the host.
MAX_LITERAL_CHARS = 4000


class QueryClient(Protocol):
    def query_all(self, soql: str) -> list[dict]: ...


def soql_quote(value: str) -> str:
    """``value`` as a SOQL string literal, quotes included."""
    return "'" + value.translate(_ESCAPES) + "'"


def match_key(value: object, case_sensitive: bool) -> str:
    """How Salesforce compares text when it matches: case-insensitively unless the field says otherwise."""
    text = str(value)
    return text if case_sensitive else text.lower()


def _chunks(literals: list[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for literal in literals:
        if chunk and size + len(literal) > MAX_LITERAL_CHARS:
            yield chunk
            chunk, size = [], 0
        chunk.append(literal)
        size += len(literal) + 1
    if chunk:
        yield chunk


def find_ids(
    client: QueryClient, sobject: str, field: str, values: Iterable[object], *, case_sensitive: bool = False
) -> dict[str, list[str]]:
    """Map each value's ``match_key`` to the ids of every record whose ``field`` holds it (several = ambiguous)."""
    literals = sorted({soql_quote(str(v)) for v in values if v is not None})
    found: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks(literals):
        selected = "Id" if field == "Id" else f"Id, {field}"
        soql = f"SELECT {selected} FROM {sobject} WHERE {field} IN ({','.join(chunk)})"
        for row in client.query_all(soql):
            found[match_key(row[field], case_sensitive)].append(row["Id"])
    return dict(found)
