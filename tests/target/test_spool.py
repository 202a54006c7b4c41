"""Pure logic of the spooled batch and of a Bulk job's CSV file: merging, exact round trips, padding, splitting by
bytes, and matching result lines back to uploaded lines in any order. The end-to-end behaviour (rows written,
rejects, results output) is in test_bulk_calls.py, test_sync_modes.py and test_results_output.py."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from target_salesforce import bulk_upload
from target_salesforce.bulk_upload import BulkUpload, ResultMatcher
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
    """Every type a converter returns comes back as it went in; source numbers keep their digits."""
    values = {"s": 'a,"b"\r\nc ü', "t": True, "f": False, "n": None, "i": 2**40, "x": 0.1 + 0.2, "e": 1e-05}
    record = {"amount": Decimal("10.50"), "big": 12345678901234567890, "nested": {"a": [1, "x"]}}
    batch = SpooledBatch(merge_by_key, 10)
    batch.add(record, values, True, None)
    (row,) = list(batch)
    assert row.values == values and all(type(row.values[k]) is type(v) for k, v in values.items())
    assert row.delete is True
    assert row.record == record and str(row.record["amount"]) == "10.50"
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
    assert parse(body) == parse(upload.body())  # sent whole again on a retry
    assert list(upload.refs) == [10, 11, 12]
    upload.close()


def test_an_upload_refuses_a_row_past_the_byte_limit(monkeypatch) -> None:
    monkeypatch.setattr(bulk_upload, "MAX_UPLOAD_BYTES", 40)
    upload = BulkUpload()
    assert upload.add({"Name": "0123456789"}, 0)
    assert upload.add({"Name": "0123456789"}, 1)
    assert not upload.add({"Name": "0123456789"}, 2)  # header 6 + 3 lines of 12 bytes > 40
    assert len(parse(upload.body())) == 3 and len(upload) == 2
    upload.close()


def test_results_match_lines_in_any_order_and_identical_lines_once_each() -> None:
    upload = BulkUpload()
    for n, name in enumerate(["a", "b", "a", "c", "d"]):
        upload.add({"Name": name}, 100 + n)
    upload.body()
    matcher = ResultMatcher(upload)
    found = [matcher.find([name]) for name in ["c", "a", "a", "b", "a", "zz"]]
    assert found[:4] == [3, 0, 2, 1]
    assert found[4:] == [None, None]  # a third "a" and an unknown line match nothing
    assert matcher.unanswered() == [4]
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
