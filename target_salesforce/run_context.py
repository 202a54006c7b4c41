"""What one run shares across its sinks: the API client, the describe cache, the writers and the reject file.

Sinks of different streams drain in parallel threads; sharing one client (one session, one token renewal) and one
describe cache keeps API calls to one login and one describe per object (the configured objects and their lookups'
parents all in one call), however many streams there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from target_salesforce.bulk_writer import BulkWriter
from target_salesforce.client import SalesforceClient
from target_salesforce.collections_writer import CollectionsWriter
from target_salesforce.dependencies import configured_lookups
from target_salesforce.describe import DescribeCache
from target_salesforce.rejects import RejectWriter
from target_salesforce.results import ResultsWriter

DEFAULT_REJECTS_PATH = "target-salesforce-rejects.jsonl"


@dataclass
class RunContext:
    client: SalesforceClient
    describe: DescribeCache
    collections: CollectionsWriter
    bulk: BulkWriter
    rejects: RejectWriter
    results: ResultsWriter | None = None  # only with results_path, and never in a dry run (nothing gets an Id)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RunContext:
        client = SalesforceClient(config)
        return cls(
            client=client,
            describe=DescribeCache(client, configured_lookups(config)),
            collections=CollectionsWriter(client),
            bulk=BulkWriter(client),
            rejects=RejectWriter(config.get("rejects_path") or DEFAULT_REJECTS_PATH),
            results=ResultsWriter(config["results_path"], config.get("results_format") or "jsonl")
            if config.get("results_path") and not config.get("dry_run")
            else None,
        )
