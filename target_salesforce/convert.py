"""Turning what singer-sdk hands a sink into the JSON value a Salesforce field accepts, or rejecting it.

A converter is built once per column from the field's describe and then called for every record, so each one is a
closure with its limits pre-computed and a fast path for the common case. Rejecting here, with Salesforce's own error
codes, saves an API call per bad record and names the field and the reason the way Salesforce would.

Decisions (Salesforce leaves room for them or a reason is given):
- Text length counts UTF-16 code units, as Salesforce (a Java platform) does: an emoji outside the Basic
  Multilingual Plane counts as two. Over-long text is rejected, never truncated.
- dict/list values for a text field are sent as compact JSON rather than rejected: taps emit JSON columns, and a
  long text field holding the JSON is what users expect; the length limit still applies.
- Numbers are rounded half-up to the field's scale. The API would store the extra digits while the UI shows the
  rounded value; rounding makes what is stored match what users see. An integer part longer than
  precision - scale is rejected (NUMBER_OUTSIDE_VALID_RANGE).
- Booleans accept true/false, the strings "true"/"false"/"1"/"0" (xsd:boolean, any case) and the numbers 0/1
  (tinyint columns).
- Naive datetimes are UTC; aware ones are converted to UTC; milliseconds are truncated, not rounded, so a value
  never moves into the next second. A datetime for a date field keeps the date as written (no zone shift).
- Time fields have no time zone: a time with a non-UTC offset is rejected rather than silently shifted.
- Restricted picklist values match active values exactly, else ignoring case (the canonical value is sent).
- An empty list for a multi-select picklist means "no values" and is sent as null; restricted multi-select values
  are checked one by one, blanks around ``;`` dropped.
"""

from __future__ import annotations

import datetime
import re
import sys
from collections import deque
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from itertools import compress, repeat
from operator import add, attrgetter, is_
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from target_salesforce.mapping import WritePlan

Converter = Callable[[Any], Any]
# A whole column of a block of records at once: what the field's converter returns for each value, or None when some
# value needs the record-by-record path (a null, an absent field, an unusual class, a value to reject). Never raises.
ColumnConverter = Callable[[list[Any]], list[Any] | None]

STRING_TOO_LONG = "STRING_TOO_LONG"
INVALID_TYPE = "INVALID_TYPE_ON_FIELD_IN_RECORD"
INVALID_PICKLIST = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
INVALID_EMAIL = "INVALID_EMAIL_ADDRESS"
MALFORMED_ID = "MALFORMED_ID"
OUT_OF_RANGE = "NUMBER_OUTSIDE_VALID_RANGE"

_PREVIEW_CHARS = 40
# The plain forms columns are read in whole: a date as Salesforce reads it, a datetime with milliseconds or finer.
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_MILLIS_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}")
# 15 case-sensitive characters, optionally the 3-character case checksum (read case-insensitively by Salesforce).
_ID_SHAPE = re.compile(r"[0-9A-Za-z]{15}(?:[A-Za-z0-5]{3})?\Z")
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s.][^@\s]*\.[^@\s.]+\Z")
# Room for any value Salesforce can hold (18 digits) plus a wide margin, independent of the thread's context.
_DECIMAL_CONTEXT = Context(prec=60, rounding=ROUND_HALF_UP)
_UTC = datetime.timezone.utc
# xsd:boolean's lexical space, which Salesforce's CSV and JSON readers accept for checkboxes.
_BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False}
_INT_LIMIT = 2**31  # Salesforce int fields are 32-bit; describe's ``digits`` may narrow that
_ABSENT = object()  # a field the record does not have
# Compact JSON text for dict/list values of text fields: a Decimal stays the exact number the tap sent (json.dumps
# would need it turned into a float first, losing digits past the 15th); dates and times are ISO 8601 text.
_JSON_TEXT = msgspec.json.Encoder(decimal_format="number")
# A decimal of at most this many significant digits survives a trip through a binary64 float unchanged (C's
# DBL_DIG), so such a number may be sent as a float; a longer one is sent as its Decimal.
_FLOAT_DIGITS = 15


class ValueRejected(Exception):
    """One field value Salesforce would refuse, with the error code it would answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RecordRejected(Exception):
    """A record with one or more bad values; every bad field is named so the user fixes them all at once."""

    def __init__(self, fields: list[str], code: str, message: str) -> None:
        super().__init__(message)
        self.fields = fields
        self.code = code
        self.message = message


def _preview(value: Any) -> str:
    """The value as shown in a message, capped so a megabyte of text never lands in a log or reject file."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


def _invalid_type(name: str, value: Any) -> ValueRejected:
    return ValueRejected(INVALID_TYPE, f"{name}: value not of required type: {_preview(value)}")


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _as_text(value: Any, name: str) -> str:
    """A non-str value in the text form a user would expect to see in the field."""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        try:
            return _JSON_TEXT.encode(value).decode()
        except (TypeError, ValueError):
            raise _invalid_type(name, value) from None
    raise _invalid_type(name, value)


def _half_length(field: Mapping[str, Any]) -> int:
    """The longest text certain to fit the field without counting its UTF-16 units: half its length (a character is
    at most two units), any length when it has none."""
    limit = int(field.get("length") or 0)
    return limit // 2 if limit else sys.maxsize


def _text(field: Mapping[str, Any], check: Callable[[str, str], str] | None = None) -> Converter:
    """String-like fields; ``check`` validates (and may canonicalise) the text before the length check.

    The length is in UTF-16 units, as Salesforce counts; a text of at most half the limit in characters (at most 2
    units each) fits without counting, which spares nearly every value the encoding.
    """
    name = field["name"]
    limit = int(field.get("length") or 0)
    half = _half_length(field)

    def convert(value: Any) -> str:
        text = value if value.__class__ is str else _as_text(value, name)
        if check is not None:
            text = check(text, name)
        if len(text) > half and _utf16_length(text) > limit:
            raise ValueRejected(STRING_TOO_LONG, f"{name}: data value too large: {_preview(text)} (max length={limit})")
        return text

    return convert


def _check_email(text: str, name: str) -> str:
    if not _EMAIL_SHAPE.match(text):
        raise ValueRejected(INVALID_EMAIL, f"{name}: invalid email address: {_preview(text)}")
    return text


def _picklist_check(field: Mapping[str, Any]) -> Callable[[str, str], str] | None:
    if not field.get("restrictedPicklist"):
        return None
    active = [p["value"] for p in field.get("picklistValues") or () if p.get("active", True)]
    exact = set(active)
    by_lower: dict[str, str] = {}
    for value in active:
        by_lower.setdefault(value.lower(), value)

    def canonical(value: str, name: str) -> str:
        found = value if value in exact else by_lower.get(value.lower())
        if found is None:
            raise ValueRejected(INVALID_PICKLIST, f"{name}: bad value for restricted picklist field: {_preview(value)}")
        return found

    return canonical


def _picklist(field: Mapping[str, Any]) -> Converter:
    return _text(field, _picklist_check(field))


def _multipicklist(field: Mapping[str, Any]) -> Converter:
    restricted = _picklist_check(field)

    def check_each(text: str, name: str) -> str:
        return ";".join(restricted(part.strip(), name) for part in text.split(";") if part.strip())

    as_text = _text(field, check_each if restricted is not None else None)

    def convert(value: Any) -> str | None:
        if isinstance(value, (list, tuple)):
            if not value:
                return None
            value = ";".join(v if v.__class__ is str else _as_text(v, field["name"]) for v in value)
        return as_text(value)

    return convert


def _email(field: Mapping[str, Any]) -> Converter:
    return _text(field, _check_email)


def _record_id(field: Mapping[str, Any]) -> Converter:
    name = field["name"]

    def convert(value: Any) -> str:
        if value.__class__ is not str or not _ID_SHAPE.match(value):
            raise ValueRejected(MALFORMED_ID, f"{name}: id value of incorrect type: {_preview(value)}")
        return value

    return convert


def _boolean(field: Mapping[str, Any]) -> Converter:
    name = field["name"]

    def convert(value: Any) -> bool:
        if value is True or value is False:
            return value
        if value.__class__ is str:
            found = _BOOLEAN_WORDS.get(value.strip().lower())
            if found is not None:
                return found
        elif isinstance(value, (int, Decimal)) and value in (0, 1):
            return value == 1
        raise _invalid_type(name, value)

    return convert


def _to_decimal(value: Any, name: str) -> Decimal:
    """Any number-like value as a finite Decimal; bools are not numbers here."""
    cls = value.__class__
    try:
        if cls is Decimal:
            number = value
        elif cls is int:
            return Decimal(value)
        elif cls is float:
            number = Decimal(repr(value))
        elif cls is str:
            number = Decimal(value.strip())
        else:
            raise _invalid_type(name, value)
    except InvalidOperation:
        raise _invalid_type(name, value) from None
    if not number.is_finite():
        raise _invalid_type(name, value)
    return number


def _out_of_range(name: str, value: Any) -> ValueRejected:
    return ValueRejected(OUT_OF_RANGE, f"{name}: value outside of valid range on numeric field: {_preview(value)}")


def _integer(field: Mapping[str, Any]) -> Converter:
    name = field["name"]
    digits = int(field.get("digits") or 0)
    bound = min(10**digits, _INT_LIMIT) if digits else _INT_LIMIT

    def convert(value: Any) -> int:
        if value.__class__ is int:
            number = value
        else:
            decimal = _to_decimal(value, name)
            if decimal != decimal.to_integral_value():
                raise _invalid_type(name, value)
            number = int(decimal)
        if not -bound < number < bound:
            raise _out_of_range(name, value)
        return number

    return convert


def _number(field: Mapping[str, Any]) -> Converter:
    """double, currency and percent: rounded to scale, integer part checked, as the exact number to send.

    A number field has up to 18 digits (precision), and Salesforce takes the digits the API is sent, even past
    the field's scale (Salesforce Help, article 000394530: the API stores more decimals than the field allows,
    only a browser's JavaScript rounds long decimals; Appirio, "Salesforce and Decimal Places", 2012: a value set
    through the API is stored and queried back as sent). So nothing is sent through a float, which holds 15 to
    17 significant digits: whatever Salesforce then does with 16 to 18 digits is its own rounding, not ours.
    The value is an int when integral, a float when it has at most 15 significant digits (cheap to encode, and
    its shortest form is that same decimal), else the Decimal itself, which the JSON encoders and the Bulk CSV
    write digit for digit.
    """
    name = field["name"]
    precision = int(field.get("precision") or 0)
    scale = int(field.get("scale") or 0)
    quantum = Decimal(1).scaleb(-scale) if precision else None
    bound = Decimal(10) ** (precision - scale) if precision else None
    # Quantized to the scale, a value's last digit is at 10**-scale: it has at most _FLOAT_DIGITS significant
    # digits when its first digit (its ``adjusted`` exponent) is at most this.
    float_adjusted = _FLOAT_DIGITS - 1 - scale

    def convert(value: Any) -> int | float | Decimal:
        # A JSON fraction arrives as a Decimal: the usual value skips _to_decimal's checks of other types.
        number = value if value.__class__ is Decimal and value.is_finite() else _to_decimal(value, name)
        if quantum is None:
            return _unrounded(number)
        try:
            # context passed by position: as a keyword the call costs twice as much
            number = number.quantize(quantum, None, _DECIMAL_CONTEXT)
        except InvalidOperation:
            raise _out_of_range(name, value) from None
        if not -bound < number < bound:  # type: ignore[operator]
            raise _out_of_range(name, value)
        if number == number.to_integral_value():
            return int(number)
        return float(number) if number.adjusted() <= float_adjusted else number

    return convert


def _unrounded(number: Decimal) -> int | float | Decimal:
    """``_number``'s value for a field without precision (nothing to round to): its digits are counted, since the
    exponent is not known in advance."""
    if number == number.to_integral_value():
        return int(number)
    return float(number) if len(number.as_tuple().digits) <= _FLOAT_DIGITS else number


def _parse_datetime(text: str) -> datetime.datetime:
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(text)


def _date(field: Mapping[str, Any]) -> Converter:
    name = field["name"]

    def convert(value: Any) -> str:
        if value.__class__ is str:
            try:
                parsed = datetime.date.fromisoformat(value)  # most date values: no time part to drop
            except ValueError:
                pass
            else:
                # YYYY-MM-DD, the only form of ten characters with a dash at 7, is already what Salesforce reads
                return value if len(value) == 10 and value[7] == "-" else parsed.isoformat()
            try:
                return _parse_datetime(value).date().isoformat()
            except ValueError:
                pass
        elif isinstance(value, datetime.datetime):
            return value.date().isoformat()
        elif isinstance(value, datetime.date):
            return value.isoformat()
        raise _invalid_type(name, value)

    return convert


def _format_datetime(value: datetime.datetime) -> str:
    """Salesforce's UTC datetime form ``YYYY-MM-DDTHH:MM:SS.sssZ``; a naive value is taken as UTC."""
    if value.tzinfo is not None and value.tzinfo is not _UTC:
        value = value.astimezone(_UTC)
    return value.isoformat(timespec="milliseconds")[:23] + "Z"  # drop any "+00:00"


def _as_sent_in_utc(text: str, moment: datetime.datetime) -> str | None:
    """Salesforce's form of a datetime text already in UTC with milliseconds or finer (``2024-05-01T10:00:00.123456
    +00:00`` or ``...Z``, as taps write timestamps), cut from the text itself; None for any other form.

    ``moment`` is the text as ``fromisoformat`` read it, which vouches for the digits; the separators at their
    places (every third character from the fifth: ``--T::.``) pin the extended calendar form, so the first 23
    characters are the date, the time and the milliseconds (three digits, then at least the zone).
    """
    if moment.tzinfo is _UTC and text[4:20:3] == "--T::." and text[20:23].isdigit():
        return text[:23] + "Z"
    return None


def _datetime(field: Mapping[str, Any]) -> Converter:
    name = field["name"]
    from_text = datetime.datetime.fromisoformat

    def convert(value: Any) -> str:
        try:
            if value.__class__ is str:
                try:
                    moment = from_text(value)  # the usual text: no stripping, no zone letter to replace
                except ValueError:
                    moment = _parse_datetime(value)
                else:
                    as_sent = _as_sent_in_utc(value, moment)
                    if as_sent is not None:
                        return as_sent
                return _format_datetime(moment)
            if isinstance(value, datetime.datetime):
                return _format_datetime(value)
            if isinstance(value, datetime.date):
                return _format_datetime(datetime.datetime(value.year, value.month, value.day))
        except (ValueError, OverflowError):
            pass  # unparseable text, or a moment outside datetime's range once moved to UTC
        raise _invalid_type(name, value)

    return convert


def _time(field: Mapping[str, Any]) -> Converter:
    name = field["name"]

    def convert(value: Any) -> str:
        parsed = value
        if value.__class__ is str:
            text = value.strip()
            try:
                parsed = datetime.time.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
            except ValueError:
                raise _invalid_type(name, value) from None
        if not isinstance(parsed, datetime.time) or parsed.utcoffset() not in (None, datetime.timedelta(0)):
            raise _invalid_type(name, value)
        return parsed.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"

    return convert


_FACTORIES: dict[str, Callable[[Mapping[str, Any]], Converter]] = {
    "boolean": _boolean,
    "int": _integer,
    "double": _number,
    "currency": _number,
    "percent": _number,
    "date": _date,
    "datetime": _datetime,
    "time": _time,
    "id": _record_id,
    "reference": _record_id,
    "email": _email,
    "picklist": _picklist,
    "multipicklist": _multipicklist,
}


def converter_for(field: Mapping[str, Any]) -> Converter:
    """The converter for one field describe; every type not listed (string, textarea, phone, url…) is text.

    Converters take non-null values only: what a null means depends on the null policy and the sync mode, which
    ``RecordConverter`` knows, and keeping the check out of the converters keeps them lean.
    """
    return _FACTORIES.get(field.get("type", "string"), _text)(field)


def _classes(values: list[Any]) -> set[type]:
    return set(map(type, values))


def _text_column(half: int, check: Callable[[list[str]], bool] | None = None) -> ColumnConverter:
    """Text values as they are, when every one is a str of at most ``half`` characters (``_half_length``) and passes
    ``check``; the text converter returns such values unchanged."""

    def convert_column(values: list[Any]) -> list[Any] | None:
        if _classes(values) != {str} or max(map(len, values), default=0) > half:
            return None
        return values if check is None or check(values) else None

    return convert_column


def _all_emails(values: list[str]) -> bool:
    return all(map(_EMAIL_SHAPE.match, values))


def _date_column(values: list[Any]) -> list[Any] | None:
    """Dates already in Salesforce's form, which ``_date`` returns as they are."""
    if _classes(values) != {str} or not all(map(_PLAIN_DATE.match, values)):
        return None
    try:
        deque(map(datetime.date.fromisoformat, values), maxlen=0)  # only checks that each is a real date
    except ValueError:
        return None
    return values


def _datetime_column(values: list[Any]) -> list[Any] | None:
    """UTC datetime texts with milliseconds or finer, cut to Salesforce's form as ``_as_sent_in_utc`` cuts each."""
    if _classes(values) != {str} or not all(map(_MILLIS_DATETIME.match, values)):
        return None
    try:
        moments = list(map(datetime.datetime.fromisoformat, values))
    except ValueError:
        return None
    if not all(map(is_, map(attrgetter("tzinfo"), moments), repeat(_UTC))):
        return None
    return list(map(add, map(str.__getitem__, values, repeat(slice(23))), repeat("Z")))


def _boolean_column(values: list[Any]) -> list[Any] | None:
    return values if _classes(values) == {bool} else None


def _each(convert: Converter) -> ColumnConverter:
    """Any other column: each value through the field's converter, in one ``map``."""

    def convert_column(values: list[Any]) -> list[Any] | None:
        if None in values:
            return None
        try:
            return list(map(convert, values))
        except ValueRejected:
            return None

    return convert_column


def _number_column(field: Mapping[str, Any], convert: Converter) -> ColumnConverter:
    """Decimals rounded to the field's scale a column at a time, each sent as ``_number`` sends it, when every value
    is a finite Decimal that, rounded, is in range and has at most _FLOAT_DIGITS significant digits; any other
    column goes through ``convert`` value by value (``_each``).

    Rounded, a number whose first digit is at 10**k (its ``adjusted``) is under 10**(k + 1): one maximum over the
    column tells both range and digits. Such a number goes as a float, or as an int when integral, and a float of at
    most 15 significant digits is integral exactly when its decimal is.
    """
    each = _each(convert)
    precision, scale = int(field.get("precision") or 0), int(field.get("scale") or 0)
    if not precision:
        return each
    quantum = Decimal(1).scaleb(-scale)
    limit = min(_FLOAT_DIGITS - 1 - scale, precision - scale - 1)

    def convert_column(values: list[Any]) -> list[Any] | None:
        if _classes(values) != {Decimal} or not all(map(Decimal.is_finite, values)):
            return each(values)
        try:
            rounded = list(map(Decimal.quantize, values, repeat(quantum), repeat(None), repeat(_DECIMAL_CONTEXT)))
        except InvalidOperation:
            return each(values)
        if max(map(Decimal.adjusted, rounded), default=limit) > limit:
            return each(values)
        numbers: list[Any] = list(map(float, rounded))
        for i in compress(range(len(numbers)), map(float.is_integer, numbers)):
            numbers[i] = int(rounded[i])
        return numbers

    return convert_column


_COLUMN_CONVERTERS: dict[str, ColumnConverter] = {
    "date": _date_column,
    "datetime": _datetime_column,
    "boolean": _boolean_column,
}


def column_converter_for(field: Mapping[str, Any], convert: Converter) -> ColumnConverter:
    """The whole-column form of ``convert``, the converter ``converter_for`` built for ``field``."""
    kind = field.get("type", "string")
    if kind == "email":
        return _text_column(_half_length(field), _all_emails)
    if kind not in _FACTORIES:
        return _text_column(_half_length(field))
    if _FACTORIES[kind] is _number:
        return _number_column(field, convert)
    return _COLUMN_CONVERTERS.get(kind) or _each(convert)


def unchanged_up_to(field: Mapping[str, Any]) -> int:
    """The longest str a column sends as it is, so the record converter copies it without calling the converter:
    for plain text, half the field's length (see ``_text``), any length without a limit; -1 for other types."""
    return -1 if field.get("type", "string") in _FACTORIES else _half_length(field)


class RecordConverter:
    """A record's payload: object field (or ``Rel.ExtField``) → value, for the columns the record has.

    Built once per plan and null policy, so that every per-column decision is taken once, not per record. A null is
    left out with ``skip``, and on insert (there is nothing to clear). With ``clear`` it is sent as null; for a
    relationship column the lookup field itself (``AccountId``) is cleared, because a parent reference cannot name
    "no parent". The match column is never cleared: a record without its match value is the writer's to reject.
    """

    def __init__(self, plan: WritePlan, null_policy: str) -> None:
        clear = null_policy == "clear" and plan.sync_mode != "insert"
        # (source field, payload key, converter, payload key a null clears or None when a null is left out,
        # longest str sent unchanged)
        self._columns = [
            (
                c.source,
                c.target,
                c.convert,
                (c.lookup_field or c.target) if clear and not c.is_match else None,
                unchanged_up_to(c.field),
            )
            for c in plan.columns
        ]
        self._targets = [c.target for c in plan.columns]
        self._column_paths = [(c.source, column_converter_for(c.field, c.convert)) for c in plan.columns]

    def __call__(self, record: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        bad: list[tuple[str, ValueRejected]] = []
        get, absent = record.get, _ABSENT  # locals: this loop runs for every column of every record
        for source, target, convert, null_target, unchanged in self._columns:
            value = get(source, absent)
            if value.__class__ is str and len(value) <= unchanged:
                out[target] = value
            elif value is None:
                if null_target is not None:
                    out[null_target] = None
            elif value is not absent:
                try:
                    out[target] = convert(value)
                except ValueRejected as exc:
                    bad.append((target, exc))
        if bad:
            raise RecordRejected([t for t, _ in bad], bad[0][1].code, "; ".join(exc.message for _, exc in bad))
        return out

    def block(self, records: list[dict[str, Any]]) -> list[list[Any]] | None:
        """The payloads of a block of records, a column at a time: per column, the value of each record, as
        ``__call__`` converts it. None when some record needs ``__call__`` (a null, a missing field, a value to
        reject): each record of the block is then converted on its own.

        Converting a column in one go runs its checks over all its values in C, where ``__call__`` pays a Python
        loop step and a converter call for each field of each record.
        """
        if not self._column_paths:
            return None  # no column: every record is an empty payload, which __call__ gives
        columns = []
        for source, convert_column in self._column_paths:
            converted = convert_column(list(map(dict.get, records, repeat(source))))
            if converted is None:
                return None
            columns.append(converted)
        return columns

    def rows(self, columns: list[list[Any]]) -> list[dict[str, Any]]:
        """Each record's payload from the columns ``block`` gave."""
        return list(map(dict, map(zip, repeat(self._targets), zip(*columns, strict=True))))

    @property
    def targets(self) -> list[str]:
        """The payload keys in column order: the keys of each payload ``rows`` builds."""
        return self._targets
