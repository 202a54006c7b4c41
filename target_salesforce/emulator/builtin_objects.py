"""The emulated org: Account, Contact, Lead, Opportunity and the custom ``Widget__c``.

Field properties follow what a real org's describe reports (labels, lengths, idLookup, required, defaulted),
because the target decides what to send from describe: an emulator that is more lenient than Salesforce
would hide the target's bugs. ``Widget__c`` exists to cover every field type the target must convert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .schema import FieldDef, ObjectDef, Schema

_SYSTEM = {"createable": False, "updateable": False, "nillable": False, "defaulted_on_create": True}


def system_fields(label: str) -> list[FieldDef]:
    """The fields every object has, which only Salesforce sets."""
    return [
        FieldDef("Id", "id", f"{label} ID", length=18, id_lookup=True, **_SYSTEM),
        FieldDef("IsDeleted", "boolean", "Deleted", **_SYSTEM),
        FieldDef("CreatedDate", "datetime", "Created Date", **_SYSTEM),
        FieldDef("LastModifiedDate", "datetime", "Last Modified Date", **_SYSTEM),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", **_SYSTEM),
    ]


def _text(name: str, label: str, length: int, **kw: Any) -> FieldDef:
    return FieldDef(name, kw.pop("type", "string"), label, length=length, **kw)


def _picklist(name: str, label: str, values: tuple[str, ...], **kw: Any) -> FieldDef:
    return FieldDef(name, kw.pop("type", "picklist"), label, length=255, picklist_values=values, **kw)


def _number(name: str, type_: str, label: str, precision: int, scale: int) -> FieldDef:
    return FieldDef(name, type_, label, precision=precision, scale=scale)


def _reference(name: str, label: str, to: str, relationship: str, **kw: Any) -> FieldDef:
    return FieldDef(name, "reference", label, length=18, reference_to=(to,), relationship_name=relationship, **kw)


def _checkbox(name: str, label: str, **kw: Any) -> FieldDef:
    # Checkboxes are never null: describe reports them not nillable and defaulted on create (to false).
    return FieldDef(name, "boolean", label, nillable=False, defaulted_on_create=True, default_value=False, **kw)


def _external_id(name: str, label: str, length: int = 255) -> FieldDef:
    return FieldDef(name, "string", label, length=length, external_id=True, unique=True, id_lookup=True, custom=True)


def _address(prefix: str, label: str) -> list[FieldDef]:
    """Component fields of an address plus the read-only compound field over them."""

    def lab(part: str) -> str:
        return f"{label} {part}".strip()

    components = [
        _text(f"{prefix}Street", lab("Street"), 255, type="textarea"),
        _text(f"{prefix}City", lab("City"), 40),
        _text(f"{prefix}State", lab("State/Province"), 80),
        _text(f"{prefix}PostalCode", lab("Zip/Postal Code"), 20),
        _text(f"{prefix}Country", lab("Country"), 80),
        _number(f"{prefix}Latitude", "double", lab("Latitude"), 18, 15),
        _number(f"{prefix}Longitude", "double", lab("Longitude"), 18, 15),
    ]
    compound = FieldDef(
        f"{prefix}Address",
        "address",
        lab("Address"),
        createable=False,
        updateable=False,
        filterable=False,
        sortable=False,
        components=tuple(f.name for f in components),
    )
    return [*components, compound]


_LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
_INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction",
    "Consulting", "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Environmental",
    "Finance", "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance", "Machinery",
    "Manufacturing", "Media", "Not For Profit", "Other", "Recreation", "Retail", "Shipping", "Technology",
    "Telecommunications", "Transportation", "Utilities",
)  # fmt: skip
_ACCOUNT_TYPES = (
    "Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
    "Installation Partner", "Technology Partner", "Other",
)  # fmt: skip
_SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
_STAGES = (
    "Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
    "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost",
)  # fmt: skip


def _person_name_fields() -> list[FieldDef]:
    # Name is the read-only full name Salesforce derives from FirstName and LastName (see DERIVED_FIELDS).
    return [
        _picklist("Salutation", "Salutation", _SALUTATIONS),
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False),
        _text("Name", "Full Name", 121, createable=False, updateable=False, nillable=False, defaulted_on_create=True),
    ]


def account() -> ObjectDef:
    fields = [
        *system_fields("Account"),
        # A real org's describe reports Account.Name as neither idLookup nor unique.
        _text("Name", "Account Name", 255, nillable=False),
        _text("AccountNumber", "Account Number", 40),
        _picklist("Type", "Account Type", _ACCOUNT_TYPES),
        _picklist("Industry", "Industry", _INDUSTRIES),
        _number("AnnualRevenue", "currency", "Annual Revenue", 18, 0),
        FieldDef("NumberOfEmployees", "int", "Employees", digits=8),
        _text("Phone", "Account Phone", 40, type="phone"),
        _text("Fax", "Account Fax", 40, type="phone"),
        _text("Website", "Website", 255, type="url"),
        _text("Description", "Account Description", 32000, type="textarea"),
        *_address("Billing", "Billing"),
        *_address("Shipping", "Shipping"),
        _reference("ParentId", "Parent Account ID", "Account", "Parent", child_relationship="ChildAccounts"),
        _external_id("External_Id__c", "External Id"),
    ]
    return ObjectDef("Account", "001", fields, label="Account", label_plural="Accounts")


def contact() -> ObjectDef:
    fields = [
        *system_fields("Contact"),
        *_person_name_fields(),
        # Deleting an Account sends its Contacts (and Opportunities) to the Recycle Bin with it: describe reports
        # cascadeDelete on these standard relationships (sources in docs/emulator-design.md).
        _reference("AccountId", "Account ID", "Account", "Account", cascade_delete=True, child_relationship="Contacts"),
        # Email identifies a contact for upsert (idLookup) but, unlike an external id, is not unique.
        _text("Email", "Email", 80, type="email", id_lookup=True),
        _text("Phone", "Business Phone", 40, type="phone"),
        _text("MobilePhone", "Mobile Phone", 40, type="phone"),
        _text("Title", "Title", 128),
        _text("Department", "Department", 80),
        FieldDef("Birthdate", "date", "Birthdate"),
        _text("Description", "Contact Description", 32000, type="textarea"),
        _picklist("LeadSource", "Lead Source", _LEAD_SOURCES),
        _checkbox("HasOptedOutOfEmail", "Email Opt Out"),
        *_address("Mailing", "Mailing"),
        _external_id("External_Id__c", "External Id"),
    ]
    return ObjectDef("Contact", "003", fields, label="Contact", label_plural="Contacts")


def lead() -> ObjectDef:
    fields = [
        *system_fields("Lead"),
        *_person_name_fields(),
        _text("Company", "Company", 255, nillable=False),
        _picklist(
            "Status",
            "Lead Status",
            ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"),
            nillable=False,
            defaulted_on_create=True,
            default_picklist_value="Open - Not Contacted",
            default_value="Open - Not Contacted",
        ),
        _text("Email", "Email", 80, type="email", id_lookup=True),
        _text("Phone", "Phone", 40, type="phone"),
        _text("Title", "Title", 128),
        _text("Website", "Website", 255, type="url"),
        _picklist("LeadSource", "Lead Source", _LEAD_SOURCES),
        _picklist("Industry", "Industry", _INDUSTRIES),
        _number("AnnualRevenue", "currency", "Annual Revenue", 18, 0),
        FieldDef("NumberOfEmployees", "int", "Employees", digits=8),
        _text("Description", "Description", 32000, type="textarea"),
        _checkbox("HasOptedOutOfEmail", "Email Opt Out"),
        *_address("", ""),
    ]
    return ObjectDef("Lead", "00Q", fields, label="Lead", label_plural="Leads")


def opportunity() -> ObjectDef:
    fields = [
        *system_fields("Opportunity"),
        _text("Name", "Name", 120, nillable=False),
        _picklist("StageName", "Stage", _STAGES, nillable=False),
        FieldDef("CloseDate", "date", "Close Date", nillable=False),
        _number("Amount", "currency", "Amount", 18, 2),
        _number("Probability", "percent", "Probability (%)", 3, 0),
        _reference(
            "AccountId", "Account ID", "Account", "Account", cascade_delete=True, child_relationship="Opportunities"
        ),
        _picklist("Type", "Opportunity Type", ("Existing Customer - Upgrade", "New Customer")),
        _picklist("LeadSource", "Lead Source", _LEAD_SOURCES),
        _text("Description", "Description", 32000, type="textarea"),
    ]
    return ObjectDef("Opportunity", "006", fields, label="Opportunity", label_plural="Opportunities")


def widget() -> ObjectDef:
    """A custom object with one field of every type, sized so that each limit is easy to reach in tests."""
    custom = {"custom": True}
    fields = [
        *system_fields("Widget"),
        _text("Name", "Widget Name", 80, nillable=False),
        _text("Short_Text__c", "Short Text", 20, **custom),
        _text("Notes__c", "Notes", 32768, type="textarea", **custom),
        FieldDef("Count__c", "int", "Count", digits=9, **custom),
        FieldDef("Score__c", "double", "Score", precision=10, scale=4, **custom),
        FieldDef("Price__c", "currency", "Price", precision=16, scale=2, **custom),
        FieldDef("Discount__c", "percent", "Discount", precision=5, scale=2, **custom),
        _checkbox("Active__c", "Active", **custom),
        FieldDef("Launch_Date__c", "date", "Launch Date", **custom),
        FieldDef("Launched_At__c", "datetime", "Launched At", **custom),
        FieldDef("Opens_At__c", "time", "Opens At", **custom),
        _text("Contact_Email__c", "Contact Email", 80, type="email", **custom),
        _text("Support_Phone__c", "Support Phone", 40, type="phone", **custom),
        _text("Homepage__c", "Homepage", 255, type="url", **custom),
        _picklist("Color__c", "Color", ("Red", "Green", "Blue"), **custom),
        _picklist("Size__c", "Size", ("Small", "Medium", "Large"), restricted_picklist=True, **custom),
        _picklist(
            "Features__c",
            "Features",
            ("Waterproof", "Wireless", "Solar", "Recycled"),
            type="multipicklist",
            restricted_picklist=True,
            **custom,
        ),
        _reference("Account__c", "Account", "Account", "Account__r", child_relationship="Widgets__r", **custom),
        _text("Secret__c", "Secret", 175, type="encryptedstring", **custom),
        FieldDef("Payload__c", "base64", "Payload", length=32000000, **custom),
        _external_id("Widget_Key__c", "Widget Key", 80),
    ]
    return ObjectDef("Widget__c", "a01", fields, label="Widget", label_plural="Widgets", custom=True)


def builtin_schema() -> Schema:
    """A fresh schema of the built-in org (a new one each call, so a test may add objects to its own)."""
    return Schema([account(), contact(), lead(), opportunity(), widget()])


@dataclass(frozen=True)
class DerivedField:
    """A read-only field Salesforce computes from others on every write (e.g. a person's full Name)."""

    name: str
    inputs: tuple[str, ...]
    compute: Callable[..., Any]


def _full_name(first: str | None, last: str | None) -> str | None:
    """The non-empty parts joined by a space, None if both are empty (computed for every row of a Bulk job)."""
    if first and last:
        return f"{first} {last}"
    return first or last or None


_FULL_NAME = DerivedField("Name", ("FirstName", "LastName"), _full_name)

# Keyed by lower-case object name; applied to any object of that name that has the fields, so a user's own
# Contact describe (``--objects``) keeps Name in sync too.
DERIVED_FIELDS: dict[str, tuple[DerivedField, ...]] = {"contact": (_FULL_NAME,), "lead": (_FULL_NAME,)}


def derived_fields(obj: ObjectDef) -> tuple[DerivedField, ...]:
    """The derived fields of ``obj`` whose target and inputs all exist on it."""
    return tuple(
        d
        for d in DERIVED_FIELDS.get(obj.name.lower(), ())
        if obj.field(d.name) and all(obj.field(name) for name in d.inputs)
    )
