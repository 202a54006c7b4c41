"""Checking records against their stream's JSON Schema, compiled once per SCHEMA message.

The ``jsonschema`` validator walks the schema anew for every record (a validator object per field), which was over
half the target's CPU. Most Singer schemas only say which JSON types each field may hold, so this module compiles
a schema into plain closures for the keywords it understands and asks ``jsonschema`` only when a record fails them,
to confirm the failure and word the reason. The compiled check never accepts what ``jsonschema`` would reject: for a
value it cannot judge cheaply (an unusual Python type, an ``enum`` of numbers) it answers "fails" and lets
``jsonschema`` decide. A schema with any validation keyword it does not know is validated by ``jsonschema`` alone.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from singer_sdk.exceptions import InvalidJSONSchema
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator

from target_salesforce.errors import ConfigError

Check = Callable[[Any], bool]
# A rule is either the set of Python classes a plain "type"-only schema admits, or a compiled check.
Rule = frozenset | Check

_NUMBER_CLASSES = frozenset({int, float, Decimal})
# The Python classes a JSON value decodes to, per JSON Schema type; a bool is never an integer or number here.
_TYPE_CLASSES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "null": frozenset({type(None)}),
    "boolean": frozenset({bool}),
    "integer": frozenset({int}),
    "number": _NUMBER_CLASSES,
    "object": frozenset({dict}),
    "array": frozenset({list}),
}
# Keywords compiled here; every other keyword ``jsonschema`` acts on makes the schema fall back to it.
_SUPPORTED = frozenset(
    {
        "type",
        "properties",
        "additionalProperties",
        "required",
        "items",
        "anyOf",
        "enum",
        "maxLength",
        "minLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
    }
)
# The keywords of an object node that ``_compile_object`` checks alone, with ``type``.
_OBJECT_KEYWORDS = frozenset({"type", "properties", "additionalProperties", "required"})
# How a failing bound reads in jsonschema's terms: the value fails when ``fails(value, limit)``.
_NUMBER_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda value, limit: value < limit,
    "maximum": lambda value, limit: value > limit,
    "exclusiveMinimum": lambda value, limit: value <= limit,
    "exclusiveMaximum": lambda value, limit: value >= limit,
}
_MESSAGE_CHARS = 200  # a megabyte of text in a bad value must not land in the reject file


class _Unsupported(Exception):
    """The schema uses a keyword this module does not compile."""


def _always(_value: Any) -> bool:
    return True


def _never(_value: Any) -> bool:
    return False


def _passes(rule: Rule, value: Any) -> bool:
    return value.__class__ in rule if rule.__class__ is frozenset else rule(value)  # type: ignore[operator]


def _compile_types(spec: Any) -> frozenset[type] | None:
    if spec is None:
        return None
    names = [spec] if isinstance(spec, str) else spec
    try:
        return frozenset().union(*(_TYPE_CLASSES[name] for name in names))
    except (KeyError, TypeError):
        raise _Unsupported from None


def _compile_object(node: Mapping[str, Any], keywords: Callable[[Mapping[str, Any]], Any]) -> Check:
    props: dict[str, Rule] = {name: _compile(sub, keywords) for name, sub in node.get("properties", {}).items()}
    extra_schema = node.get("additionalProperties", True)
    extra: Rule | None = (
        None if extra_schema is True else _never if extra_schema is False else _compile(extra_schema, keywords)
    )
    required: tuple[str, ...] = tuple(node.get("required", ()))

    def check(obj: dict) -> bool:
        for name, value in obj.items():
            rule = props.get(name, extra)
            if rule is None:
                continue
            if rule.__class__ is frozenset:
                if value.__class__ not in rule:  # type: ignore[operator]
                    return False
            elif not rule(value):  # type: ignore[operator]
                return False
        return not required or all(name in obj for name in required)

    return check


def _compile_parts(node: Mapping[str, Any], keywords: Callable[[Mapping[str, Any]], Any]) -> list[Check]:
    """One check per keyword group present besides ``type``; each applies only to the JSON type it is about.

    A subclass of dict, list or str (never decoded from JSON, possibly made by a stream map) fails here, to be judged
    by ``jsonschema``, which treats it as the JSON type of its base class.
    """
    parts: list[Check] = []
    if any(k in node for k in ("properties", "additionalProperties", "required")):
        check_object = _compile_object(node, keywords)
        parts.append(lambda value: check_object(value) if value.__class__ is dict else not isinstance(value, dict))
    if "items" in node:
        item = _compile(node["items"], keywords)
        parts.append(
            lambda value: (
                all(_passes(item, v) for v in value) if value.__class__ is list else not isinstance(value, list)
            )
        )
    if "anyOf" in node:
        options = [_compile(option, keywords) for option in node["anyOf"]]
        parts.append(lambda value: any(_passes(option, value) for option in options))
    if "enum" in node:
        # Only str and null members are compared here: jsonschema's equality for numbers and bools differs from
        # Python's (True is not 1), so any other value is left to it.
        members = frozenset(m for m in node["enum"] if m is None or m.__class__ is str)
        parts.append(lambda value: (value is None or value.__class__ is str) and value in members)
    lengths = (node.get("minLength"), node.get("maxLength"))
    if lengths != (None, None):
        low, high = lengths
        parts.append(
            lambda value: (
                (low is None or len(value) >= low) and (high is None or len(value) <= high)
                if value.__class__ is str
                else not isinstance(value, str)
            )
        )
    bounds = [(fails, node[key]) for key, fails in _NUMBER_BOUNDS.items() if key in node]
    if bounds:

        def within(value: Any) -> bool:
            if value.__class__ in _NUMBER_CLASSES:
                return not any(fails(value, limit) for fails, limit in bounds)
            # bools are not numbers to jsonschema; any other number type is for jsonschema to judge
            return value.__class__ is bool or not isinstance(value, numbers.Number)

        parts.append(within)
    return parts


def _compile(node: Any, keywords: Callable[[Mapping[str, Any]], Any]) -> Rule:
    if node is True:
        return _always
    if not isinstance(node, Mapping):
        raise _Unsupported
    unknown = [k for k in keywords(node) if k not in _SUPPORTED]
    if unknown:
        raise _Unsupported
    classes = _compile_types(node.get("type"))
    if classes == _TYPE_CLASSES["object"] and set(keywords(node)) <= _OBJECT_KEYWORDS:
        # The usual record schema, checked on every record: one closure layer instead of three.
        check_object = _compile_object(node, keywords)
        return lambda value: value.__class__ is dict and check_object(value)
    parts = _compile_parts(node, keywords)
    if not parts:
        return classes if classes is not None else _always
    if len(parts) == 1:  # the usual object or array node: no generator over one part
        part = parts[0]
        return part if classes is None else lambda value: value.__class__ in classes and part(value)

    def check(value: Any) -> bool:
        if classes is not None and value.__class__ not in classes:
            return False
        return all(part(value) for part in parts)

    return check


def _decided_by_shape(schema: Any, keywords: Callable[[Mapping[str, Any]], Any]) -> bool:
    """Whether a compiled check's answer for a record depends only on the record's shape (its keys, in order, and
    its values' classes): the record node has object keywords only and every field's schema at most a ``type``."""

    def type_only(node: Any) -> bool:
        return isinstance(node, bool) or (isinstance(node, Mapping) and set(keywords(node)) <= {"type"})

    return (
        isinstance(schema, Mapping)
        and set(keywords(schema)) <= _OBJECT_KEYWORDS
        and all(type_only(node) for node in schema.get("properties", {}).values())
        and type_only(schema.get("additionalProperties", True))
    )


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


class RecordCheck:
    """A stream schema's record check: the compiled fast path, with ``jsonschema`` as judge of every failure.

    ``validator`` is the ``jsonschema`` validator for the same schema; its keyword table decides what the fast
    path may compile. ``format`` counts as understood only when the validator checks no format (singer-sdk's
    default), as it then checks nothing.
    """

    def __init__(self, schema: Mapping[str, Any], validator: Validator) -> None:
        self._validator = validator
        checks_formats = bool(getattr(validator.format_checker, "checkers", None))
        acting = frozenset(validator.VALIDATORS) - (set() if checks_formats else {"format"})

        def keywords(node: Mapping[str, Any]) -> Iterator[str]:
            return (k for k in node if k in acting)

        try:
            self._fast: Rule | None = _compile(schema, keywords)
        except _Unsupported:
            self._fast = None
        self._by_shape = self._fast is not None and _decided_by_shape(schema, keywords)

    @property
    def compiled(self) -> bool:
        """Whether records are checked by the compiled path (else every record goes through ``jsonschema``)."""
        return self._fast is not None

    def passes_by_shape(self, record: Any) -> bool:
        """Whether the record passes, and so does every record of its shape (the same keys in the same order, each
        value of the same class): true only where the compiled answer depends on nothing else (the usual schema,
        which only says which types each field holds) and is a pass. ``jsonschema``'s acquittals never count here:
        they may depend on the value (an integer field accepts ``1.0`` but not ``1.5``)."""
        return self._by_shape and record.__class__ is dict and _passes(self._fast, record)  # type: ignore[arg-type]

    def problem(self, record: Any) -> str | None:
        """None when the record conforms, else one line naming the field and what is wrong with it."""
        if self._fast is not None and _passes(self._fast, record):
            return None
        error = best_match(self._validator.iter_errors(record))
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path)
        return _one_line(f"field '{where}': {error.message}" if where else error.message)


class RejectingValidator(BaseJSONSchemaValidator):
    """Schema validation that sends a non-conforming record to the reject file instead of ending the run.

    singer-sdk's own handling logs a traceback and stops; one bad row among millions should cost that row only.
    """

    def __init__(self, schema: dict, stream_name: str) -> None:
        super().__init__(schema)
        try:
            inner = JSONSchemaValidator(schema)
        except InvalidJSONSchema as exc:
            raise ConfigError(f"Stream '{stream_name}': its SCHEMA message is not valid JSON Schema ({exc}).") from None
        self._check = RecordCheck(schema, inner.validator)
        self.errors: dict[int, str] = {}

    def validate(self, record: dict[str, Any]) -> None:
        problem = self._check.problem(record)
        if problem is not None:
            self.errors[id(record)] = problem

    def passes_by_shape(self, record: dict[str, Any]) -> bool:
        """See ``RecordCheck.passes_by_shape``: a record path need not validate the next record of this shape."""
        return self._check.passes_by_shape(record)
