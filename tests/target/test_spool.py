"""Pure logic of the spooled batch and of a Bulk job's CSV file: merging, exact round trips, padding, splitting by
bytes, and matching result lines back to uploaded lines in any order. The end-to-end behaviour (rows written,
rejects, results output) is in test_bulk_calls.py, test_sync_modes.py and test_results_output.py."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import msgspec
import pytest

from target_salesforce import bulk_results, bulk_upload
from target_salesforce.bulk_results import ResultMatcher
from target_salesforce.bulk_upload import BulkUpload
from target_salesforce.jsonl import ENCODER
from target_salesforce.lookup import match_key
from target_salesforce.spool import SpooledBatch


def merge_by_key(values: dict, delete: bool) -> object:
    return values.get("k")


def test_rows_of_one_key_merge_exactly_even_when_keys_share_a_hash() -> None:
    """-1 and -2 have the same hash in CPython: they must stay two rows, while the two rows of -1 merge."""
    assert hash(-1) == hash(-2)
    batch = SpooledBatch(merge_by_key, 10)
    for n, key in enumerate([-1, -2, 7, -1, None, None]):
        batch.add({"n": n}, {"k": key, "n": n}, False, key)
    rows = list(batch)
    assert sorted(row.values["n"] for row in rows) == [1, 2, 3, 4, 5]
    merged = next(row for row in rows if row.values["n"] == 3)
    assert merged.records == [{"n": 0}, {"n": 3}]
    assert batch.merged == 1
    assert batch.row(merged.ref).records == [{"n": 0}, {"n": 3}]  # read back by ref, merged record included
    batch.close()


def test_spooled_values_and_records_round_trip_exactly() -> None:
    """Every value a converter returns comes back as the same value: text, booleans, null and integers as they
    went in, a fraction as a Decimal of its digits (a float as the Decimal of its shortest form); source numbers
    keep their digits."""
    values = {"s": 'a,"b"\r\n\tc ü', "t": True, "f": False, "n": None, "i": 2**40, "x": 0.1 + 0.2, "e": 1e-05}
    record = {"amount": Decimal("10.50"), "big": 12345678901234567890, "nested": {"a": [1, "x\ty"]}}
    batch = SpooledBatch(merge_by_key, 10)
    batch.add(record, values, True, None)
    (row,) = list(batch)
    floats = {k for k, v in values.items() if type(v) is float}
    assert {k: v for k, v in row.values.items() if k not in floats} == {k: values[k] for k in values if k not in floats}
    assert all(type(row.values[k]) is type(values[k]) for k in values if k not in floats)
    assert {k: row.values[k] for k in floats} == {"x": Decimal("0.30000000000000004"), "e": Decimal("0.00001")}
    assert row.delete is True
    assert row.record == record and str(row.record["amount"]) == "10.50"
    batch.close()


def test_numbers_of_16_to_18_digits_are_read_back_digit_for_digit() -> None:
    """A converter sends a number past 15 digits as its Decimal; spooled, then read back (to write it through
    Collections, or the Bulk CSV of a row outside the job), it is still that number, not its nearest float
    (99999999999999.98, 0.12345678901234568), and its CSV cell and JSON carry those digits."""
    values = {"Amount": Decimal("99999999999999.99"), "Score": Decimal("0.123456789012345678"), "Max": 10**17}
    batch = SpooledBatch(merge_by_key, 10)
    batch.add({"r": 1}, values, False, None)
    (row,) = list(batch)
    assert row.values == values
    assert [type(v) for v in row.values.values()] == [Decimal, Decimal, int]
    assert [bulk_upload.csv_cell(v) for v in row.values.values()] == [
        "99999999999999.99",
        "0.123456789012345678",
        "100000000000000000",
    ]
    assert (
        ENCODER.encode(row.values)
        == b'{"Amount":99999999999999.99,"Score":0.123456789012345678,"Max":100000000000000000}'
    )
    assert batch.row(0).values == values  # read back by ref too
    # Positional, whatever the Decimal's exponent (a field without precision is not rounded to a scale).
    assert bulk_upload.csv_cell(Decimal("1.234567890123456789E-10")) == "0.0000000001234567890123456789"
    assert bulk_upload.csv_cell(Decimal("1E+2")) == "100"
    batch.close()


def test_a_number_match_value_merges_whatever_form_it_is_read_back_in() -> None:
    """Rows are merged by the key of their values as converted and again as read back: a float (1e-05) comes back
    as a Decimal (0.00001), and both must be one key, as for Salesforce they are one number."""

    def by_number(values: dict, delete: bool) -> object:
        return match_key(values["Code__c"], False)

    batch = SpooledBatch(by_number, 10)
    for n, code in enumerate([1e-05, 2.5, Decimal("0.00001"), Decimal("99999999999999.99"), 2.5]):
        batch.add({"n": n}, {"Code__c": code, "n": n}, False, by_number({"Code__c": code}, False))
    assert sorted(row.values["n"] for row in batch) == [2, 3, 4]
    assert batch.merged == 2
    batch.close()


def test_a_records_singer_message_is_its_spooled_source_as_read() -> None:
    """The message line the record was read from stands for it, its other keys skipped and its numbers exact; a
    line without its line feed (the input's last) still ends its spooled line."""
    message = b'{"type":"RECORD","stream":"s","record":{"amount":10.50,"n":"a\\tb"},"time_extracted":"2026-01-01"}'
    batch = SpooledBatch(merge_by_key, 10)
    batch.add({"ignored": 1}, {"k": 1}, False, 1, message + b"\n")
    batch.add({"ignored": 2}, {"k": 2}, False, 2, message)
    batch.add({"made": Decimal("1.0")}, {"k": 3}, False, 3)
    rows = list(batch)
    assert [row.values["k"] for row in rows] == [1, 2, 3]
    assert rows[0].record == rows[1].record == {"amount": Decimal("10.50"), "n": "a\tb"}
    assert str(rows[0].record["amount"]) == "10.50"
    assert rows[2].record == {"made": Decimal("1.0")}
    assert batch.row(1).record == rows[1].record
    batch.close()


def test_values_kept_in_a_bulk_job_are_converted_again_from_the_message_when_read_back() -> None:
    """A row whose values went into a Bulk job's CSV spools only its message; read back (to merge, reject or
    defer it) its values are converted again from the message's record. Without a message they are spooled."""
    converted: list[dict] = []

    def convert(record: dict) -> dict:
        converted.append(record)
        return {"k": record["key"], "Name": record["name"].upper()}

    batch = SpooledBatch(merge_by_key, 10, convert)
    message = b'{"type":"RECORD","stream":"s","record":{"key":1,"name":"a"}}\n'
    batch.add({"key": 1, "name": "a"}, {"k": 1, "Name": "A"}, False, 1, message, values_kept_elsewhere=True)
    batch.add({"key": 1, "name": "b"}, {"k": 1, "Name": "B"}, False, 1, None, values_kept_elsewhere=True)
    batch.add({"key": 2, "name": "c"}, {"k": 2, "Name": "kept"}, False, 2, message, values_kept_elsewhere=False)
    assert batch.merge() == {0}  # the first row, read back and converted again, has the key of the second
    assert converted == [{"key": 1, "name": "a"}]
    assert [row.values for row in batch] == [{"k": 1, "Name": "B"}, {"k": 2, "Name": "kept"}]
    assert batch.row(0).values == {"k": 1, "Name": "A"}
    batch.close()


def test_rows_kept_in_a_bulk_job_spooled_a_block_at_once_are_the_rows_spooled_one_by_one() -> None:
    """``add_kept`` spools the same bytes as ``add`` row by row (a message without its line ending gains one), and
    the rows merge and read back the same."""

    def convert(record: dict) -> dict:
        return {"k": record["key"], "Name": record["name"].upper()}

    def message(key: object, name: str) -> bytes:
        return msgspec.json.encode({"type": "RECORD", "stream": "s", "record": {"key": key, "name": name}}) + b"\n"

    records = [(1, "a"), (2, "b"), (1, "c"), (None, "d")]
    messages = [message(k, n) for k, n in records]
    messages[-1] = messages[-1].rstrip(b"\n")  # the input's last line may lack its line ending
    one_by_one, at_once = SpooledBatch(merge_by_key, 10, convert), SpooledBatch(merge_by_key, 10, convert)
    one_by_one.add({"key": 0, "name": "z"}, {"k": 0, "Name": "Z"}, False, 0)  # a row before: slots go on from it
    at_once.add({"key": 0, "name": "z"}, {"k": 0, "Name": "Z"}, False, 0)
    for (key, name), line in zip(records, messages, strict=True):
        one_by_one.add(
            {"key": key, "name": name},
            convert({"key": key, "name": name}),
            False,
            key,
            line,
            values_kept_elsewhere=True,
        )
    at_once.add_kept(messages, [key for key, _ in records])
    assert len(at_once) == len(one_by_one) == 5
    assert at_once.merge() == one_by_one.merge() == {1}
    assert [(r.ref, r.values, r.records) for r in at_once] == [(r.ref, r.values, r.records) for r in one_by_one]
    assert at_once.row(4).values == {"k": None, "Name": "D"}
    one_by_one.close()
    at_once.close()


def test_lines_added_a_block_at_once_are_the_lines_added_one_by_one(monkeypatch) -> None:
    """``add_lines`` writes and indexes its lines as ``add_line`` does one by one (refs included, once they stop
    being line indexes), and takes none of a block that would not all fit."""
    lines = [bulk_upload.render_filled([f"n{i}", "x"]) for i in range(6)]
    one_by_one, at_once = BulkUpload(), BulkUpload()
    for upload in (one_by_one, at_once):
        assert upload.takes_lines_of(["Name", "Other"])
    for ref, line in zip((0, 1, 2, 4, 5, 6), lines, strict=True):  # slot 3 is not in the job
        assert one_by_one.add_line(line, ref)
    assert at_once.add_lines(lines[:3], 0) and at_once.add_lines(lines[3:], 4)
    assert b"".join(at_once.body()) == b"".join(one_by_one.body())
    assert list(at_once.refs) == list(one_by_one.refs) == [0, 1, 2, 4, 5, 6]
    assert list(at_once.offsets) == list(one_by_one.offsets) and at_once.full == one_by_one.full
    one_by_one.close()
    at_once.close()

    monkeypatch.setattr(bulk_upload, "MAX_UPLOAD_BYTES", 40)
    small = BulkUpload()
    assert small.takes_lines_of(["Name"])  # a header of 6 bytes: room for 34
    assert not small.add_lines([b'"0123456789"'] * 3, 0) and len(small) == 0  # 3 lines of 14 bytes: none taken
    assert small.add_lines([b'"0123456789"'] * 2, 0) and len(small) == 2 and small.full
    small.close()


def test_line_offsets_past_4_gb_take_8_bytes_each_whether_added_one_by_one_or_at_once() -> None:
    """A spool file past 4 GB (here: as if, by its count of bytes written) keeps every offset, none twice."""
    batch = SpooledBatch(merge_by_key, 10, lambda record: record)
    batch.add({"k": 0}, {"k": 0}, False, 0)
    batch._written = 2**32 - 60  # as if 4 GB had nearly been written: the second row below ends past it
    messages = [b'{"record":{"k":%d}}\n' % n for n in range(1, 4)]
    batch.add_kept(messages, [1, 2, 3])
    batch.add({"k": 4}, {"k": 4}, False, 4, messages[0], values_kept_elsewhere=True)
    assert batch._offsets.typecode == "q" and len(batch) == 5
    ends = list(batch._offsets)
    assert ends == sorted(ends) and len(set(ends)) == len(ends) and ends[-1] > 2**32
    batch.close()


def parse(body: bulk_upload.FileBody) -> list[list[str]]:
    data = b"".join(body)
    assert len(data) == len(body)  # the Content-Length requests sends
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_a_column_first_seen_late_is_an_empty_cell_in_the_lines_before_it() -> None:
    upload = BulkUpload()
    upload.add({"A": "1"}, 10)
    upload.add({"A": "2", "B": None}, 11)
    upload.add({"C": "x\r\ny"}, 12)
    body = upload.body()
    assert parse(body) == [["A", "B", "C"], ["1", "", ""], ["2", "#N/A", ""], ["", "", "x\r\ny"]]
    # As Salesforce's Data Loader writes it: each value quoted, a column left out an empty cell, CRLF endings.
    assert b"".join(body) == b'A,B,C\r\n"1",,\r\n"2","#N/A",\r\n,,"x\r\ny"\r\n'
    assert parse(body) == parse(upload.body())  # sent whole again on a retry
    assert list(upload.refs) == [10, 11, 12]
    upload.close()


@pytest.mark.parametrize(
    ("cells", "line"),
    [
        (["a", 'b"c', "d,e\r\nf", "ü 🎉"], '"a","b""c","d,e\r\nf","ü 🎉"'),
        (["a\x00b", "c"], '"a\x00b","c"'),  # a NUL in a value is not taken for a cell separator
        (["", "x", ""], ',"x",'),  # an empty cell is bare: it leaves the field as it is
        ([""], '""'),  # quoted, as csv.writer writes it, so that the line is not blank
    ],
)
def test_a_line_quotes_each_filled_cell_and_reads_back_as_its_cells(cells: list[str], line: str) -> None:
    assert bulk_upload.render(cells) == line.encode("utf-8")
    assert next(csv.reader([line])) == cells
    if "" not in cells:
        assert bulk_upload.render_filled(cells) == line.encode("utf-8")


def test_a_block_rendered_at_once_gives_each_row_the_line_add_writes() -> None:
    """``render_block`` over columns (values of any class a payload holds) matches adding the rows one by one."""
    columns = [
        ["a", 'b"c', "d,e\r\nf", "ü 🎉"],
        [True, False, True, False],
        [1, 2.5, 3, -4e-7],
        [Decimal("3.25"), 1, 2.5, Decimal("-4")],
        ["", "#N/A", None, "x"],  # an empty or null value is #N/A in Bulk CSV
    ]
    lines = bulk_upload.render_block(columns)
    rows = [dict(zip("ABCDE", row, strict=True)) for row in zip(*columns, strict=True)]
    one_by_one = BulkUpload()
    for ref, row in enumerate(rows):
        one_by_one.add(row, ref)
    at_once = BulkUpload()
    assert at_once.takes_lines_of(list("ABCDE"))
    assert lines is not None and all(at_once.add_line(line, ref) for ref, line in enumerate(lines))
    assert b"".join(at_once.body()) == b"".join(one_by_one.body())
    assert parse(at_once.body())[1] == ["a", "true", "1", "3.25", "#N/A"]
    assert not at_once.takes_lines_of(list("ABDCE"))  # other columns: rows are added as values
    one_by_one.close()
    at_once.close()


@pytest.mark.parametrize("separator", ["\x00", "\x01"])
def test_a_block_with_a_separator_in_a_value_is_rendered_row_by_row(separator: str) -> None:
    assert bulk_upload.render_block([["a", f"b{separator}c"], ["d", "e"]]) is None


def test_refs_are_line_indexes_until_a_row_is_left_out() -> None:
    """A job built as its batch is read names rows by slot: no ref is stored while each is its line's index."""
    upload = BulkUpload()
    for ref in (0, 1, 2, 4, 5):  # slot 3 (a delete, say) is not in the job
        upload.add({"Name": f"n{ref}"}, ref)
    assert list(upload.refs) == [0, 1, 2, 4, 5] and upload.refs[3] == 4 and len(upload) == 5
    upload.close()


def test_an_upload_refuses_a_row_past_the_byte_limit(monkeypatch) -> None:
    monkeypatch.setattr(bulk_upload, "MAX_UPLOAD_BYTES", 40)
    upload = BulkUpload()
    assert upload.add({"Name": "0123456789"}, 0)
    assert upload.add({"Name": "0123456789"}, 1)
    assert not upload.add({"Name": "0123456789"}, 2)  # header 6 + 3 lines of 12 bytes > 40
    assert len(parse(upload.body())) == 3 and len(upload) == 2
    upload.close()


def result_file(header: list[str], lines: list[list[str]], **style) -> io.BytesIO:
    """A successful-results file as Salesforce writes it (every cell quoted, LF), or in another CSV ``style``."""
    text = io.StringIO()
    writer = csv.writer(text, **({"quoting": csv.QUOTE_ALL, "lineterminator": "\n"} | style))
    writer.writerows([["sf__Id", "sf__Created", *header], *lines])
    return io.BytesIO(text.getvalue().encode("utf-8"))


@pytest.mark.parametrize("chunk", [1, 7, 31, 1 << 20])
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_successful_result_lines_are_counted_without_counting_lookalikes_inside_values(
    chunk: int, ending: str, monkeypatch
) -> None:
    """A value holding a line feed and what looks like a result line's start (its quotes doubled, as inside any
    quoted value) is not a line; neither is the header. Chunks of any size, cut anywhere, count the same."""
    monkeypatch.setattr(bulk_results, "_CHUNK", chunk)
    lookalike = 'note\n"001000000000000AAA","true","x'
    lines = [
        ["001000000000001AAA", "true", lookalike],
        ["001000000000002AAA", "false", "plain"],
        ["001000000000003AAA", "true", 'x",\n"001000000000004AAA","false"'],
        ["001000000000005AAA", "false", ""],
    ]
    assert bulk_results.count_successes(result_file(["Description"], lines, lineterminator=ending)) == (2, 2)
    assert bulk_results.count_successes(result_file(["Description"], [])) == (0, 0)


def matched(upload: BulkUpload, names: list[str], **style) -> list[tuple[int, str, str]]:
    """What the matcher makes of a results file answering ``names`` (one cell each), in that order."""
    upload.body()
    lines = [[f"id-{n}", "true", name] for n, name in enumerate(names)]
    return list(ResultMatcher(upload).read(result_file(["Name"], lines, **style), successful=True))


def upload_of(names: list[str | None]) -> BulkUpload:
    upload = BulkUpload()
    for n, name in enumerate(names):
        upload.add({"Name": name} if name is not None else {"Other": "x"}, 100 + n)
    return upload


TRICKY = ['a,"b"\r\nc', "ü 🎉", "#N/A", 'x"', "a", "a", "b"]


@pytest.mark.parametrize(
    "style", [{}, {"quoting": csv.QUOTE_MINIMAL}, {"lineterminator": "\r\n"}], ids=["quoted", "minimal", "crlf"]
)
def test_results_in_upload_order_match_line_by_line(style: dict, monkeypatch) -> None:
    if style.get("quoting") is None:  # every cell quoted, as Salesforce writes them: no line parsed as CSV
        monkeypatch.setattr(bulk_results, "_parse", None)
    upload = upload_of(TRICKY)
    assert matched(upload, TRICKY, **style) == [(n, f"id-{n}", "true") for n in range(len(TRICKY))]
    upload.close()


def test_results_in_any_order_match_exactly_and_identical_lines_once_each() -> None:
    upload = upload_of(TRICKY)
    order = [6, 0, 5, 3, 4, 1]  # line 2 gets no result
    names = [TRICKY[n] for n in order] + ["a", "unknown"]  # a third "a" and a line never uploaded match nothing
    upload.body()
    matcher = ResultMatcher(upload)
    lines = [[f"id-{n}", "false", name] for n, name in enumerate(names)]
    found = [index for index, _, _ in matcher.read(result_file(["Name"], lines), successful=True)]
    assert found == [6, 0, 4, 3, 5, 1]  # lines 4 and 5 are both "a": each answered once
    assert matcher.unanswered() == [2]
    upload.close()


def test_a_result_for_another_line_is_never_taken_for_the_next_one() -> None:
    """Same length, different bytes: the fast path's hash check refuses it and the exact match finds its line."""
    upload = upload_of(["ab", "ba"])
    assert [index for index, _, _ in matched(upload, ["ba", "ab"])] == [1, 0]
    upload.close()


def test_failed_results_and_padded_lines_match_through_the_exact_path() -> None:
    """Lines written before a column was added are echoed with ``""`` cells; an error text may hold anything."""
    upload = upload_of([None, "n1", None])
    upload.body()
    matcher = ResultMatcher(upload)
    ok = result_file(["Other", "Name"], [["id-1", "true", "", "n1"]])
    failed = result_file(["Other", "Name"], [["", 'ERR:bad "x","y" -- :Other --', "x", ""]] * 2)
    assert list(matcher.read(ok, successful=True)) == [(1, "id-1", "true")]
    assert list(matcher.read(failed, successful=False)) == [
        (0, "", 'ERR:bad "x","y" -- :Other --'),
        (2, "", 'ERR:bad "x","y" -- :Other --'),
    ]
    assert matcher.unanswered() == []
    upload.close()


def test_results_read_in_small_chunks_match_the_same(monkeypatch) -> None:
    """Lines cut at every chunk boundary, a last line without its line feed."""
    monkeypatch.setattr(bulk_results, "_CHUNK", 5)
    upload = upload_of(TRICKY)
    upload.body()
    lines = [[f"id-{n}", "true", name] for n, name in enumerate(TRICKY)]
    file = io.BytesIO(result_file(["Name"], lines).getvalue().rstrip(b"\n"))
    assert [index for index, _, _ in ResultMatcher(upload).read(file, successful=True)] == list(range(len(TRICKY)))
    upload.close()


def test_rows_sent_again_keep_their_refs() -> None:
    upload = BulkUpload()
    for n in range(4):
        upload.add({"Name": f"n{n}"}, 100 + n)
    upload.body()
    again = upload.subset([3, 1])
    assert parse(again.body()) == [["Name"], ["n3"], ["n1"]]
    assert list(again.refs) == [103, 101]
    upload.close()
    again.close()
