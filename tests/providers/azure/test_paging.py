"""Following nextLink with the identical body, and stopping when a link repeats."""

from __future__ import annotations

import json

import pytest

from finops_pipeline.providers.azure.errors import AzurePaginationLoopError
from finops_pipeline.providers.azure.paging import RawResponse, fetch_query_pages
from finops_pipeline.providers.azure.query import CostScope

SCOPE = CostScope.subscription("3f1c2b7a-9d4e-4c1b-8a2f-6e5d4c3b2a19")
BODY = b'{"type":"ActualCost"}'


def page(next_link: str | None, day: int) -> RawResponse:
    document = {
        "properties": {
            "nextLink": next_link,
            "columns": [{"name": "UsageDate", "type": "Number"}],
            "rows": [[20240100 + day]],
        }
    }
    return RawResponse(200, json.dumps(document))


class ScriptedSender:
    """Serves a first page and then pages by link, recording every call."""

    def __init__(self, first: RawResponse, by_link: dict[str, RawResponse]) -> None:
        self.first = first
        self.by_link = by_link
        self.calls: list[tuple[str, bytes]] = []

    def first_page(self, scope: CostScope, body: bytes) -> RawResponse:
        self.calls.append((scope.path, body))
        return self.first

    def next_page(self, link: str, body: bytes) -> RawResponse:
        self.calls.append((link, body))
        return self.by_link[link]


def test_a_next_link_chain_is_followed_with_the_identical_body() -> None:
    sender = ScriptedSender(
        page("https://arm/q?$skiptoken=2", 1),
        {
            "https://arm/q?$skiptoken=2": page("https://arm/q?$skiptoken=3", 2),
            "https://arm/q?$skiptoken=3": page(None, 3),
        },
    )

    result = fetch_query_pages(sender, SCOPE, BODY)

    assert [row[0] for p in result.pages for row in p.rows] == [20240101, 20240102, 20240103]
    assert result.requests == 3
    assert [target for target, _ in sender.calls] == [
        SCOPE.path,
        "https://arm/q?$skiptoken=2",
        "https://arm/q?$skiptoken=3",
    ]
    assert {body for _, body in sender.calls} == {BODY}


def test_a_repeating_next_link_stops_the_loop() -> None:
    sender = ScriptedSender(
        page("https://arm/q?$skiptoken=A", 1),
        {
            "https://arm/q?$skiptoken=A": page("https://arm/q?$skiptoken=B", 2),
            "https://arm/q?$skiptoken=B": page("https://arm/q?$skiptoken=A", 3),
        },
    )

    with pytest.raises(AzurePaginationLoopError, match="repeated a nextLink after 3 pages"):
        fetch_query_pages(sender, SCOPE, BODY)
    assert len(sender.calls) == 3


def test_a_page_limit_stops_a_link_that_never_ends() -> None:
    class Endless(ScriptedSender):
        def next_page(self, link: str, body: bytes) -> RawResponse:
            self.calls.append((link, body))
            return page(f"https://arm/q?$skiptoken={len(self.calls)}", len(self.calls))

    sender = Endless(page("https://arm/q?$skiptoken=1", 1), {})
    with pytest.raises(AzurePaginationLoopError):
        fetch_query_pages(sender, SCOPE, BODY, max_pages=5)
    assert len(sender.calls) == 5


def test_a_204_first_page_is_one_request_and_no_rows() -> None:
    result = fetch_query_pages(ScriptedSender(RawResponse(204, ""), {}), SCOPE, BODY)
    assert result.requests == 1
    assert result.pages[0].rows == ()
