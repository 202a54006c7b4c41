"""SOQL for the emulator: parse a query, compile it to one parameterised SQLite SELECT, shape rows as Salesforce.

The subset is what integration clients send: a field list with parent-relationship paths or ``COUNT()``, one
object, ``WHERE`` with comparisons, ``IN``, ``LIKE``, ``AND``/``OR``/``NOT``, ``ORDER BY``, ``LIMIT``, ``OFFSET``.
Anything else is refused the way Salesforce refuses a malformed query, so a client that depends on more fails
here rather than against a real org.

Compiling to a single SQL statement keeps large results fast (the 100k-row case is dominated by SQLite), and
every literal travels as a parameter, so no value can change the statement's meaning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .ids import normalize_id
from .schema import FieldDef, ObjectDef, Schema
from .wire import ApiError

if TYPE_CHECKING:
    from .store import Store

# Salesforce refuses an OFFSET above this (NUMBER_OUTSIDE_VALID_RANGE).
MAX_OFFSET = 2000

# How far either side of the error Salesforce quotes the query in an error message. Read off real error
# bodies: the excerpt starts about 30 characters before the error column and ends about 30 after it, both
# widened to whole words (words end at whitespace or commas).
_EXCERPT_REACH = 30
_WORD_BREAKS = " \t\r\n,"

_NUMERIC_TYPES = frozenset({"int", "double", "currency", "percent"})
_ID_TYPES = frozenset({"id", "reference"})
# Field types whose filter values are quoted strings (everything not listed here is text).
_UNQUOTED_TYPES = _NUMERIC_TYPES | {"boolean", "date", "datetime", "time"}
# The type name Salesforce's "value of filter criterion" message uses for a field type.
_FILTER_TYPE_NAMES = {
    "boolean": "boolean",
    "int": "int",
    "double": "double",
    "currency": "double",
    "percent": "double",
    "date": "date",
    "datetime": "dateTime",
    "time": "time",
    "id": "id",
    "reference": "id",
}


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


def _located(soql: str, pos: int, text: str) -> str:
    """Salesforce's query error message: an excerpt of the line, a caret under ``pos``, the row and column."""
    line_start = soql.rfind("\n", 0, pos) + 1
    line_end = soql.find("\n", pos)
    line = soql[line_start : len(soql) if line_end < 0 else line_end]
    col = pos - line_start
    start = max(col - _EXCERPT_REACH, 0)
    if start < col and line[start] in _WORD_BREAKS:
        while start < col and line[start] in _WORD_BREAKS:
            start += 1
    else:
        while start > 0 and line[start - 1] not in _WORD_BREAKS:
            start -= 1
    end = min(col + _EXCERPT_REACH, len(line))
    while end < len(line) and line[end] not in _WORD_BREAKS:
        end += 1
    row = soql.count("\n", 0, pos) + 1
    return f"\n{line[start:end].rstrip()}\n{' ' * (col - start)}^\nERROR at Row:{row}:Column:{col + 1}\n{text}"


def _naming_hint(kind: str, suffix: str, name_of: str) -> str:
    """The advice Salesforce appends to every unknown-name error."""
    return (
        f"If you are attempting to use a custom {kind}, be sure to append the '{suffix}' after the {name_of} name. "
        "Please reference your WSDL or the describe call for the appropriate names."
    )


def _malformed(soql: str, pos: int, text: str) -> ApiError:
    return ApiError(400, "MALFORMED_QUERY", _located(soql, pos, text))


# ---------------------------------------------------------------------------------------------------------
# Lexer
# ---------------------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
# SOQL's string escapes (https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/
# sforce_api_calls_soql_select_quotedstringescapes.htm); the letters are accepted in either case.
# \b is documented as "Bell" but the localised docs say backspace, as in Java: backspace it is (inferred).
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_LIKE_ESCAPES = frozenset("%_")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
# One escape of a literal already checked by the lexer: ``\uXXXX`` or a backslash and one character.
_ESCAPE_RE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.DOTALL)


@dataclass(frozen=True)
class Token:
    kind: str  # datetime, date, number, ident, op, punct, string, eof
    text: str  # as written; for a string the body between the quotes, escapes undecoded
    pos: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words

    def shown(self) -> str:
        """How Salesforce names the token in "unexpected token" messages."""
        if self.kind == "eof":
            return "<EOF>"
        return "'" + (f"'{self.text}'" if self.kind == "string" else self.text) + "'"


def _string_end(soql: str, start: int) -> int:
    """Index just past the closing quote of the literal opening at ``start``; refuses bad escapes."""
    i = start + 1
    while i < len(soql):
        ch = soql[i]
        if ch == "'":
            return i + 1
        if ch == "\\":
            nxt = soql[i + 1 : i + 2]
            if nxt == "u" and _HEX4.match(soql, i + 2):
                i += 6
                continue
            if nxt.lower() not in _ESCAPES and nxt not in _LIKE_ESCAPES:
                end = soql.find("'", i + 1)
                literal = soql[start : len(soql) if end < 0 else end + 1]
                raise _malformed(
                    soql,
                    start,
                    f"Invalid string literal {literal}. Illegal character sequence '\\{nxt}' in string literal.",
                )
            i += 2
            continue
        i += 1
    # An unclosed quote is a lone quote token to Salesforce's lexer: "unexpected token: '''".
    raise _malformed(soql, start, "unexpected token: '''")


def tokenize(soql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(soql):
        if soql[pos] == "'":
            end = _string_end(soql, pos)
            tokens.append(Token("string", soql[pos + 1 : end - 1], pos))
            pos = end
            continue
        match = _TOKEN_RE.match(soql, pos)
        if match is None:
            raise _malformed(soql, pos, f"unexpected token: '{soql[pos]}'")
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup or "", match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "", len(soql)))
    return tokens


def unescape(body: str, *, like: bool) -> str:
    """The value of a string literal's body; for ``like`` a SQLite LIKE pattern with ``\\`` as its escape.

    ``\\%`` and ``\\_`` mean a literal percent or underscore only in LIKE. Salesforce documents them as
    LIKE-only; elsewhere we keep them as written, backslash included, rather than guess at an error (inferred).
    """

    def decode(match: re.Match[str]) -> str:
        seq = match.group(1)
        if seq in _LIKE_ESCAPES:
            return "\\" + seq
        value = chr(int(seq[1:], 16)) if len(seq) == 5 else _ESCAPES[seq.lower()]
        return "\\" + value if like and value in "%_\\" else value

    return _ESCAPE_RE.sub(decode, body)


# ---------------------------------------------------------------------------------------------------------
# Syntax tree and parser
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    path: tuple[str, ...]
    pos: int


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    op: str  # = != < <= > >= IN NOT_IN LIKE
    values: tuple[Token, ...]


@dataclass(frozen=True)
class Junction:
    op: str  # AND / OR
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Negation:
    item: Condition


Condition = Comparison | Junction | Negation


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    object_name: str
    object_pos: int
    fields: tuple[FieldRef, ...]  # empty for COUNT()
    where: Condition | None = None
    order: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None

    @property
    def is_count(self) -> bool:
        return not self.fields


_COMPARISON_OPS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _Parser:
    """Recursive descent over the token list; every refusal names the offending token, as Salesforce does."""

    def __init__(self, soql: str) -> None:
        self.soql = soql
        self.tokens = tokenize(soql)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def unexpected(self, token: Token | None = None) -> ApiError:
        token = token or self.peek()
        return _malformed(self.soql, token.pos, f"unexpected token: {token.shown()}")

    def accept(self, *words: str) -> bool:
        if self.peek().is_word(*words):
            self.i += 1
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise self.unexpected()

    def accept_punct(self, text: str) -> bool:
        token = self.peek()
        if token.kind == "punct" and token.text == text:
            self.i += 1
            return True
        return False

    def expect_punct(self, text: str) -> None:
        if not self.accept_punct(text):
            raise self.unexpected()

    def query(self) -> Query:
        self.expect("SELECT")
        fields = self.select_list()
        self.expect("FROM")
        source = self.take()
        if source.kind != "ident" or "." in source.text:
            raise self.unexpected(source)
        where = self.condition() if self.accept("WHERE") else None
        order: tuple[OrderItem, ...] = ()
        if self.accept("ORDER"):
            self.expect("BY")
            order = self.order_list()
        limit = self.integer() if self.accept("LIMIT") else None
        offset = None
        if self.accept("OFFSET"):
            token = self.peek()
            offset = self.integer()
            if offset > MAX_OFFSET:
                raise ApiError(
                    400,
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    _located(self.soql, token.pos, f"Maximum SOQL offset allowed is {MAX_OFFSET}"),
                )
        if self.peek().kind != "eof":
            raise self.unexpected()
        return Query(source.text, source.pos, fields, where, order, limit, offset)

    def select_list(self) -> tuple[FieldRef, ...]:
        if self.peek().is_word("COUNT") and self.tokens[self.i + 1].kind == "punct":
            self.i += 1
            # Only the bare COUNT(): COUNT(field) is an aggregate query, which the emulator does not model.
            self.expect_punct("(")
            self.expect_punct(")")
            return ()
        fields = [self.field_ref()]
        while self.accept_punct(","):
            fields.append(self.field_ref())
        return tuple(fields)

    def field_ref(self) -> FieldRef:
        token = self.take()
        if token.kind != "ident":
            raise self.unexpected(token)
        return FieldRef(tuple(token.text.split(".")), token.pos)

    def integer(self) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected(token)
        return int(token.text)

    def condition(self) -> Condition:
        """A run of conditions joined by one kind of junction: SOQL refuses AND mixed with OR unbracketed."""
        first = self.unary()
        junction = self.peek()
        if not junction.is_word("AND", "OR"):
            return first
        op = junction.text.upper()
        items = [first]
        while self.accept(op):
            items.append(self.unary())
        if self.peek().is_word("AND", "OR"):
            raise self.unexpected()
        return Junction(op, tuple(items))

    def unary(self) -> Condition:
        if self.accept("NOT"):
            return Negation(self.unary())
        if self.accept_punct("("):
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        ref = self.field_ref()
        token = self.take()
        if token.kind == "op":
            return Comparison(ref, _COMPARISON_OPS[token.text], (self.value(),))
        if token.is_word("LIKE"):
            return Comparison(ref, "LIKE", (self.value(),))
        if token.is_word("NOT") and self.accept("IN"):
            return Comparison(ref, "NOT_IN", self.value_list())
        if token.is_word("IN"):
            return Comparison(ref, "IN", self.value_list())
        raise self.unexpected(token)

    def value_list(self) -> tuple[Token, ...]:
        self.expect_punct("(")
        values = [self.value()]
        while self.accept_punct(","):
            values.append(self.value())
        self.expect_punct(")")
        return tuple(values)

    def value(self) -> Token:
        token = self.take()
        if token.kind in ("string", "number", "date", "datetime") or token.is_word("TRUE", "FALSE", "NULL"):
            return token
        raise self.unexpected(token)

    def order_list(self) -> tuple[OrderItem, ...]:
        items = []
        while True:
            ref = self.field_ref()
            descending = self.accept("DESC")
            if not descending:
                self.accept("ASC")
            # Salesforce's default puts nulls first when ascending and last when descending.
            nulls_first = not descending
            if self.accept("NULLS"):
                nulls_first = self.peek().is_word("FIRST")
                self.expect("FIRST", "LAST")
            items.append(OrderItem(ref, descending, nulls_first))
            if not self.accept_punct(","):
                return tuple(items)


def parse(soql: str) -> Query:
    return _Parser(soql).query()


# ---------------------------------------------------------------------------------------------------------
# Literal values, checked against the field they are compared with
# ---------------------------------------------------------------------------------------------------------

_DATETIME_PARTS = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):?(\d{2}))\Z")


def stored_datetime(text: str) -> str:
    """A SOQL datetime literal in the store's form: UTC, milliseconds, ``+0000`` (which sorts as text).

    Raises ValueError for an impossible moment (month 13, hour 24...).
    """
    match = _DATETIME_PARTS.match(text)
    if match is None:
        raise ValueError(text)
    local, fraction, sign, off_hours, off_minutes = match.groups()
    offset = timedelta(hours=int(off_hours or 0), minutes=int(off_minutes or 0))
    zone = timezone(-offset if sign == "-" else offset)
    moment = datetime.fromisoformat(local).replace(tzinfo=zone).astimezone(timezone.utc)
    millis = int((fraction or "").ljust(3, "0")[:3])
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis:03d}+0000"


# ---------------------------------------------------------------------------------------------------------
# Compilation
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    """A resolved field path: its SQL expression, definition, and the relationships walked to reach it."""

    sql: str
    field: FieldDef
    hops: tuple[tuple[str, ObjectDef, str], ...]  # (relationship name, parent object, parent's table alias)

    @property
    def sort_key(self) -> str:
        """The expression to compare or sort by: text compares case-insensitively unless case-sensitive.

        Ids compare exactly: literals are normalised to the stored 18-character form first.
        """
        fd = self.field
        if _literal_kind(fd.type) == "string" and fd.type not in _ID_TYPES and not fd.case_sensitive:
            return f"{self.sql} COLLATE NOCASE"
        return self.sql


def _literal_kind(field_type: str) -> str:
    """The kind of literal a filter on a field of this type takes (time has no SOQL literal here)."""
    if field_type in _NUMERIC_TYPES:
        return "number"
    return field_type if field_type in _UNQUOTED_TYPES else "string"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class _Compiler:
    soql: str
    schema: Schema
    root: ObjectDef
    include_deleted: bool
    joins: dict[tuple[str, ...], tuple[str, ObjectDef, str]] = field(default_factory=dict)
    params: list[Any] = field(default_factory=list)

    # ----- field paths

    def invalid_field(self, pos: int, text: str) -> ApiError:
        return ApiError(400, "INVALID_FIELD", _located(self.soql, pos, text))

    def resolve(self, ref: FieldRef) -> _Column:
        """Walk ``Account.Owner.Name``-style paths, adding a LEFT JOIN for each relationship crossed."""
        path = ref.path
        # ``SELECT Contact.Name FROM Contact`` is legal: a leading object name qualifies the field.
        if len(path) > 1 and path[0].lower() == self.root.name.lower() and self.root.relationship(path[0]) is None:
            path = path[1:]
        obj, alias, hops = self.root, "t0", []
        for depth, name in enumerate(path[:-1]):
            ref_field = obj.relationship(name)
            parent = self.schema.get(ref_field.reference_to[0]) if ref_field else None
            if ref_field is None or parent is None:
                raise self.invalid_field(
                    ref.pos,
                    f"Didn't understand relationship '{name}' in field path. "
                    + _naming_hint("relationship", "__r", "custom relationship"),
                )
            key = tuple(p.lower() for p in path[: depth + 1])
            if key not in self.joins:
                self.joins[key] = (f"t{len(self.joins) + 1}", parent, f"{alias}.{_quote(ref_field.name)}")
            alias = self.joins[key][0]
            hops.append((ref_field.relationship_name or name, parent, alias))
            obj = parent
        fd = obj.field(path[-1])
        if fd is None:
            raise self.invalid_field(
                ref.pos,
                f"No such column '{path[-1]}' on entity '{obj.name}'. " + _naming_hint("field", "__c", "custom field"),
            )
        return _Column(f"{alias}.{_quote(fd.name)}", fd, tuple(hops))

    def join_sql(self) -> str:
        # Only live parents are joined: a deleted parent is not reachable through a lookup (inferred; Salesforce
        # clears or cascades lookups to a deleted record).
        return "".join(
            f' LEFT JOIN {_quote(parent.name)} AS {alias} ON {alias}."Id" = {on} AND {alias}."IsDeleted" = 0'
            for alias, parent, on in self.joins.values()
        )

    # ----- WHERE

    def where_sql(self, cond: Condition | None) -> str:
        clauses = [] if self.include_deleted else ['t0."IsDeleted" = 0']
        if cond is not None:
            clauses.append(self.condition(cond))
        return f" WHERE {' AND '.join(clauses)}" if clauses else ""

    def condition(self, cond: Condition) -> str:
        if isinstance(cond, Junction):
            return "(" + f" {cond.op} ".join(self.condition(item) for item in cond.items) + ")"
        if isinstance(cond, Negation):
            # SOQL has no unknown truth value (null is a value like any other), so NOT of a comparison that
            # met a null is true: IFNULL turns SQL's NULL into false before negating.
            return f"NOT IFNULL({self.condition(cond.item)}, 0)"
        return self.comparison(cond)

    def comparison(self, cmp: Comparison) -> str:
        col = self.resolve(cmp.field)
        fd = col.field
        if fd.is_compound or not fd.filterable:
            raise self.invalid_field(cmp.field.pos, f"field '{fd.name}' can not be filtered in query call")
        values = [self.value(col, cmp.field.pos, token, like=cmp.op == "LIKE") for token in cmp.values]
        key = col.sort_key
        if cmp.op == "LIKE":
            return f"{key} LIKE {self.param(values[0])} ESCAPE '\\'"
        if cmp.op in ("IN", "NOT_IN"):
            present = [v for v in values if v is not None]
            parts = [f"{key} IN ({', '.join(self.param(v) for v in present)})"] if present else []
            if len(present) < len(values):
                parts.append(f"{col.sql} IS NULL")
            matched = "(" + " OR ".join(parts) + ")"
            return f"NOT IFNULL({matched}, 0)" if cmp.op == "NOT_IN" else matched
        value = values[0]
        if value is None:
            if fd.type == "boolean":
                # Documented: on a boolean field, = null means false and != null means true.
                return f"{col.sql} = {0 if cmp.op == '=' else 1}"
            if cmp.op in ("=", "!="):
                return f"{col.sql} IS {'' if cmp.op == '=' else 'NOT '}NULL"
        if cmp.op == "!=":
            # SOQL's != keeps records whose field is null (null is a value, not "unknown").
            return f"{key} IS NOT {self.param(value)}"
        return f"{key} {cmp.op} {self.param(value)}"

    def param(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def value(self, col: _Column, pos: int, token: Token, *, like: bool) -> Any:
        """The stored form of ``token`` compared with ``col``; a literal of the wrong type is refused."""
        fd = col.field
        if token.is_word("NULL"):
            return None
        kind = "boolean" if token.kind == "ident" else token.kind
        if kind != _literal_kind(fd.type):
            raise self.mismatch(fd, pos)
        if kind == "string":
            text = unescape(token.text, like=like)
            if fd.type in _ID_TYPES and not like:
                record_id = normalize_id(text)
                if record_id is None:
                    raise ApiError(
                        400, "INVALID_QUERY_FILTER_OPERATOR", _located(self.soql, pos, f"invalid ID field: {text}")
                    )
                return record_id
            return text
        if kind == "number":
            return int(token.text) if fd.type == "int" and token.text.lstrip("+-").isdigit() else float(token.text)
        if kind == "boolean":
            return 1 if token.text.upper() == "TRUE" else 0
        if kind == "date":
            try:
                return date.fromisoformat(token.text).isoformat()
            except ValueError:
                raise _malformed(self.soql, token.pos, f"unexpected token: {token.shown()}") from None
        try:
            return stored_datetime(token.text)
        except ValueError:
            raise _malformed(self.soql, token.pos, f"unexpected token: {token.shown()}") from None

    def mismatch(self, fd: FieldDef, pos: int) -> ApiError:
        quoted = fd.type not in _UNQUOTED_TYPES
        return self.invalid_field(
            pos,
            f"value of filter criterion for field '{fd.name}' must be of type "
            f"{_FILTER_TYPE_NAMES.get(fd.type, 'string')} and should {'' if quoted else 'not '}be enclosed in quotes",
        )

    # ----- ORDER BY

    def order_sql(self, order: Sequence[OrderItem]) -> str:
        terms = []
        for item in order:
            col = self.resolve(item.field)
            if col.field.is_compound or not col.field.sortable:
                raise self.invalid_field(item.field.pos, f"field '{col.field.name}' can not be sorted in a query call")
            terms.append(
                f"{col.sort_key} {'DESC' if item.descending else 'ASC'} NULLS {'FIRST' if item.nulls_first else 'LAST'}"
            )
        # Ties (and unsorted queries) come back in creation order, which keeps paging through a result stable.
        terms.append("t0.rowid")
        return " ORDER BY " + ", ".join(terms)


# ---------------------------------------------------------------------------------------------------------
# Result shaping
# ---------------------------------------------------------------------------------------------------------

Getter = Callable[[Sequence[Any]], Any]


def _getter(index: int, field_type: str) -> Getter:
    """Read one column of a row as Salesforce's JSON would carry it."""
    if field_type == "boolean":
        return lambda row: None if row[index] is None else bool(row[index])
    if field_type in ("double", "currency", "percent"):
        return lambda row: None if row[index] is None else float(row[index])
    if field_type == "int":
        return lambda row: None if row[index] is None else int(row[index])
    return itemgetter(index)


@dataclass
class _Shape:
    """The nested output of one record (the queried object, or a parent reached by a relationship)."""

    type_name: str
    id_index: int
    children: dict[str, tuple[str, Getter | _Shape]] = field(default_factory=dict)  # lower key → (key, part)

    def builder(self, url_prefix: str) -> Getter:
        type_name, id_index = self.type_name, self.id_index
        sobject_url = f"{url_prefix}{type_name}/"
        parts = [
            (key, part.builder(url_prefix) if isinstance(part, _Shape) else part)
            for key, part in self.children.values()
        ]

        def build(row: Sequence[Any]) -> dict[str, Any] | None:
            record_id = row[id_index]
            if record_id is None:
                return None
            record: dict[str, Any] = {"attributes": {"type": type_name, "url": sobject_url + record_id}}
            for key, get in parts:
                record[key] = get(row)
            return record

        return build


@dataclass
class _Select:
    """The SELECT list: SQL column expressions and the record shape that reads them back."""

    compiler: _Compiler
    columns: list[str] = field(default_factory=list)

    def column(self, sql: str) -> int:
        if sql not in self.columns:
            self.columns.append(sql)
        return self.columns.index(sql)

    def shape(self, refs: Sequence[FieldRef]) -> _Shape:
        root = _Shape(self.compiler.root.name, self.column('t0."Id"'))
        seen: set[tuple[str, ...]] = set()
        for ref in refs:
            col = self.compiler.resolve(ref)
            names = (*(name for name, _, _ in col.hops), col.field.name)
            if tuple(n.lower() for n in names) in seen:
                raise ApiError(400, "INVALID_FIELD", f"duplicate field selected: {'.'.join(names)}")
            seen.add(tuple(n.lower() for n in names))
            shape = root
            for rel_name, parent, alias in col.hops:
                _, part = shape.children.setdefault(
                    rel_name.lower(), (rel_name, _Shape(parent.name, self.column(f'{alias}."Id"')))
                )
                assert isinstance(part, _Shape)
                shape = part
            shape.children[col.field.name.lower()] = (col.field.name, self.getter(col))
        return root

    def getter(self, col: _Column) -> Getter:
        fd = col.field
        if not fd.is_compound:
            return _getter(self.column(col.sql), fd.type)
        # Compound fields have no column: assemble them from their components, null when all are null.
        owner = col.hops[-1][1] if col.hops else self.compiler.root
        alias = col.hops[-1][2] if col.hops else "t0"
        parts = [
            (fd.component_key(comp.name), _getter(self.column(f"{alias}.{_quote(comp.name)}"), comp.type))
            for comp in (owner.field(name) for name in fd.components)
            if comp is not None
        ]

        def compound(row: Sequence[Any]) -> dict[str, Any] | None:
            value = {key: get(row) for key, get in parts}
            return value if any(v is not None for v in value.values()) else None

        return compound


# ---------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------


def compile_query(schema: Schema, soql: str, *, include_deleted: bool) -> tuple[str, list[Any], _Shape | None]:
    """The SQL, its parameters, and (unless COUNT()) the shape that turns each row into a record."""
    query = parse(soql)
    root = schema.get(query.object_name)
    if root is None:
        raise ApiError(
            400,
            "INVALID_TYPE",
            _located(
                soql,
                query.object_pos,
                f"sObject type '{query.object_name}' is not supported. " + _naming_hint("object", "__c", "entity"),
            ),
        )
    compiler = _Compiler(soql, schema, root, include_deleted)
    select = _Select(compiler)
    shape = None if query.is_count else select.shape(query.fields)
    where = compiler.where_sql(query.where)
    order = "" if query.is_count else compiler.order_sql(query.order)
    paging, paging_params = _paging(query)
    params = compiler.params + paging_params
    source = f"FROM {_quote(root.name)} AS t0{compiler.join_sql()}{where}"
    if shape is None:
        # COUNT() honours LIMIT/OFFSET: the count is of the rows the query would have returned.
        return f"SELECT COUNT(*) FROM (SELECT 1 {source}{paging})", params, None
    return f"SELECT {', '.join(select.columns)} {source}{order}{paging}", params, shape


def _paging(query: Query) -> tuple[str, list[int]]:
    if query.limit is None and query.offset is None:
        return "", []
    limit = -1 if query.limit is None else query.limit
    return " LIMIT ? OFFSET ?", [limit, query.offset or 0]


def run_query(store: Store, soql: str, *, include_deleted: bool, version: str) -> tuple[list[dict], int]:
    """Run ``soql`` against the store: the records shaped as Salesforce's query output, and totalSize.

    ``include_deleted`` is ``queryAll``: soft-deleted rows are returned too. For ``COUNT()`` the records list
    is empty and totalSize is the count.
    """
    sql, params, shape = compile_query(store.schema, soql, include_deleted=include_deleted)
    with store.lock:
        rows = store.read_connection().execute(sql, params).fetchall()
    if shape is None:
        return [], rows[0][0]
    build = shape.builder(f"/services/data/v{version}/sobjects/")
    records = [build(row) for row in rows]
    return records, len(records)
