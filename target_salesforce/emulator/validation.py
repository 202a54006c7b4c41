"""Reading request values into the store's form, failing the way Salesforce fails.

Each field gets one converter, built once, that turns a request value into its stored form (see the
encodings in ``docs/emulator-design.md``) or raises Salesforce's error. Two kinds of failure exist, because
Salesforce reports them at different levels:

* a value that is the right kind of thing but breaks a rule of the field (too long, out of range, not a
  picklist value, not an email) fails only its record: ``RecordError``, which becomes a SaveResult error;
* a value that cannot be read as the field's type at all (``"abc"`` for a double) is ``NotOfType``. REST
  and Collections deserialise the whole JSON body before saving anything, so there it is a whole-request
  400 ``JSON_PARSER_ERROR`` ("Cannot deserialize instance of double from VALUE_STRING value abc or request
  may be missing a required field", as real orgs answer); Bulk CSV reads record by record, so there it is
  the record's ``INVALID_TYPE_ON_FIELD_IN_RECORD``.

Error messages name the field by its label and list its API name in ``fields``, as Salesforce does.
"""

from __future__ import annotations

import binascii
import math
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from itertools import repeat
from typing import Any, NamedTuple

from .ids import normalize_id
from .schema import FieldDef, ObjectDef, Schema
from .wire import ApiError

Converter = Callable[[Any], Any]
# A whole CSV column at once (Bulk jobs): every cell converted, or None when some cell needs the cell-by-cell
# converter (it may fail, or convert to something else). Never raises.
ColumnConverter = Callable[[Sequence[str]], Sequence[Any] | None]

NUMBER_TYPES = frozenset({"double", "currency", "percent"})

# The plain form of a date, ASCII digits only: such a valid date is stored exactly as written.
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:?\d{2})?\Z")
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2}):?(\d{2}))?\Z")
# The UTC form with milliseconds (what Data Loader and this project's target send), ASCII digits only: such a valid
# value is stored as its own first 23 characters with Salesforce's "+0000".
_UTC_MILLIS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z")
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?Z?\Z")
# Salesforce's own email check is not published; this accepts what RFC 5322 "dot-atom" addresses look like
# (local part, "@", a domain with at least one dot) and rejects the usual mistakes (no "@", spaces, no TLD).
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z"
)
# xsd:boolean's lexical space, which the Bulk API's CSV reader follows; also accepted from JSON strings.
_BOOLEANS = {"true": 1, "false": 0, "1": 1, "0": 0}
# The names Salesforce's JSON deserialiser uses for field types in JSON_PARSER_ERROR messages.
_DESERIALIZE_NAMES = {
    "int": "int",
    "double": "double",
    "currency": "double",
    "percent": "double",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
    "time": "time",
    "base64": "base64",
}
_UTC = timezone.utc
# Decimal arithmetic wide enough for any finite number a float can hold (up to 309 integer digits) at any scale.
_WIDE = Context(prec=400, Emax=MAX_EMAX, Emin=MIN_EMIN)

ROLLED_BACK_MESSAGE = "Record rolled back because not all records were valid and the request was using AllOrNone header"


class RecordError(Exception):
    """A failure of one record: one entry of its SaveResult's ``errors``."""

    def __init__(self, status_code: str, message: str, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.fields = list(fields)

    def as_dict(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}


class NotOfType(Exception):
    """The value cannot be read as the field's type at all (see the module docstring)."""


# ---------------------------------------------------------------------------------------------- errors
def string_too_long(field: FieldDef, value: str) -> RecordError:
    return RecordError(
        "STRING_TOO_LONG", f"{field.label}: data value too large: {value} (max length={field.length})", [field.name]
    )


def malformed_id(value: Any) -> RecordError:
    """A record's own Id (update, delete, upsert by Id) that is not an id of the object."""
    return RecordError("MALFORMED_ID", f"malformed id {value}")


def required_missing(names: Sequence[str]) -> RecordError:
    return RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(names)}]", names)


def not_writable(names: Sequence[str]) -> RecordError:
    return RecordError(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {', '.join(names)}. Please check the security settings of this field "
        "and verify that it is read/write for your profile or permission set.",
        names,
    )


def duplicate_value(field: FieldDef, owner_id: str) -> RecordError:
    message = f"duplicate value found: {field.name} duplicates value on record with id: {owner_id}"
    return RecordError("DUPLICATE_VALUE", message, [field.name])


def duplicate_key(field_name: str, value: Any) -> RecordError:
    """The same upsert key (external id or Id) twice in one call: Salesforce cannot order the two writes."""
    what = "id" if field_name.lower() == "id" else "external id"
    return RecordError("DUPLICATE_VALUE", f"Duplicate {what} specified: {value}", [field_name])


def several_matches(field: FieldDef, ids: Sequence[str]) -> RecordError:
    return RecordError(
        "DUPLICATE_EXTERNAL_ID",
        f"{field.label}: more than one record found for external id field: [{', '.join(ids)}]",
        [field.name],
    )


def foreign_key_not_found(parent_field: FieldDef, parent: ObjectDef, value: Any) -> RecordError:
    return RecordError(
        "INVALID_FIELD",
        f"Foreign key external ID: {value} not found for field {parent_field.name} in entity {parent.name}",
    )


def invalid_cross_reference(fields: Sequence[str] = ()) -> RecordError:
    return RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", fields)


def entity_is_deleted() -> RecordError:
    return RecordError("ENTITY_IS_DELETED", "entity is deleted")


def no_such_column(name: str, obj: ObjectDef) -> ApiError:
    return ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")


def not_an_external_id(name: str, obj: ObjectDef) -> ApiError:
    # The wording of the Bulk API's answer to an unusable match field; REST answers the same code.
    return ApiError(
        400,
        "INVALID_FIELD",
        f"Field name provided, {name} does not match an External ID, Salesforce Id, or indexed field for {obj.name}",
    )


def usable_as_key(field: FieldDef) -> bool:
    """Whether upserts and foreign keys may match records on ``field`` (Id, external ids, idLookup fields)."""
    return field.external_id or field.id_lookup or field.type == "id"


# ------------------------------------------------------------------------------------------ converters
def _text_of(value: Any) -> str:
    """JSON scalars sent to a text field are read as their text, as Salesforce's deserialiser does."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    raise NotOfType


def _text(field: FieldDef) -> Converter:
    limit = field.length
    is_email = field.type == "email"

    def convert(value: Any) -> str:
        text = value if type(value) is str else _text_of(value)
        # Salesforce measures text in UTF-16 code units (a Java platform): an emoji beyond the Basic Multilingual
        # Plane counts twice. Only text longer than half the limit can need the count.
        if limit and len(text) > limit // 2 and len(text.encode("utf-16-le")) // 2 > limit:
            raise string_too_long(field, text)
        if is_email and not _EMAIL.match(text):
            raise RecordError("INVALID_EMAIL_ADDRESS", f"{field.label}: invalid email address: {text}", [field.name])
        return text

    return convert


def _bad_picklist(field: FieldDef, value: str) -> RecordError:
    return RecordError(
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        f"{field.label}: bad value for restricted picklist field: {value}",
        [field.name],
    )


def _picklist(field: FieldDef) -> Converter:
    text = _text(field)
    allowed = frozenset(field.picklist_values) if field.restricted_picklist else None

    def convert(value: Any) -> str:
        chosen = text(value)
        if allowed is not None and chosen not in allowed:
            raise _bad_picklist(field, chosen)
        return chosen

    return convert


def _multipicklist(field: FieldDef) -> Converter:
    """Values joined with ``;``; a JSON array is not accepted (Salesforce's REST API wants the joined string)."""
    allowed = frozenset(field.picklist_values) if field.restricted_picklist else None

    def convert(value: Any) -> str | None:
        if not isinstance(value, str):
            raise NotOfType
        chosen = list(dict.fromkeys(part.strip() for part in value.split(";") if part.strip()))
        if allowed is not None:
            for part in chosen:
                if part not in allowed:
                    raise _bad_picklist(field, part)
        return ";".join(chosen) or None

    return convert


def _boolean(_field: FieldDef) -> Converter:
    def convert(value: Any) -> int:
        if value is True or value is False:
            return int(value)
        if isinstance(value, str):
            flag = _BOOLEANS.get(value.strip().lower())
            if flag is not None:
                return flag
        raise NotOfType

    return convert


def java_double(number: float) -> str:
    """``number`` as Java's ``Double.toString`` prints it, which is how Salesforce quotes numbers in messages."""
    if number == 0 or 1e-3 <= abs(number) < 1e7:
        return repr(float(number))
    dec = Decimal(repr(float(number)))
    digits = "".join(map(str, dec.as_tuple().digits)).rstrip("0") or "0"
    sign = "-" if number < 0 else ""
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{dec.adjusted()}"


def _read_number(value: Any) -> float:
    """A JSON number (a Decimal when it has a fraction or exponent: see ``Request.json``), or text in decimal or
    scientific notation (not NaN, infinity or ``1_000``)."""
    if type(value) is str:
        try:
            number = float(value)
        except ValueError:
            raise NotOfType from None
        if "_" in value:
            raise NotOfType
    elif isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise NotOfType
    else:
        number = float(value)
    if not math.isfinite(number):
        raise NotOfType
    return number


def _exact(value: Any) -> Decimal:
    """The decimal a value ``_read_number`` accepted was written as: its digits, not those of its nearest float."""
    if type(value) is Decimal:
        return value
    if type(value) is str:
        try:
            return Decimal(value.strip())
        except InvalidOperation:  # a text float() reads but Decimal does not
            raise NotOfType from None
    return Decimal(value) if type(value) is int else Decimal(repr(value))


def _out_of_range(field: FieldDef, number: float) -> RecordError:
    return RecordError(
        "NUMBER_OUTSIDE_VALID_RANGE",
        f"{field.label}: value outside of valid range on numeric field: {java_double(number)}",
        [field.name],
    )


def _number(field: FieldDef) -> Converter:
    """Rounded half-up to the field's scale, as Salesforce stores extra decimals; too many integer digits fail.

    Rounding and the range check work on the decimal the client sent (JSON numbers are read as Decimal, CSV cells
    are text), not on its nearest binary float, so that 12.345 at scale 2 becomes 12.35 and 9999999999999999.99
    fits a currency(18, 2) field, though its nearest float is 1e16. The value stored is a float (SQLite REAL),
    which keeps 15 to 17 significant digits: see "Numbers" in docs/emulator-design.md.
    """
    scale = field.scale
    quantum = Decimal(1).scaleb(-scale)
    limit = Decimal(10) ** (field.precision - scale) if field.precision else None

    def convert(value: Any) -> float:
        number = _read_number(value)  # a float; NotOfType for what is no number at all
        exact = _exact(value)
        if exact.as_tuple().exponent < -scale:  # type: ignore[operator]  # finite: the exponent is an int
            exact = exact.quantize(quantum, ROUND_HALF_UP, _WIDE)
            number = float(exact)
        if limit is not None and abs(exact) >= limit:
            raise _out_of_range(field, number)
        return number

    return convert


def _integer(field: FieldDef) -> Converter:
    # Salesforce ints are 32-bit; ``digits`` narrows that further when describe gives it.
    limit = min(10**field.digits, 2**31) if field.digits else 2**31

    def convert(value: Any) -> int:
        number = _read_number(value)
        if number != int(number):
            raise NotOfType
        if abs(number) >= limit:
            raise _out_of_range(field, number)
        return int(number)

    return convert


def _date(_field: FieldDef) -> Converter:
    def convert(value: Any) -> str:
        match = _DATE.match(value) if isinstance(value, str) else None
        if not match:
            raise NotOfType
        try:
            return date(int(match[1]), int(match[2]), int(match[3])).isoformat()
        except ValueError:
            raise NotOfType from None

    return convert


def format_datetime(moment: datetime) -> str:
    """The stored (and SOQL) form of a datetime: UTC with milliseconds, ``2024-05-01T10:00:00.000+0000``."""
    if moment.tzinfo is not _UTC:
        moment = moment.astimezone(_UTC)
    return moment.isoformat(timespec="milliseconds")[:23] + "+0000"  # isoformat: several times strftime's speed


def _datetime(_field: FieldDef) -> Converter:
    """ISO 8601 with seconds, ``Z`` or an offset (or neither), the fraction of a second optional.

    A value without a zone is read as UTC (inferred: Salesforce documents GMT as the default zone of the
    Bulk API's datetimes).
    """

    def convert(value: Any) -> str:
        match = _DATETIME.match(value) if isinstance(value, str) else None
        if not match:
            raise NotOfType
        fraction, sign, off_h, off_m = match.group(7, 9, 10, 11)
        millis = (fraction or "")[:3].ljust(3, "0")
        try:
            # The match pins the first 19 characters to YYYY-MM-DDTHH:MM:SS; reading them checks the ranges.
            moment = datetime.fromisoformat(value[:19])
            if sign and (off_h, off_m) != ("00", "00"):
                delta = timedelta(hours=int(off_h), minutes=int(off_m))
                moment = moment.replace(
                    microsecond=int(millis) * 1000, tzinfo=timezone(delta if sign == "+" else -delta)
                )
                return format_datetime(moment)
        except ValueError:
            raise NotOfType from None
        return f"{value[:19]}.{millis}+0000"  # in UTC already: the stored form is the text's own digits

    return convert


def _time(_field: FieldDef) -> Converter:
    def convert(value: Any) -> str:
        match = _TIME.match(value) if isinstance(value, str) else None
        if not match or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3]) > 59:
            raise NotOfType
        millis = (match[4] or "0").ljust(3, "0")
        return f"{match[1]}:{match[2]}:{match[3]}.{millis}Z"

    return convert


def _base64(field: FieldDef) -> Converter:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise NotOfType
        try:
            binascii.a2b_base64(value, strict_mode=True)
        except binascii.Error:
            raise NotOfType from None
        return value

    return convert


def _reference(field: FieldDef, schema: Schema) -> Converter:
    """An 18-character id of one of the objects the field refers to.

    A string that is no id at all is MALFORMED_ID; an id of another object is FIELD_INTEGRITY_EXCEPTION
    (what real orgs answer for, e.g., an Opportunity id in Contact.AccountId). Whether the record exists is
    the store's check, made for a whole batch at once.
    """
    targets = [schema.get(name) for name in field.reference_to]
    prefixes = frozenset(t.key_prefix for t in targets if t is not None)

    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise NotOfType
        record_id = normalize_id(value)
        if record_id is None:
            raise RecordError("MALFORMED_ID", f"{field.label}: id value of incorrect type: {value}", [field.name])
        if prefixes and record_id[:3] not in prefixes:
            raise RecordError(
                "FIELD_INTEGRITY_EXCEPTION", f"{field.label}: id value of incorrect type: {value}", [field.name]
            )
        return record_id

    return convert


def _as_is(_field: FieldDef) -> Converter:
    """Fields that are never written (compound address/location): kept for the permission error."""
    return lambda value: value


# ---------------------------------------------------------------------------------- column converters
# A Bulk job converts a million cells a column at a time: these check a whole column with C-level loops and
# answer the cells unchanged when the cell-by-cell converter would return each of them as it is.


def _text_column(field: FieldDef) -> ColumnConverter:
    limit = field.length
    is_email = field.type == "email"
    allowed = frozenset(field.picklist_values) if field.type == "picklist" and field.restricted_picklist else None

    def convert_column(values: Sequence[str]) -> Sequence[str] | None:
        # No cell longer than half the limit can be too long even in UTF-16 code units (see ``_text``).
        if limit and max(map(len, values), default=0) > limit // 2:
            return None
        if is_email and not all(map(_EMAIL.match, values)):
            return None
        if allowed is not None and not allowed.issuperset(values):
            return None
        return values

    return convert_column


def _boolean_column(_field: FieldDef) -> ColumnConverter:
    def convert_column(values: Sequence[str]) -> list[int] | None:
        flags = list(map(_BOOLEANS.get, values))
        return None if None in flags else flags

    return convert_column


def _date_column(_field: FieldDef) -> ColumnConverter:
    def convert_column(values: Sequence[str]) -> Sequence[str] | None:
        if not all(map(_PLAIN_DATE.match, values)):
            return None
        try:
            deque(map(date.fromisoformat, values), maxlen=0)  # only checks that each is a real date
        except ValueError:
            return None
        return values

    return convert_column


def _datetime_column(_field: FieldDef) -> ColumnConverter:
    def convert_column(values: Sequence[str]) -> list[str] | None:
        if not all(map(_UTC_MILLIS.match, values)):
            return None
        try:
            deque(map(datetime.fromisoformat, values), maxlen=0)  # only checks the ranges (month 13, hour 24)
        except ValueError:
            return None
        return [value[:23] + "+0000" for value in values]  # what ``_datetime`` stores for each of them

    return convert_column


def _number_column(field: FieldDef) -> ColumnConverter | None:
    """Plain decimals within the field's digits (no exponent, no more decimals than its scale): ``_number`` stores
    each as its float, with nothing to round and nothing out of range. None for a field without precision."""
    if not field.precision:
        return None
    whole = rf"[0-9]{{1,{field.precision - field.scale}}}" if field.precision > field.scale else "0"
    fraction = rf"(?:\.[0-9]{{1,{field.scale}}})?" if field.scale else ""
    plain = re.compile(rf"-?{whole}{fraction}\Z")

    def convert_column(values: Sequence[str]) -> list[float] | None:
        return list(map(float, values)) if all(map(plain.match, values)) else None

    return convert_column


_COLUMN_BUILDERS: dict[str, Callable[[FieldDef], ColumnConverter | None]] = {
    **dict.fromkeys(("string", "textarea", "email", "phone", "url", "picklist"), _text_column),
    "boolean": _boolean_column,
    "date": _date_column,
    "datetime": _datetime_column,
    **dict.fromkeys(NUMBER_TYPES, _number_column),
}


def column_converter(field: FieldDef) -> ColumnConverter | None:
    """The whole-column shortcut of ``converter(field)`` for CSV text, where one exists."""
    build = _COLUMN_BUILDERS.get(field.type)
    return build(field) if build is not None else None


_BUILDERS: dict[str, Callable[[FieldDef], Converter]] = {
    "picklist": _picklist,
    "multipicklist": _multipicklist,
    "boolean": _boolean,
    "int": _integer,
    "date": _date,
    "datetime": _datetime,
    "time": _time,
    "base64": _base64,
    "address": _as_is,
    "location": _as_is,
    **dict.fromkeys(NUMBER_TYPES, _number),
}


def converter(field: FieldDef, schema: Schema) -> Converter:
    """The converter of ``field``: request value (never None) → stored value, or the field's error."""
    if field.type == "reference":
        return _reference(field, schema)
    return _BUILDERS.get(field.type, _text)(field)


def type_error(field: FieldDef, value: Any, source: str) -> RecordError | ApiError:
    """What a value that is not of the field's type becomes for ``source`` (see the module docstring)."""
    if source == "csv":
        return RecordError(
            "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field.label}: value not of required type: {value}", [field.name]
        )
    return json_parser_error(_DESERIALIZE_NAMES.get(field.type, "string"), value)


def json_parser_error(kind: str, value: Any) -> ApiError:
    """Salesforce's answer to a JSON value its deserialiser cannot read as ``kind``.

    Real messages end with the position in the body ("at [line:1, column:12]"); the store never sees the
    raw body, so the position is left out rather than invented.
    """
    token, shown = _json_token(value)
    return ApiError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from {token} value {shown} or request may be missing a required field",
    )


def _json_token(value: Any) -> tuple[str, str]:
    if isinstance(value, bool):
        return ("VALUE_TRUE" if value else "VALUE_FALSE"), str(value).lower()
    if isinstance(value, int):
        return "VALUE_NUMBER_INT", str(value)
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT", repr(value)
    if isinstance(value, Decimal):
        return "VALUE_NUMBER_FLOAT", str(value)
    if isinstance(value, dict):
        return "START_OBJECT", "{"
    if isinstance(value, list):
        return "START_ARRAY", "["
    return "VALUE_STRING", str(value)


# ------------------------------------------------------------------------------------------ records
class Lookup(NamedTuple):
    """A reference set through the parent's external id (``Account.External_Id__c`` / ``{"Account": {...}}``).

    A tuple, because a Bulk job makes one a row."""

    field: FieldDef  # the reference field on the child, e.g. AccountId
    parent: ObjectDef
    parent_field: FieldDef
    value: Any  # the parent's external id value, converted; None clears the reference


class ParsedRow:
    """One request row read into stored values, with its first record-level error if any.

    Everything but ``values`` is usually absent, so it defaults on the class: a row costs one dict.
    """

    id_value: Any = None
    lookups: list[Lookup] | None = None
    not_createable: list[str] | None = None
    not_updateable: list[str] | None = None
    error: RecordError | None = None

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = {} if values is None else values


# Column kinds a request key can resolve to.
_FIELD, _ID, _LOOKUP, _RELATIONSHIP, _SKIP = range(5)
# A CSV cell that sets nothing: empty (the field is left as it is) or holding a value that failed.
_UNSET: Any = object()


@dataclass(frozen=True)
class _Column:
    kind: int
    field: FieldDef | None = None
    convert: Converter | None = None
    parent: ObjectDef | None = None
    parent_field: FieldDef | None = None
    parent_convert: Converter | None = None
    fast: ColumnConverter | None = None  # the whole-column shortcut of ``convert`` or ``parent_convert``


@dataclass
class _Plan:
    keys: set[str]
    fields: list[tuple[str, str, FieldDef, Converter, ColumnConverter | None]]
    others: list[tuple[str, _Column]]
    not_createable: list[str]
    not_updateable: list[str]


class RecordParser:
    """Reads rows of one object from one source (``json`` or ``csv``), resolving each key once.

    Keys are matched case-insensitively. A key that names nothing on the object is a whole-request
    ``INVALID_FIELD``, raised before anything is saved. JSON rows are read one by one (``parse``); CSV rows
    a batch at a time, column by column (``parse_table``), since a Bulk job sends a million of them.
    """

    def __init__(self, obj: ObjectDef, schema: Schema, source: str) -> None:
        if source not in ("json", "csv"):
            raise ValueError(f"unknown source {source!r}")
        self.obj = obj
        self.schema = schema
        self.source = source
        self._columns: dict[str, _Column] = {}
        self._converters: dict[str, Converter] = {}
        self._last_plan: _Plan | None = None

    def converter(self, field: FieldDef) -> Converter:
        found = self._converters.get(field.name)
        if found is None:
            found = self._converters[field.name] = converter(field, self.schema)
        return found

    def _fast(self, field: FieldDef) -> ColumnConverter | None:
        return column_converter(field) if self.source == "csv" else None

    def _resolve(self, key: str) -> _Column:
        lower = key.lower()
        if lower == "id":
            column = _Column(_ID)
        elif lower == "attributes" and self.source == "json":
            column = _Column(_SKIP)
        elif (field := self.obj.field(key)) is not None:
            column = _Column(_FIELD, field, self.converter(field), fast=self._fast(field))
        elif self.source == "json" and (ref := self.obj.relationship(key)) is not None:
            column = _Column(_RELATIONSHIP, ref)
        elif self.source == "csv" and "." in key:
            relationship, _, parent_key = key.partition(".")
            ref = self.obj.relationship(relationship)
            if ref is None:
                raise no_such_column(key, self.obj)
            parent, parent_field = self._parent_key(ref, None, parent_key)
            convert = self._parent_converter(parent, parent_field)
            fast = self._fast(parent_field) if parent_field.type != "id" else None
            column = _Column(_LOOKUP, ref, None, parent, parent_field, convert, fast)
        else:
            raise no_such_column(key, self.obj)
        self._columns[key] = column
        return column

    def _parent_key(self, ref: FieldDef, type_name: str | None, key: str) -> tuple[ObjectDef, FieldDef]:
        """The parent object and its matching field for a foreign key through ``ref``."""
        names = [type_name] if type_name else list(ref.reference_to)
        parent = next((p for p in map(self.schema.get, names) if p is not None), None)
        if parent is None or (type_name and parent.name not in {n for n in ref.reference_to}):
            raise no_such_column(f"{ref.relationship_name}.{key}", self.obj)
        parent_field = parent.field(key)
        if parent_field is None:
            raise no_such_column(key, parent)
        if not usable_as_key(parent_field):
            raise not_an_external_id(parent_field.name, parent)
        return parent, parent_field

    def _parent_converter(self, parent: ObjectDef, field: FieldDef) -> Converter:
        return converter(field, self.schema) if field.type != "id" else _parent_id(parent)

    def _plan(self, keys: Sequence[str]) -> _Plan:
        """How to read rows with these keys; reused while rows keep the same keys (every CSV row does)."""
        if self._last_plan is None or keys != self._last_plan.keys:
            columns = [(key, self._columns.get(key) or self._resolve(key)) for key in keys]
            fields = [(key, c) for key, c in columns if c.field and c.convert and c.kind == _FIELD]
            self._last_plan = _Plan(
                keys=set(keys),
                fields=[(key, c.field.name, c.field, c.convert, c.fast) for key, c in fields if c.field and c.convert],
                others=[(key, c) for key, c in columns if c.kind not in (_FIELD, _SKIP)],
                not_createable=[c.field.name for _, c in fields if c.field and not c.field.createable],
                not_updateable=[c.field.name for _, c in fields if c.field and not c.field.updateable],
            )
        return self._last_plan

    def parse(self, row: dict[str, Any]) -> ParsedRow:
        """Read one row. Whole-request errors raise ``ApiError``; the row's own first error is kept on it."""
        if self.source == "csv":
            return self.parse_table(list(row), [list(row.values())])[0]
        plan = self._plan(row.keys())  # type: ignore[arg-type]  # a keys view compares with the plan's set
        out = ParsedRow()
        values = out.values
        for key, name, field, convert, _fast in plan.fields:
            raw = row[key]
            if raw is None or raw == "":
                values[name] = None  # Salesforce stores an empty string as null
            else:
                try:
                    values[name] = convert(raw)
                except RecordError as exc:
                    out.error = out.error or exc
                except NotOfType:
                    raise type_error(field, raw, self.source) from None
        _note_unwritable(plan, out)
        for key, column in plan.others:
            raw = row[key]
            if column.kind == _ID:
                out.id_value = raw
            else:
                self._relationship(out, column.field, raw)
        return out

    def parse_table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[ParsedRow]:
        """Read CSV rows (cells in ``header`` order), column by column; one ParsedRow a row, as ``parse`` reads.

        An empty cell leaves its field as it is; ``#N/A`` sets it to null. Each row keeps its first error in
        column order (fields first, then Id and foreign keys), like a row read cell by cell.
        """
        if not rows:
            return []  # nothing is read, so no column is resolved (and none can fail the request)
        plan = self._plan(header)
        at = {key: j for j, key in enumerate(header)}
        cells = list(zip(*rows, strict=True))  # one tuple a column
        errors: list[RecordError | None] = [None] * len(rows)
        names, columns = [], []
        for key, name, field, convert, fast in plan.fields:
            names.append(name)
            columns.append(_field_column(cells[at[key]], field, convert, fast, errors))
        gaps = any(_UNSET in column for column in columns)
        if gaps:
            out = [
                ParsedRow({n: v for n, v in zip(names, row, strict=True) if v is not _UNSET})
                for row in zip(*columns, strict=True)
            ]
        elif names:  # every cell set: one dict a row, built without a Python-level loop
            out = list(map(ParsedRow, map(dict, map(zip, repeat(names), zip(*columns, strict=True)))))
        else:
            out = [ParsedRow() for _ in rows]
        for i, error in enumerate(errors):
            if error is not None:
                out[i].error = error
        if plan.not_createable or plan.not_updateable:
            for row in out:
                _note_unwritable(plan, row)
        for key, column in plan.others:
            if column.kind == _ID:
                for row, raw in zip(out, cells[at[key]], strict=True):
                    if raw != "":
                        row.id_value = None if raw == "#N/A" else raw
            else:
                self._lookup_column(out, column, cells[at[key]])
        return out

    def _lookup_column(self, out: list[ParsedRow], column: _Column, cells: Sequence[str]) -> None:
        """``Relationship.Field`` cells: a foreign key each, converted as the parent's field."""
        ref, parent, parent_field, convert = column.field, column.parent, column.parent_field, column.parent_convert
        assert ref is not None and parent is not None and parent_field is not None and convert is not None
        values = _whole_column(cells, convert, column.fast) if "" not in cells and "#N/A" not in cells else None
        if values is None:
            for row, raw in zip(out, cells, strict=True):
                if raw != "":
                    self._add_lookup(row, ref, parent, parent_field, convert, None if raw == "#N/A" else raw)
            return
        # ``tuple.__new__`` is what a NamedTuple's own constructor calls; mapped here, it runs without Python code.
        lookups = map(tuple.__new__, repeat(Lookup), zip(repeat(ref), repeat(parent), repeat(parent_field), values))
        for row, lookup in zip(out, lookups, strict=True):
            if row.lookups is None:
                row.lookups = [lookup]
            else:
                row.lookups.append(lookup)

    def _relationship(self, out: ParsedRow, ref: FieldDef | None, raw: Any) -> None:
        """``{"Account": {"External_Id__c": "A-1"}}``: exactly one matching field besides ``attributes``."""
        assert ref is not None
        if raw is None:
            self._add_lookup(out, ref, None, None, None, None)
            return
        if not isinstance(raw, dict):
            raise json_parser_error(ref.reference_to[0], raw)
        attributes = raw.get("attributes") if isinstance(raw.get("attributes"), dict) else {}
        keys = [k for k in raw if k != "attributes"]
        if len(keys) != 1:
            # Inferred: a foreign key names the parent by one field; anything else cannot be resolved.
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"A foreign key for {ref.relationship_name} must name exactly one external id field",
            )
        parent, parent_field = self._parent_key(ref, attributes.get("type"), keys[0])
        value = raw[keys[0]]
        self._add_lookup(out, ref, parent, parent_field, self._parent_converter(parent, parent_field), value)

    def _add_lookup(
        self,
        out: ParsedRow,
        ref: FieldDef | None,
        parent: ObjectDef | None,
        parent_field: FieldDef | None,
        convert: Converter | None,
        raw: Any,
    ) -> None:
        assert ref is not None
        if raw is None or raw == "" or parent is None or parent_field is None or convert is None:
            out.values[ref.name] = None
            return
        try:
            value = convert(raw)
        except RecordError as exc:
            out.error = out.error or exc
            return
        except NotOfType:
            error = type_error(parent_field, raw, self.source)
            if isinstance(error, ApiError):
                raise error from None
            out.error = out.error or error  # a RecordError: CSV type errors fail only their row
            return
        out.lookups = [*(out.lookups or ()), Lookup(ref, parent, parent_field, value)]


def _note_unwritable(plan: _Plan, out: ParsedRow) -> None:
    """The fields of the row that cannot be created or updated, for the store to refuse per operation."""
    if plan.not_createable:
        out.not_createable = [name for name in plan.not_createable if name in out.values] or None
    if plan.not_updateable:
        out.not_updateable = [name for name in plan.not_updateable if name in out.values] or None


def _whole_column(cells: Sequence[str], convert: Converter, fast: ColumnConverter | None) -> Sequence[Any] | None:
    """Every cell converted, or None when one fails (the caller then goes cell by cell for the errors)."""
    if fast is not None and (converted := fast(cells)) is not None:
        return converted
    try:
        return list(map(convert, cells))
    except (RecordError, NotOfType):
        return None


def _field_column(
    cells: Sequence[str],
    field: FieldDef,
    convert: Converter,
    fast: ColumnConverter | None,
    errors: list[RecordError | None],
) -> Sequence[Any]:
    """One CSV column read into stored values (``_UNSET`` where a cell sets nothing); a failing cell's error
    becomes its row's in ``errors`` unless the row already has one."""
    if "" not in cells and "#N/A" not in cells and (converted := _whole_column(cells, convert, fast)) is not None:
        return converted
    out: list[Any] = []
    for i, raw in enumerate(cells):
        if raw == "":
            out.append(_UNSET)
        elif raw == "#N/A":
            out.append(None)
        else:
            try:
                out.append(convert(raw))
                continue
            except RecordError as exc:
                error: RecordError = exc
            except NotOfType:
                error = type_error(field, raw, "csv")  # type: ignore[assignment]  # always a RecordError for CSV
            errors[i] = errors[i] or error
            out.append(_UNSET)
    return out


def _parent_id(parent: ObjectDef) -> Converter:
    """A parent named by its Id through a relationship (``Account.Id``): any id of that object."""

    def convert(value: Any) -> str:
        record_id = normalize_id(value) if isinstance(value, str) else None
        if record_id is None or record_id[:3] != parent.key_prefix:
            raise malformed_id(value)
        return record_id

    return convert
