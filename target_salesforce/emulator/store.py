"""The emulator's data: one SQLite table per object, written a batch at a time, answering SaveResults.

Every protocol (REST, Collections, Bulk 2.0) saves through ``Store.write`` so that a record fails the same
way whichever API carried it. A batch is checked as a whole before anything is written: existing ids,
external-id matches, foreign keys, parent records and unique values are each fetched with one query per
batch (never one per row), which is what lets a million-row Bulk job finish in seconds.

The table layout and value encodings are a contract with the SOQL engine, which reads the tables directly;
see ``docs/emulator-design.md``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, NamedTuple

from .builtin_objects import DerivedField, derived_fields, system_fields
from .ids import new_ids, normalize_id
from .schema import FieldDef, ObjectDef, Schema
from .validation import (
    ROLLED_BACK_MESSAGE,
    NotOfType,
    ParsedRow,
    RecordError,
    RecordParser,
    duplicate_key,
    duplicate_value,
    entity_is_deleted,
    foreign_key_not_found,
    format_datetime,
    invalid_cross_reference,
    malformed_id,
    no_such_column,
    not_an_external_id,
    not_writable,
    required_missing,
    several_matches,
    usable_as_key,
)
from .wire import ApiError

OPERATIONS = frozenset({"insert", "update", "upsert", "delete", "hardDelete"})
_STAMPS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")

_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fold(value: Any) -> Any:
    """The key SQLite's NOCASE collation compares by (it folds ASCII letters only)."""
    if isinstance(value, str):
        return value.lower() if value.isascii() else value.translate(_ASCII_FOLD)
    return value


def _identity(value: Any) -> Any:
    return value


def _is_key_field(field: FieldDef) -> bool:
    return field.type != "id" and (field.unique or field.external_id or field.id_lookup)


def _nocase(field: FieldDef) -> bool:
    """Key text columns compare case-insensitively unless describe says the field is case-sensitive."""
    return _is_key_field(field) and field.sql_type == "TEXT" and not field.case_sensitive


class _Table:
    """What the store precomputes about one object: its SQL, parsers, and the rules each write applies."""

    def __init__(self, obj: ObjectDef, schema: Schema) -> None:
        self.obj = obj
        self.sql = _quote(obj.name)
        self.prefix = obj.key_prefix
        self.parsers = {source: RecordParser(obj, schema, source) for source in ("json", "csv")}
        # Every table has the system columns, even for an object defined without them.
        self.fields = [*obj.stored_fields(), *(f for f in system_fields(obj.label) if obj.field(f.name) is None)]
        self.booleans = frozenset(f.name for f in self.fields if f.type == "boolean")
        # Checkboxes are never required: a missing or null checkbox is false.
        self.required = [f.name for f in self.fields if f.required_on_create and f.type != "boolean"]
        self.not_nillable = frozenset(
            f.name for f in self.fields if not f.nillable and f.updateable and f.type != "boolean"
        )
        self.defaults: dict[str, Any] = {
            f.name: int(bool(f.default_value)) if f.type == "boolean" else f.default_value
            for f in self.fields
            if f.createable and (f.type == "boolean" or (f.defaulted_on_create and f.default_value is not None))
        }
        self.unique = [f for f in self.fields if f.unique and f.type != "id"]
        self.references = [f for f in self.fields if f.type == "reference" and f.reference_to]
        self.derived: tuple[DerivedField, ...] = derived_fields(obj)
        self.derived_inputs = tuple(dict.fromkeys(name for d in self.derived for name in d.inputs))
        self.folds = {f.name: (_fold if _nocase(f) else _identity) for f in self.fields}

    def column_ddl(self, field: FieldDef) -> str:
        ddl = f"{_quote(field.name)} {field.sql_type}"
        if field.type == "id":
            return ddl + " PRIMARY KEY"
        return ddl + " COLLATE NOCASE" if _nocase(field) else ddl

    def create(self, conn: sqlite3.Connection) -> None:
        columns = ", ".join(self.column_ddl(f) for f in self.fields)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.sql} ({columns})")
        # An on-disk store opened with a newer definition of the object gains the new columns.
        present = {row[1].lower() for row in conn.execute(f"PRAGMA table_info({self.sql})")}
        for field in self.fields:
            if field.name.lower() not in present:
                conn.execute(f"ALTER TABLE {self.sql} ADD COLUMN {self.column_ddl(field)}")
        for field in self.fields:
            if _is_key_field(field):
                index = _quote(f"ix_{self.obj.name}_{field.name}")
                conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {self.sql} ({_quote(field.name)})")

    def json_value(self, name: str, value: Any) -> Any:
        return bool(value) if name in self.booleans and value is not None else value

    def compound_value(self, field: FieldDef, row: dict[str, Any]) -> dict[str, Any] | None:
        """An address/location as REST shows it: its components keyed ``street``, ``postalCode``, …"""
        stem = field.name.removesuffix("__c").removesuffix("Address")
        parts = {}
        for name in field.components:
            key = name.removeprefix(stem).removesuffix("__s")
            parts[key[:1].lower() + key[1:]] = row.get(name)
        return parts if any(v is not None for v in parts.values()) else None


class Store:
    """The org's records. Every public method takes ``lock``; SOQL reads hold it around ``read_connection``."""

    def __init__(self, schema: Schema, path: str | None = None) -> None:
        self.schema = schema
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        if path:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            # 64 MB of page cache keeps the external-id indexes of a million-row job in memory.
            self._conn.execute("PRAGMA cache_size=-65536")
        self._tables: dict[str, _Table] = {}
        for obj in schema:
            self._create(obj)

    def _create(self, obj: ObjectDef) -> None:
        table = _Table(obj, self.schema)
        table.create(self._conn)
        self._tables[obj.name.lower()] = table

    def add_object(self, obj: ObjectDef) -> None:
        """Add an object (e.g. loaded from a describe file) to the schema and give it a table."""
        with self.lock:
            self.schema.add(obj)
            # Parsers of other objects resolve references through the schema, so rebuild them all.
            for existing in list(self.schema):
                self._create(existing)

    def _table(self, obj: str) -> _Table:
        table = self._tables.get(obj.lower())
        if table is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return table

    def read_connection(self) -> sqlite3.Connection:
        """The connection SOQL reads through; callers hold ``lock`` while they use it."""
        return self._conn

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    def reset(self) -> None:
        """Delete every record of every object; the schema stays."""
        with self.lock:
            self._conn.execute("BEGIN")
            for table in self._tables.values():
                self._conn.execute(f"DELETE FROM {table.sql}")
            self._conn.execute("COMMIT")

    @contextmanager
    def atomic(self) -> Iterator[Callable[[], None]]:
        """Hold the lock and make every write inside one transaction; yields a function that undoes them all.

        sObject Collections' allOrNone spans the whole request, which may write several objects in several
        batches: each batch's savepoint nests in this one. Leaving the block by an exception undoes everything.
        """
        with self.lock:
            conn = self._conn
            conn.execute("SAVEPOINT request")
            try:
                yield lambda: conn.execute("ROLLBACK TO request")
            except BaseException:
                conn.execute("ROLLBACK TO request")
                conn.execute("RELEASE request")
                raise
            conn.execute("RELEASE request")

    def write(
        self,
        op: str,
        obj: str,
        rows: Sequence[dict[str, Any]],
        *,
        ext_field: str | None = None,
        source: str = "json",
        all_or_none: bool = False,
        lock_row: Callable[[], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Save one batch in one transaction and answer one SaveResult a row, in row order.

        Raises ``ApiError`` for what fails the whole request (unknown object or field, a JSON value of the
        wrong type, an unusable external-id field) before anything is saved.
        """
        with self.lock:
            batch = self._batch(op, obj, ext_field)
            parser = batch.table.parsers[source]
            parsed = [parser.parse(row) for row in rows]  # whole-request errors surface here, before any write
            return batch.run(parsed, all_or_none, lock_row)

    def write_table(
        self,
        op: str,
        obj: str,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        ext_field: str | None = None,
        lock_row: Callable[[], bool] | None = None,
    ) -> Outcomes:
        """``write`` for Bulk CSV: each row is a list of cells in ``header`` order, read column by column, and
        the answer is each row's outcome rather than a SaveResult dict (a job has a million rows)."""
        with self.lock:
            batch = self._batch(op, obj, ext_field)
            parsed = batch.table.parsers["csv"].parse_table(header, rows)  # whole-request errors surface here
            batch.apply(parsed, False, lock_row)
            return Outcomes(batch.ids, batch.creating, batch.errors)

    def _batch(self, op: str, obj: str, ext_field: str | None) -> _Batch:
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}")
        return _Batch(self, self._table(obj), op, ext_field)

    def get(self, obj: str, record_id: str, fields: Iterable[str] | None = None) -> dict[str, Any] | None:
        """The record's fields as JSON values (booleans as booleans), or None if absent or deleted."""
        with self.lock:
            table = self._table(obj)
            wanted = table.obj.fields if fields is None else [self._field(table, name) for name in fields]
            rid = normalize_id(record_id) if isinstance(record_id, str) else None
            if rid is None or rid[:3] != table.prefix:
                return None
            names = list(dict.fromkeys(n for f in wanted for n in (f.components if f.is_compound else (f.name,))))
            select = ", ".join(_quote(n) for n in names)
            found = self._conn.execute(
                f"SELECT {select} FROM {table.sql} WHERE Id = ? AND IsDeleted = 0", (rid,)
            ).fetchone()
        if found is None:
            return None
        row = dict(zip(names, found, strict=True))
        return {
            f.name: table.compound_value(f, row) if f.is_compound else table.json_value(f.name, row[f.name])
            for f in wanted
        }

    @staticmethod
    def _field(table: _Table, name: str) -> FieldDef:
        field = table.obj.field(name)
        if field is None:
            raise no_such_column(name, table.obj)
        return field

    def find_ids(self, obj: str, field: str, value: Any) -> list[str]:
        """Ids of live records whose ``field`` equals ``value`` (case-insensitively for external ids)."""
        with self.lock:
            table = self._table(obj)
            key_field = external_id_field(table.obj, field)
            if key_field.type == "id":
                rid = normalize_id(value) if isinstance(value, str) else None
                return [i for i in ([rid] if rid else []) if _live(self._conn, table, [i]).get(i) == 0]
            try:
                stored = table.parsers["json"].converter(key_field)(value)
            except (RecordError, NotOfType):
                return []  # no record can hold a value the field would refuse
            cursor = self._conn.execute(
                f"SELECT Id FROM {table.sql} WHERE IsDeleted = 0 AND {_quote(key_field.name)} = ? ORDER BY rowid",
                (stored,),
            )
            return [row[0] for row in cursor]


class Outcomes(NamedTuple):
    """What ``Store.write_table`` did to each row, in row order: its first error, or else its record's id and
    whether the write created it (``ids`` and ``created`` mean nothing for a row with an error)."""

    ids: list[str | None]
    created: list[bool]
    errors: list[RecordError | None]


def external_id_field(obj: ObjectDef, name: str) -> FieldDef:
    """The field an upsert matches on, or the whole-request error Salesforce answers for ``name``."""
    field = obj.field(name)
    if field is None:
        raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}")
    if not usable_as_key(field):
        raise not_an_external_id(field.name, obj)
    return field


def _json_list(values: Iterable[Any]) -> str:
    return json.dumps(list(values))


def _live(conn: sqlite3.Connection, table: _Table, ids: Iterable[str]) -> dict[str, int]:
    """``{id: IsDeleted}`` for those of ``ids`` that exist (deleted or not)."""
    cursor = conn.execute(
        f"SELECT Id, IsDeleted FROM {table.sql} WHERE Id IN (SELECT value FROM json_each(?))", (_json_list(ids),)
    )
    return dict(cursor.fetchall())


def _matches(conn: sqlite3.Connection, table: _Table, field: FieldDef, values: Iterable[Any]) -> dict[Any, list[str]]:
    """Live records whose ``field`` is one of ``values``: folded value → ids, in creation order."""
    fold = table.folds[field.name]
    column = _quote(field.name)
    cursor = conn.execute(
        f"SELECT {column}, Id FROM {table.sql} WHERE IsDeleted = 0 AND {column} IN "
        "(SELECT value FROM json_each(?)) ORDER BY rowid",
        (_json_list(values),),
    )
    found: dict[Any, list[str]] = defaultdict(list)
    for value, record_id in cursor:
        found[fold(value)].append(record_id)
    return found


class _Batch:
    """One ``Store.write`` or ``write_table`` call: decides each parsed row's fate, then writes the survivors."""

    def __init__(self, store: Store, table: _Table, op: str, ext_field: str | None) -> None:
        self.store = store
        self.conn = store._conn
        self.table = table
        self.op = op
        self.ext: FieldDef | None = None
        if op == "upsert":
            self.ext = external_id_field(table.obj, ext_field or "Id")
        self.now = format_datetime(datetime.now(timezone.utc))
        self.errors: list[RecordError | None] = []
        self.ids: list[str | None] = []
        self.creating: list[bool] = []
        self.existing: dict[str, dict[str, Any]] = {}

    # -------------------------------------------------------------------------------------- driving
    def run(
        self, parsed: Sequence[ParsedRow], all_or_none: bool, lock_row: Callable[[], bool] | None
    ) -> list[dict[str, Any]]:
        """SaveResults of ``apply``."""
        if not self.apply(parsed, all_or_none, lock_row):
            return self._rolled_back()
        ids, creating = self.ids, self.creating
        return [
            {"id": ids[i], "success": True, "errors": [], "created": creating[i]} if error is None else self._result(i)
            for i, error in enumerate(self.errors)
        ]

    def apply(self, parsed: Sequence[ParsedRow], all_or_none: bool, lock_row: Callable[[], bool] | None) -> bool:
        """Decide each row's fate and save the rows without error; False, saving nothing, when ``all_or_none``
        and some row failed."""
        self.errors = [p.error for p in parsed]
        self.ids = [None] * len(parsed)
        self.creating = [False] * len(parsed)
        if lock_row is not None:
            for i in range(len(parsed)):
                if lock_row() and self.errors[i] is None:
                    self.errors[i] = RecordError(
                        "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
                    )
        if self.op in ("delete", "hardDelete"):
            self._target_existing(parsed, allow_blank=False)
        elif self.op == "insert":
            self._target_new(parsed)
        elif self.op == "update" or (self.ext is not None and self.ext.type == "id"):
            self._target_existing(parsed, allow_blank=self.op == "upsert")
        else:
            self._target_by_external_id(parsed)
        if self.op not in ("delete", "hardDelete"):
            self._check_values(parsed)
        ok = [i for i, error in enumerate(self.errors) if error is None]
        if all_or_none and len(ok) < len(parsed):
            return False
        self._save(parsed, ok)
        return True

    def _fail(self, i: int, error: RecordError) -> None:
        if self.errors[i] is None:
            self.errors[i] = error

    def _live_rows(self, parsed: Sequence[Any]) -> list[int]:
        return [i for i in range(len(parsed)) if self.errors[i] is None]

    # ----------------------------------------------------------------------------------- targeting
    def _target_new(self, parsed: Sequence[Any]) -> None:
        for i in self._live_rows(parsed):
            if parsed[i].id_value not in (None, ""):
                self._fail(
                    i, RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
                )
            self.creating[i] = True

    def _target_existing(self, parsed: Sequence[Any], *, allow_blank: bool) -> None:
        """Rows naming their record by Id: malformed, repeated, missing and deleted ids fail."""
        wanted: dict[str, list[int]] = defaultdict(list)
        for i in self._live_rows(parsed):
            raw = parsed[i].id_value
            if raw in (None, ""):
                if allow_blank:
                    self.creating[i] = True  # upsert by Id without an Id creates
                else:
                    self._fail(i, RecordError("MISSING_ARGUMENT", f"Id not specified in an {self.op} call"))
                continue
            rid = normalize_id(raw) if isinstance(raw, str) else None
            if rid is None or rid[:3] != self.table.prefix:
                self._fail(i, malformed_id(raw))
                continue
            wanted[rid].append(i)
        self._fail_repeats(wanted, "Id", parsed)
        extra = self.table.derived_inputs if self.op in ("update", "upsert") else ()
        existing = self._fetch_existing([rid for rid, rows in wanted.items() if len(rows) == 1], extra)
        for rid, rows in wanted.items():
            if len(rows) != 1:
                continue
            state = existing.get(rid)
            if state is None:
                self._fail(rows[0], invalid_cross_reference())
            elif state["IsDeleted"]:
                self._fail(rows[0], entity_is_deleted())
            else:
                self.ids[rows[0]] = rid

    def _fail_repeats(self, wanted: dict[Any, list[int]], field_name: str, parsed: Sequence[Any]) -> None:
        for rows in wanted.values():
            if len(rows) > 1:
                for i in rows:
                    shown = parsed[i].id_value if field_name == "Id" else parsed[i].values[field_name]
                    self._fail(i, duplicate_key(field_name, shown))

    def _fetch_existing(self, ids: list[str], extra: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        names = ["Id", "IsDeleted", *extra]
        cursor = self.conn.execute(
            f"SELECT {', '.join(map(_quote, names))} FROM {self.table.sql} "
            "WHERE Id IN (SELECT value FROM json_each(?))",
            (_json_list(ids),),
        )
        found = {row[0]: dict(zip(names, row, strict=True)) for row in cursor}
        self.existing.update(found)
        return found

    def _target_by_external_id(self, parsed: Sequence[Any]) -> None:
        """Upsert rows: no value or no match creates, one match updates, several matches fail."""
        ext = self.ext
        assert ext is not None
        fold = self.table.folds[ext.name]
        wanted: dict[Any, list[int]] = defaultdict(list)
        for i in self._live_rows(parsed):
            value = parsed[i].values.get(ext.name)
            if value is None:
                # Inferred from Bulk API and Apex behaviour: a record without an external id is inserted.
                self.creating[i] = True
            else:
                wanted[fold(value)].append(i)
        self._fail_repeats(wanted, ext.name, parsed)
        singles = {key: rows[0] for key, rows in wanted.items() if len(rows) == 1}
        matches = _matches(self.conn, self.table, ext, [parsed[i].values[ext.name] for i in singles.values()])
        for key, i in singles.items():
            ids = matches.get(key, [])
            if len(ids) > 1:
                self._fail(i, several_matches(ext, ids))
            elif ids:
                self.ids[i] = ids[0]
            else:
                self.creating[i] = True
        if self.table.derived_inputs:
            self._fetch_existing([rid for rid in self.ids if rid], self.table.derived_inputs)

    # ------------------------------------------------------------------------------ value checks
    def _check_values(self, parsed: Sequence[Any]) -> None:
        table, creating, errors = self.table, self.creating, self.errors
        for i, p in enumerate(parsed):
            if errors[i] is None and (blocked := p.not_createable if creating[i] else p.not_updateable):
                self._fail(i, not_writable(blocked))
        self._resolve_lookups(parsed)
        self._check_references(parsed)
        required, defaults, derived = table.required, table.defaults.items(), table.derived
        new_rows = []
        for i in self._live_rows(parsed):
            values = parsed[i].values
            if creating[i]:
                if None in map(values.get, required):
                    self._fail(i, required_missing([name for name in required if values.get(name) is None]))
                    continue
                for name, default in defaults:
                    if values.get(name) is None:
                        values[name] = default
                new_rows.append(i)
            elif None in values.values() and not self._clear(i, values):
                continue
            if derived:
                self._derive(i, values)
        for i, record_id in zip(new_rows, new_ids(table.prefix, len(new_rows)), strict=True):
            self.ids[i] = record_id
        self._check_unique(parsed)

    def _clear(self, i: int, values: dict[str, Any]) -> bool:
        """An update setting fields to null: required fields refuse, checkboxes become false."""
        cleared = [name for name, value in values.items() if value is None and name in self.table.not_nillable]
        if cleared:
            self._fail(i, required_missing(cleared))
            return False
        for name in self.table.booleans.intersection(values):
            if values[name] is None:
                values[name] = 0
        return True

    def _derive(self, i: int, values: dict[str, Any]) -> None:
        creating = self.creating[i]
        for derived in self.table.derived:
            if creating:
                values[derived.name] = derived.compute(*map(values.get, derived.inputs))
            elif any(name in values for name in derived.inputs):
                before = self.existing.get(self.ids[i] or "", {})
                inputs = [values[name] if name in values else before.get(name) for name in derived.inputs]
                values[derived.name] = derived.compute(*inputs)

    def _resolve_lookups(self, parsed: Sequence[Any]) -> None:
        """Foreign keys given by parent external id become parent Ids: one query per parent field."""
        wanted: dict[tuple[str, str], set[Any]] = defaultdict(set)
        live = [i for i in self._live_rows(parsed) if parsed[i].lookups]
        for i in live:
            for lookup in parsed[i].lookups:
                wanted[(lookup.parent.name, lookup.parent_field.name)].add(lookup.value)
        # Per parent field: the live records by folded value, and how a looked-up value folds.
        found: dict[tuple[str, str], tuple[dict[Any, list[str]], Callable[[Any], Any]]] = {}
        for (parent_name, field_name), values in wanted.items():
            parent = self.store._table(parent_name)
            field = parent.obj.field(field_name)
            assert field is not None
            if field.type == "id":
                matches = {rid: [rid] for rid, deleted in _live(self.conn, parent, values).items() if not deleted}
            else:
                matches = _matches(self.conn, parent, field, values)
            found[(parent_name, field_name)] = (matches, parent.folds.get(field_name, _identity))
        for i in live:
            for lookup in parsed[i].lookups:
                matches, fold = found[(lookup.parent.name, lookup.parent_field.name)]
                ids = matches.get(fold(lookup.value), [])
                if not ids:
                    self._fail(i, foreign_key_not_found(lookup.parent_field, lookup.parent, lookup.value))
                elif len(ids) > 1:
                    self._fail(i, several_matches(lookup.parent_field, ids))
                else:
                    parsed[i].values[lookup.field.name] = ids[0]

    def _check_references(self, parsed: Sequence[Any]) -> None:
        """Reference fields must name a live record of their parent object."""
        live = self._live_rows(parsed)
        for field in self.table.references:
            targets = {}
            for name in field.reference_to:
                parent = self.store._tables.get(name.lower())
                if parent is not None:
                    targets[parent.prefix] = parent
            wanted: dict[str, set[str]] = defaultdict(set)
            for i in live:
                value = parsed[i].values.get(field.name)
                if value is not None and value[:3] in targets:
                    wanted[value[:3]].add(value)
            if not wanted:
                continue
            state: dict[str, int] = {}
            for prefix, ids in wanted.items():
                state.update(_live(self.conn, targets[prefix], ids))
            for i in live:
                value = parsed[i].values.get(field.name)
                if value is None or value[:3] not in targets:
                    continue
                if value not in state:
                    self._fail(i, invalid_cross_reference([field.name]))
                elif state[value]:
                    self._fail(i, entity_is_deleted())

    def _check_unique(self, parsed: Sequence[Any]) -> None:
        """Unique fields: against live records and against earlier rows of this batch."""
        ids = self.ids
        for field in self.table.unique:
            if self.ext is not None and field.name == self.ext.name:
                continue  # the upsert key itself: matching already made each value name one record
            name, fold = field.name, self.table.folds[field.name]
            live = [(i, value) for i in self._live_rows(parsed) if (value := parsed[i].values.get(name)) is not None]
            if not live:
                continue
            values = {value for _, value in live}
            owners = _matches(self.conn, self.table, field, values)
            if not owners and len(set(map(fold, values))) == len(live):
                continue  # no record holds any of the values and no two rows share one: nothing can clash
            claimed: dict[Any, str | None] = {}
            for i, value in live:
                key = fold(value)
                record_id = ids[i]
                owner = claimed.get(key)
                for other in owners.get(key, ()):
                    if other != record_id:
                        owner = other
                        break
                if owner is not None and owner != record_id:
                    self._fail(i, duplicate_value(field, owner))
                else:
                    claimed[key] = record_id

    # -------------------------------------------------------------------------------------- saving
    def _save(self, parsed: Sequence[Any], ok: list[int]) -> None:
        if not ok:
            return
        # A savepoint, not BEGIN: inside ``Store.atomic`` the batch nests in the request's transaction.
        conn = self.conn
        conn.execute("SAVEPOINT batch")
        try:
            if self.op in ("delete", "hardDelete"):
                self._delete(self.table, [rid for i in ok if (rid := self.ids[i]) is not None])
            else:
                self._save_values(parsed, ok)
        except BaseException:
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
            raise
        conn.execute("RELEASE batch")

    def _delete(self, table: _Table, ids: list[str]) -> None:
        """Delete ``ids`` and apply each child relationship's delete rule to the records pointing at them.

        A cascading relationship (``cascade_delete``: Contact.AccountId) deletes the children the same way, soft or
        hard, and their own children in turn; any other lookup is cleared on the live children. A hard delete
        also reaches children already in the Recycle Bin, so no row keeps an id that no longer exists (inferred).
        """
        conn, now, hard = self.conn, self.now, self.op == "hardDelete"
        if hard:
            conn.executemany(f"DELETE FROM {table.sql} WHERE Id = ?", [(rid,) for rid in ids])
        else:
            conn.executemany(
                f"UPDATE {table.sql} SET IsDeleted = 1, LastModifiedDate = ?, SystemModstamp = ? WHERE Id = ?",
                [(now, now, rid) for rid in ids],
            )
        # Rows already deleted (soft) or gone (hard) are never selected again, so a cycle of references ends.
        live = "" if hard else " AND IsDeleted = 0"
        parents = _json_list(ids)
        for child_obj, field in self.store.schema.children(table.obj):
            child, column = self.store._table(child_obj.name), _quote(field.name)
            pointing = f"{column} IN (SELECT value FROM json_each(?)){live}"
            if field.cascade_delete:
                orphans = [row[0] for row in conn.execute(f"SELECT Id FROM {child.sql} WHERE {pointing}", (parents,))]
                if orphans:
                    self._delete(child, orphans)
            else:
                conn.execute(
                    f"UPDATE {child.sql} SET {column} = NULL, SystemModstamp = ? WHERE {pointing}", (now, parents)
                )

    def _save_values(self, parsed: Sequence[Any], ok: list[int]) -> None:
        """Rows with the same columns go in one ``executemany``; system fields are literals of the statement."""
        inserts: dict[tuple[str, ...], list[tuple[Any, ...]]] = defaultdict(list)
        updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = defaultdict(list)
        ids, creating = self.ids, self.creating
        for i in ok:
            values = parsed[i].values
            if creating[i]:
                inserts[tuple(values)].append((*values.values(), ids[i]))
            else:
                updates[tuple(values)].append((*values.values(), ids[i]))
        sql, now = self.table.sql, f"'{self.now}'"
        for columns, params in inserts.items():
            names = ", ".join(map(_quote, (*columns, "Id", "IsDeleted", *_STAMPS)))
            marks = ", ".join(["?"] * (len(columns) + 1) + ["0", now, now, now])
            self.conn.executemany(f"INSERT INTO {sql} ({names}) VALUES ({marks})", params)
        for columns, params in updates.items():
            assignments = ", ".join([f"{_quote(name)} = ?" for name in columns] + [f"{n} = {now}" for n in _STAMPS[1:]])
            self.conn.executemany(f"UPDATE {sql} SET {assignments} WHERE Id = ?", params)

    # ------------------------------------------------------------------------------------- results
    def _result(self, i: int) -> dict[str, Any]:
        error = self.errors[i]
        if error is not None:
            return {"id": None, "success": False, "errors": [error.as_dict()], "created": False}
        return {"id": self.ids[i], "success": True, "errors": [], "created": self.creating[i]}

    def _rolled_back(self) -> list[dict[str, Any]]:
        """allOrNone: failing rows keep their error, the others are rolled back; nothing was written."""
        rolled = RecordError("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK_MESSAGE).as_dict()
        results = []
        for i, error in enumerate(self.errors):
            if error is not None:
                results.append(self._result(i))
            else:
                # An existing record keeps its id in the answer (as Salesforce's examples show); a new one has none.
                rid = None if self.creating[i] else self.ids[i]
                results.append({"id": rid, "success": False, "errors": [rolled], "created": False})
        return results
