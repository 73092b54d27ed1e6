"""Following a Query's ``nextLink`` to the last page, POSTing the identical body each time.

The SDK returns only the first page. Every further page is a POST of the same bytes to
``properties.nextLink``; a link that repeats stops the loop with a typed error rather than
querying (and spending quota) forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from finops_pipeline.providers.azure.errors import AzurePaginationLoopError
from finops_pipeline.providers.azure.parsing import QueryPage, parse_query_page
from finops_pipeline.providers.azure.query import CostScope

MAX_PAGES = 10_000


@dataclass(frozen=True)
class RawResponse:
    """A successful Query response: 200 with a body, or 204 without one."""

    status: int
    text: str


class QuerySender(Protocol):
    """Sends Query requests; raises typed errors for anything but 200 and 204."""

    def first_page(self, scope: CostScope, body: bytes) -> RawResponse:
        """POST ``body`` to the scope's Query endpoint."""
        ...

    def next_page(self, link: str, body: bytes) -> RawResponse:
        """POST ``body`` to a ``nextLink``."""
        ...


@dataclass
class PagedQuery:
    """Every page of one query, in order."""

    pages: list[QueryPage] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.pages)


def fetch_query_pages(
    sender: QuerySender, scope: CostScope, body: bytes, *, max_pages: int = MAX_PAGES
) -> PagedQuery:
    """The query's pages, first to last.

    Raises:
        AzurePaginationLoopError: a ``nextLink`` repeated, or there were over ``max_pages``.
    """
    result = PagedQuery()
    response = sender.first_page(scope, body)
    page = parse_query_page(response.text, status=response.status)
    result.pages.append(page)
    followed: set[str] = set()
    while page.next_link is not None:
        link = page.next_link
        if link in followed or len(result.pages) >= max_pages:
            raise AzurePaginationLoopError(
                f"Cost Management repeated a nextLink after {len(result.pages)} pages of the "
                f"query for {scope.label}; stopped to avoid an endless loop. Retry the run later."
            )
        followed.add(link)
        response = sender.next_page(link, body)
        page = parse_query_page(response.text, status=response.status)
        result.pages.append(page)
    return result
