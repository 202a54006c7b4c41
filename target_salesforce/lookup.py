"""Finding existing record ids by a field value with SOQL, for matching on fields Salesforce cannot upsert on.

Salesforce's native upsert only matches on Id or an external-id field. To match on an idLookup field such as
Contact.Email, or to update by external id without ever creating, the target asks which records hold each value.
Values are escaped as SOQL string literals and sent in chunks that keep each request URI well under
Salesforce's 16,384-byte limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Context, Decimal
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

# Normalising a number keeps all of its digits: far more than the 18 a Salesforce number holds.
_NUMBER_CONTEXT = Context(prec=60)

# Characters of quoted values per query. URL-encoding can triple a character's size, so 4,000 characters of
# literals stay below 16,384 bytes of URI with room for the SELECT and the host.
MAX_LITERAL_CHARS = 4000


class QueryClient(Protocol):
    def query_all(self, soql: str) -> list[dict]: ...


def soql_quote(value: str) -> str:
    """``value`` as a SOQL string literal, quotes included."""
    return "'" + value.translate(_ESCAPES) + "'"


def match_key(value: object, case_sensitive: bool) -> str:
    """How Salesforce compares values when it matches: text case-insensitively unless the field says otherwise,
    numbers by value."""
    cls = value.__class__
    if cls is float or cls is Decimal:
        return _number_key(value)  # type: ignore[arg-type]
    text = str(value)
    return text if case_sensitive else text.lower()


def _number_key(value: float | Decimal) -> str:
    """A fraction's digits, without exponent or trailing zeros: the float a value was converted to (``1e-05``), the
    Decimal a spooled batch reads it back as (``0.00001``) and a longer Decimal sent as ``12.50`` or answered by a
    query as ``12.5`` are each one key."""
    number = Decimal(repr(value)) if value.__class__ is float else value
    return format(number.normalize(_NUMBER_CONTEXT), "f")


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
