"""The SOQL engine: lexing, parsing, compiling, and (against the real store) the records Salesforce would return."""

from __future__ import annotations

import re
import time

import pytest

from target_salesforce.emulator import soql
from target_salesforce.emulator.builtin_objects import builtin_schema
from target_salesforce.emulator.store import Store
from target_salesforce.emulator.wire import ApiError


def _error(query: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        soql.compile_query(builtin_schema(), query, include_deleted=False)
    return caught.value


def _sql(query: str, *, include_deleted: bool = False) -> tuple[str, list]:
    sql, params, _ = soql.compile_query(builtin_schema(), query, include_deleted=include_deleted)
    return sql, params


# ----- string literals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (r"Bob\'s", "Bob's"),
        (r"back\\slash", "back\\slash"),
        (r"a\nb\rc\td", "a\nb\rc\td"),
        (r"upper\N\R\T\B\F", "upper\n\r\t\b\f"),
        (r"\"quoted\"", '"quoted"'),
        (r"form\ffeed\bback", "form\ffeed\bback"),
        (r"caf\u00e9", "café"),
        ("100%_sure", "100%_sure"),
    ],
)
def test_string_escapes_decode_to_their_characters(body: str, value: str) -> None:
    [token, _eof] = soql.tokenize(f"'{body}'")
    assert soql.unescape(token.text, like=False) == value


def test_like_patterns_keep_wildcards_and_escape_literals() -> None:
    # \% and \_ are literal in LIKE; an escaped backslash must stay literal in the SQLite pattern too.
    assert soql.unescape(r"50\%", like=True) == "50\\%"
    assert soql.unescape(r"a\_b%", like=True) == "a\\_b%"
    assert soql.unescape(r"c:\\dir", like=True) == "c:\\\\dir"
    # \u0025 is an escaped percent sign, so it must not turn into a wildcard.
    assert soql.unescape(r"\u0025", like=True) == "\\%"


def test_invalid_escape_is_malformed_query_with_salesforce_wording() -> None:
    error = _error(r"SELECT Id FROM Contact WHERE FirstName = 'Anne\-Marie'")
    assert (error.status, error.error_code) == (400, "MALFORMED_QUERY")
    assert error.message.endswith(
        "Invalid string literal 'Anne\\-Marie'. Illegal character sequence '\\-' in string literal."
    )


@pytest.mark.parametrize("literal", [r"'\u12'", r"'\U00e9'", r"'\x41'", "'tail\\"])
def test_bad_unicode_and_unknown_escapes_are_refused(literal: str) -> None:
    with pytest.raises(ApiError) as caught:
        soql.tokenize(f"SELECT Id FROM Contact WHERE Name = {literal}'")
    assert caught.value.error_code == "MALFORMED_QUERY"


def test_unterminated_string_is_a_lone_quote_token() -> None:
    error = _error("SELECT Id FROM Contact WHERE Name = 'abc")
    assert error.error_code == "MALFORMED_QUERY"
    assert error.message.endswith("unexpected token: '''")


# ----- datetime literals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "stored"),
    [
        ("2024-01-31T10:00:00Z", "2024-01-31T10:00:00.000+0000"),
        ("2024-01-31T10:00:00+01:00", "2024-01-31T09:00:00.000+0000"),
        ("2024-01-31T23:30:00-0530", "2024-02-01T05:00:00.000+0000"),
        ("2024-01-31T10:00:00.5Z", "2024-01-31T10:00:00.500+0000"),
        ("2024-01-31T10:00:00.123456Z", "2024-01-31T10:00:00.123+0000"),
    ],
)
def test_datetime_literals_convert_to_the_stored_utc_form(literal: str, stored: str) -> None:
    assert soql.stored_datetime(literal) == stored


def test_impossible_dates_are_malformed() -> None:
    assert _error("SELECT Id FROM Contact WHERE Birthdate = 2024-02-30").error_code == "MALFORMED_QUERY"
    assert _error("SELECT Id FROM Contact WHERE CreatedDate > 2024-01-01T25:00:00Z").error_code == "MALFORMED_QUERY"


# ----- parsing -----------------------------------------------------------------------------------------------


def test_keywords_are_case_insensitive_and_order_defaults_follow_salesforce() -> None:
    query = soql.parse("select Id from Contact where Name = 'x' order by Name, Email desc limit 5 offset 2")
    assert query.object_name == "Contact"
    assert [f.path for f in query.fields] == [("Id",)]
    # ASC defaults to NULLS FIRST, DESC to NULLS LAST.
    assert [(o.descending, o.nulls_first) for o in query.order] == [(False, True), (True, False)]
    assert (query.limit, query.offset) == (5, 2)


def test_explicit_nulls_placement_overrides_the_default() -> None:
    query = soql.parse("SELECT Id FROM Contact ORDER BY Name ASC NULLS LAST, Email DESC NULLS FIRST")
    assert [o.nulls_first for o in query.order] == [False, True]


def test_count_is_a_query_without_fields() -> None:
    assert soql.parse("SELECT COUNT() FROM Contact").is_count


@pytest.mark.parametrize(
    ("query", "token"),
    [
        ("SELECT Id FROM Contact WHERE Name = 'a' AND Email = 'b' OR Phone = 'c'", "'OR'"),
        ("SELECT Id FROM Contact WHERE Name = 'a' OR Email = 'b' AND Phone = 'c'", "'AND'"),
        ("SELECT * FROM Contact", "'*'"),
        ("SELECT Id FROM Contact WHERE", "<EOF>"),
        ("SELECT Id FROM Contact WHERE Name IN ()", "')'"),
        ("SELECT Id FROM Contact LIMIT 5 extra", "'extra'"),
        ("SELECT COUNT(Id) FROM Contact", "'Id'"),
        ("SELECT Id FROM Contact LIMIT 1.5", "'1.5'"),
        ("SELECT Id FROM Contact WHERE 'x' = Name", "''x''"),
        ("SELECT Id FROM Contact c", "'c'"),
    ],
)
def test_syntax_errors_name_the_unexpected_token(query: str, token: str) -> None:
    error = _error(query)
    assert (error.status, error.error_code) == (400, "MALFORMED_QUERY")
    assert error.message.endswith(f"unexpected token: {token}")


def test_parenthesised_mixing_of_and_or_is_accepted() -> None:
    query = soql.parse("SELECT Id FROM Contact WHERE (Name = 'a' AND Email = 'b') OR Phone = 'c'")
    assert isinstance(query.where, soql.Junction)
    assert query.where.op == "OR"


def test_offset_above_2000_is_refused() -> None:
    error = _error("SELECT Id FROM Contact OFFSET 2001")
    assert error.error_code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert error.message.endswith("Maximum SOQL offset allowed is 2000")
    assert soql.parse("SELECT Id FROM Contact OFFSET 2000").offset == 2000


# ----- error message layout (checked against bodies captured from real orgs) -----------------------------


@pytest.mark.parametrize(
    ("query", "column", "excerpt", "caret"),
    [
        # INVALID_FIELD captured from a real org (roblesterjr04/EloquentSalesForce#68).
        (
            "select Id, ProductCode from Product2 where ProductCode = 3999",
            44,
            "ProductCode from Product2 where ProductCode = 3999",
            32,
        ),
        # INVALID_TYPE captured from a real org (vlocityinc/vlocity_build#364).
        (
            "Select Id, vlocity_cmt__GlobalKey__c from vlocity_cmt____VlocityTrackingGroup__c",
            43,
            "vlocity_cmt__GlobalKey__c from vlocity_cmt____VlocityTrackingGroup__c",
            31,
        ),
        # MALFORMED_QUERY captured from a real org (restforce/restforce#632).
        (
            "SELECT Id, Data_Quality_Score__c from Contact where FirstName = 'Anne\\-Marie'",
            64,
            "from Contact where FirstName = 'Anne\\-Marie'",
            30,
        ),
    ],
)
def test_error_excerpt_matches_real_salesforce_bodies(query: str, column: int, excerpt: str, caret: int) -> None:
    message = soql._located(query, column - 1, "text")
    assert message == f"\n{excerpt}\n{' ' * caret}^\nERROR at Row:1:Column:{column}\ntext"


def test_error_location_counts_rows_and_columns_per_line() -> None:
    error = _error("SELECT Id\nFROM Contact\nWHERE Nope__c = 'x'")
    assert "ERROR at Row:3:Column:7\n" in error.message
    assert error.message.startswith("\nWHERE Nope__c = 'x'\n      ^\n")


# ----- name resolution and type checks ----------------------------------------------------------------------


def test_unknown_object_is_invalid_type() -> None:
    error = _error("SELECT Id FROM Foo")
    assert (error.status, error.error_code) == (400, "INVALID_TYPE")
    assert error.message.endswith(
        "sObject type 'Foo' is not supported. If you are attempting to use a custom object, be sure to append "
        "the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
    )


def test_unknown_field_is_invalid_field() -> None:
    error = _error("SELECT Id, Foo FROM Contact")
    assert (error.status, error.error_code) == (400, "INVALID_FIELD")
    assert error.message.endswith(
        "No such column 'Foo' on entity 'Contact'. If you are attempting to use a custom field, be sure to append "
        "the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
        "appropriate names."
    )


def test_unknown_field_on_a_parent_names_the_parent() -> None:
    assert "No such column 'Nope' on entity 'Account'." in _error("SELECT Account.Nope FROM Contact").message


def test_unknown_relationship_is_invalid_field() -> None:
    error = _error("SELECT Foo.Name FROM Contact")
    assert error.error_code == "INVALID_FIELD"
    assert "Didn't understand relationship 'Foo' in field path." in error.message


def test_duplicate_fields_are_refused_whatever_their_case() -> None:
    error = _error("SELECT Id, Account.Name, account.NAME FROM Contact")
    assert (error.error_code, error.message) == ("INVALID_FIELD", "duplicate field selected: Account.Name")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("Phone = 3999", "field 'Phone' must be of type string and should be enclosed in quotes"),
        ("NumberOfEmployees = '5'", "field 'NumberOfEmployees' must be of type int and should not be enclosed"),
        ("AnnualRevenue > '5'", "field 'AnnualRevenue' must be of type double and should not be enclosed"),
        ("CreatedDate > 2024-01-01", "field 'CreatedDate' must be of type dateTime and should not be enclosed"),
        ("Name = true", "field 'Name' must be of type string and should be enclosed in quotes"),
    ],
)
def test_literal_of_the_wrong_type_is_invalid_field(where: str, message: str) -> None:
    error = _error(f"SELECT Id FROM Account WHERE {where}")
    assert error.error_code == "INVALID_FIELD"
    assert f"value of filter criterion for {message}" in error.message


def test_malformed_id_literal_is_refused() -> None:
    error = _error("SELECT Id FROM Contact WHERE AccountId = 'abc'")
    assert error.error_code == "INVALID_QUERY_FILTER_OPERATOR"
    assert error.message.endswith("invalid ID field: abc")


def test_compound_fields_cannot_be_filtered_or_sorted() -> None:
    assert _error("SELECT Id FROM Contact WHERE MailingAddress = null").message.endswith(
        "field 'MailingAddress' can not be filtered in query call"
    )
    assert _error("SELECT Id FROM Contact ORDER BY MailingAddress").message.endswith(
        "field 'MailingAddress' can not be sorted in a query call"
    )


# ----- compiled SQL -------------------------------------------------------------------------------------------


def test_literals_travel_as_parameters_never_in_the_sql_text() -> None:
    sql, params = _sql(r"SELECT Id FROM Contact WHERE LastName = 'O\'Brien; DROP TABLE Contact' AND Email LIKE '%x%'")
    assert "Brien" not in sql and "%x%" not in sql
    assert params == ["O'Brien; DROP TABLE Contact", "%x%"]


def test_relationship_fields_join_each_parent_once() -> None:
    sql, _ = _sql(
        "SELECT Account.Name, Account.External_Id__c FROM Contact WHERE Account.External_Id__c = 'A-1' "
        "ORDER BY Account.Name"
    )
    assert sql.count("LEFT JOIN") == 1


def test_plain_query_excludes_deleted_rows_and_query_all_does_not() -> None:
    assert 't0."IsDeleted" = 0' in _sql("SELECT Id FROM Contact")[0]
    assert 't0."IsDeleted"' not in _sql("SELECT Id FROM Contact", include_deleted=True)[0]


def test_fifteen_character_ids_are_compared_in_their_18_character_form() -> None:
    _, params = _sql("SELECT Id FROM Contact WHERE AccountId IN ('001000000000001', '001000000000001AAA')")
    assert params == ["001000000000001AAA", "001000000000001AAA"]


# ----- end to end against the store ---------------------------------------------------------------------------

VERSION = "59.0"


@pytest.fixture
def store() -> Store:
    """Two accounts, four contacts (one without an account, one deleted) and one widget."""
    store = Store(builtin_schema())
    store.write(
        "insert",
        "Account",
        [
            {"Name": "Acme", "External_Id__c": "A-1", "BillingCity": "Paris", "NumberOfEmployees": 50},
            {"Name": "Globex", "External_Id__c": "A-2", "AnnualRevenue": 1500},
        ],
    )
    store.write(
        "insert",
        "Contact",
        [
            {"FirstName": "Ann", "LastName": "Smith", "Email": "ann@acme.com", "Account": {"External_Id__c": "A-1"}},
            {"FirstName": "bob", "LastName": "Jones", "Birthdate": "1990-05-17", "Account": {"External_Id__c": "A-2"}},
            {"LastName": "O'Hara_100%", "HasOptedOutOfEmail": True},
            {"FirstName": "Gone", "LastName": "Deleted"},
        ],
    )
    [gone] = _ids(store, "SELECT Id FROM Contact WHERE LastName = 'Deleted'")
    assert store.write("delete", "Contact", [{"Id": gone}])[0]["success"]
    return store


def _query(store: Store, query: str, *, include_deleted: bool = False) -> list[dict]:
    records, total = soql.run_query(store, query, include_deleted=include_deleted, version=VERSION)
    assert total == len(records)
    return records


def _ids(store: Store, query: str) -> list[str]:
    return [record["Id"] for record in _query(store, query)]


def _last_names(store: Store, where: str, order: str = "ORDER BY LastName") -> list[str]:
    return [r["LastName"] for r in _query(store, f"SELECT LastName FROM Contact {where} {order}")]


def test_records_are_shaped_like_salesforce_query_output(store: Store) -> None:
    [ann] = _query(store, "select lastname, ID, account.NAME, Account.External_Id__c, HasOptedOutOfEmail, Birthdate "
                          "from contact where FirstName = 'Ann'")  # fmt: skip
    account_id = _ids(store, "SELECT Id FROM Account WHERE Name = 'Acme'")[0]
    assert ann == {
        "attributes": {"type": "Contact", "url": f"/services/data/v{VERSION}/sobjects/Contact/{ann['Id']}"},
        "LastName": "Smith",
        "Id": ann["Id"],
        "Account": {
            "attributes": {"type": "Account", "url": f"/services/data/v{VERSION}/sobjects/Account/{account_id}"},
            "Name": "Acme",
            "External_Id__c": "A-1",
        },
        "HasOptedOutOfEmail": False,
        "Birthdate": None,
    }
    # Fields come back in SELECT order, canonical case.
    assert list(ann) == ["attributes", "LastName", "Id", "Account", "HasOptedOutOfEmail", "Birthdate"]


def test_a_missing_parent_is_null(store: Store) -> None:
    [orphan] = _query(store, "SELECT Account.Name, AccountId FROM Contact WHERE LastName LIKE 'O%'")
    assert orphan["Account"] is None and orphan["AccountId"] is None


def test_values_take_their_json_types(store: Store) -> None:
    [acme, globex] = _query(store, "SELECT NumberOfEmployees, AnnualRevenue, CreatedDate FROM Account ORDER BY Name")
    assert acme["NumberOfEmployees"] == 50 and isinstance(acme["NumberOfEmployees"], int)
    assert globex["AnnualRevenue"] == 1500.0 and isinstance(globex["AnnualRevenue"], float)
    assert acme["AnnualRevenue"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", acme["CreatedDate"])
    [opted] = _query(store, "SELECT HasOptedOutOfEmail FROM Contact WHERE HasOptedOutOfEmail = true")
    assert opted["HasOptedOutOfEmail"] is True


def test_compound_address_is_built_from_its_components(store: Store) -> None:
    [acme, globex] = _query(store, "SELECT BillingAddress FROM Account ORDER BY Name")
    assert acme["BillingAddress"]["city"] == "Paris"
    assert set(acme["BillingAddress"]) == {"street", "city", "state", "postalCode", "country", "latitude", "longitude"}
    assert globex["BillingAddress"] is None


def test_text_comparisons_ignore_case(store: Store) -> None:
    assert _last_names(store, "WHERE FirstName = 'ANN'") == ["Smith"]
    assert _last_names(store, "WHERE FirstName IN ('BOB', 'nobody')") == ["Jones"]
    assert _last_names(store, "WHERE Account.External_Id__c = 'a-2'") == ["Jones"]


def test_comparison_operators(store: Store) -> None:
    assert _last_names(store, "WHERE LastName < 'Paris'") == ["Jones", "O'Hara_100%"]
    assert _last_names(store, "WHERE LastName >= 'Smith'") == ["Smith"]
    assert [r["Name"] for r in _query(store, "SELECT Name FROM Account WHERE NumberOfEmployees > 10")] == ["Acme"]
    assert _last_names(store, "WHERE Birthdate <= 1990-05-17 AND Birthdate > 1990-05-16") == ["Jones"]


def test_not_equal_and_not_in_keep_null_values(store: Store) -> None:
    # Salesforce treats null as a value: a contact without a first name is "not Ann".
    assert _last_names(store, "WHERE FirstName != 'ann'") == ["Jones", "O'Hara_100%"]
    assert _last_names(store, "WHERE FirstName <> 'ann'") == ["Jones", "O'Hara_100%"]
    assert _last_names(store, "WHERE FirstName NOT IN ('Ann', 'Bob')") == ["O'Hara_100%"]
    assert _last_names(store, "WHERE NOT FirstName LIKE 'a%'") == ["Jones", "O'Hara_100%"]


def test_null_comparisons(store: Store) -> None:
    assert _last_names(store, "WHERE FirstName = null") == ["O'Hara_100%"]
    assert _last_names(store, "WHERE FirstName != NULL") == ["Jones", "Smith"]
    assert _last_names(store, "WHERE FirstName IN (null, 'Ann')") == ["O'Hara_100%", "Smith"]
    # A parent field is null when there is no parent.
    assert _last_names(store, "WHERE Account.Name = null") == ["O'Hara_100%"]
    # Documented: on a boolean, = null means false and != null means true.
    assert _last_names(store, "WHERE HasOptedOutOfEmail = null") == ["Jones", "Smith"]
    assert _last_names(store, "WHERE HasOptedOutOfEmail != null") == ["O'Hara_100%"]


def test_like_wildcards_escapes_and_case(store: Store) -> None:
    assert _last_names(store, "WHERE LastName LIKE 's%'") == ["Smith"]
    assert _last_names(store, "WHERE LastName LIKE '_ONES'") == ["Jones"]
    assert _last_names(store, r"WHERE LastName LIKE 'O\'Hara\_100\%'") == ["O'Hara_100%"]
    # An escaped wildcard is literal: there is no "O'Hara" followed by a literal percent sign.
    assert _last_names(store, r"WHERE LastName LIKE 'O\'Hara\%'") == []
    assert _last_names(store, "WHERE Email LIKE '%@ACME.com'") == ["Smith"]


def test_and_or_not_with_parentheses(store: Store) -> None:
    where = "WHERE (FirstName = 'Ann' OR FirstName = 'Bob') AND NOT (Account.Name = 'Globex')"
    assert _last_names(store, where) == ["Smith"]
    assert _last_names(store, "WHERE FirstName = 'Ann' OR (LastName = 'Jones' AND Birthdate != null)") == [
        "Jones",
        "Smith",
    ]


def test_order_by_defaults_nulls_first_ascending_and_last_descending(store: Store) -> None:
    names = [r["FirstName"] for r in _query(store, "SELECT FirstName FROM Contact ORDER BY FirstName")]
    assert names == [None, "Ann", "bob"]  # case-insensitive sort, null first
    names = [r["FirstName"] for r in _query(store, "SELECT FirstName FROM Contact ORDER BY FirstName DESC")]
    assert names == ["bob", "Ann", None]
    names = [r["FirstName"] for r in _query(store, "SELECT FirstName FROM Contact ORDER BY FirstName NULLS LAST")]
    assert names == ["Ann", "bob", None]
    assert _last_names(store, "", "ORDER BY Account.Name DESC NULLS FIRST, LastName") == [
        "O'Hara_100%",
        "Jones",
        "Smith",
    ]


def test_limit_and_offset(store: Store) -> None:
    assert _last_names(store, "", "ORDER BY LastName LIMIT 2") == ["Jones", "O'Hara_100%"]
    assert _last_names(store, "", "ORDER BY LastName LIMIT 1 OFFSET 1") == ["O'Hara_100%"]
    assert _last_names(store, "", "ORDER BY LastName OFFSET 2") == ["Smith"]


def test_count(store: Store) -> None:
    assert soql.run_query(store, "SELECT COUNT() FROM Contact", include_deleted=False, version=VERSION) == ([], 3)
    assert soql.run_query(store, "SELECT count() FROM Contact WHERE Account.Name != null LIMIT 1",
                          include_deleted=False, version=VERSION) == ([], 1)  # fmt: skip
    assert soql.run_query(store, "SELECT COUNT() FROM Contact", include_deleted=True, version=VERSION) == ([], 4)


def test_query_all_returns_deleted_rows(store: Store) -> None:
    assert "Deleted" not in _last_names(store, "")
    [gone] = _query(store, "SELECT LastName, IsDeleted FROM Contact WHERE IsDeleted = true", include_deleted=True)
    assert gone["LastName"] == "Deleted" and gone["IsDeleted"] is True


def test_ids_match_in_15_and_any_case_18_character_form(store: Store) -> None:
    [ann_id] = _ids(store, "SELECT Id FROM Contact WHERE FirstName = 'Ann'")
    assert _last_names(store, f"WHERE Id = '{ann_id[:15]}'") == ["Smith"]
    assert _last_names(store, f"WHERE Id IN ('{ann_id[:15]}{ann_id[15:].lower()}')") == ["Smith"]
    account_id = _query(store, f"SELECT AccountId FROM Contact WHERE Id = '{ann_id}'")[0]["AccountId"]
    assert _last_names(store, f"WHERE AccountId = '{account_id[:15]}'") == ["Smith"]


def test_datetime_and_date_literals_against_a_custom_object(store: Store) -> None:
    store.write(
        "insert",
        "Widget__c",
        [{"Name": "W", "Launched_At__c": "2024-01-31T10:00:00.000Z", "Launch_Date__c": "2024-01-31",
          "Account__r": {"External_Id__c": "A-2"}}],
    )  # fmt: skip

    def names(where: str) -> list[str]:
        return [r["Name"] for r in _query(store, f"SELECT Name FROM Widget__c WHERE {where}")]

    assert names("Launched_At__c = 2024-01-31T11:00:00+01:00") == ["W"]
    assert names("Launched_At__c = 2024-01-31T10:00:00.000Z") == ["W"]
    assert names("Launched_At__c > 2024-01-31T10:00:00Z") == []
    assert names("Launched_At__c < 2024-01-31T05:00:01-05:00") == ["W"]
    assert names("Launch_Date__c = 2024-01-31") == ["W"]
    assert names("Account__r.Name = 'globex'") == ["W"]
    [widget] = _query(store, "SELECT Account__r.Name FROM Widget__c")
    assert widget["Account__r"]["Name"] == "Globex"


def test_a_deleted_account_takes_its_contacts_out_of_query(store: Store) -> None:
    [acme] = _ids(store, "SELECT Id FROM Account WHERE Name = 'Acme'")
    store.write("delete", "Account", [{"Id": acme}])
    assert _query(store, "SELECT Id FROM Contact WHERE FirstName = 'Ann'") == []
    [ann] = _query(store, "SELECT IsDeleted, AccountId FROM Contact WHERE FirstName = 'Ann'", include_deleted=True)
    assert ann["IsDeleted"] is True and ann["AccountId"] == acme  # in the Recycle Bin with its parent


def test_a_large_result_is_fast() -> None:
    store = Store(builtin_schema())
    store.write("insert", "Account", [{"Name": "Acme", "External_Id__c": "A-1"}])
    store.write(
        "insert",
        "Contact",
        [{"LastName": f"L{i}", "Email": f"u{i}@x.com", "Account": {"External_Id__c": "A-1"}} for i in range(100_000)],
    )
    started = time.perf_counter()
    records = _query(store, "SELECT Id, FirstName, LastName, Email, HasOptedOutOfEmail, Account.Name FROM Contact")
    elapsed = time.perf_counter() - started
    assert len(records) == 100_000 and records[-1]["Account"]["Name"] == "Acme"
    assert elapsed < 5, f"100k rows took {elapsed:.2f}s (about 0.4s expected)"
