"""Serving the sandbox to the unchanged azure-core pipeline.

:class:`InProcessTransport` is azure-core's own ``RequestsTransport`` whose ``requests``
session hands requests for chosen hosts to an in-process handler instead of a socket.
Everything above the transport (azure-identity's token flow, the Cost Management client, retry,
authentication, logging and our policies) runs exactly as against Azure. Any other host is
refused as unreachable, so a sandbox client can never reach a real endpoint.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse

from finops_pipeline.providers.azure.sandbox.service import (
    AzureCostManagementSandbox,
    SandboxResponse,
)

#: (method, url, headers, body) -> response.
Handler = Callable[[str, str, Mapping[str, str], bytes | str | None], SandboxResponse]


class _InProcessAdapter(HTTPAdapter):
    def __init__(self, handler: Handler | None) -> None:
        super().__init__()
        self._handler = handler

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if self._handler is None:
            raise requests.exceptions.ConnectionError(
                f"{request.url} is unreachable from the sandbox", request=request
            )
        answer = self._handler(
            request.method or "GET", request.url or "", dict(request.headers), request.body
        )
        raw = HTTPResponse(
            body=io.BytesIO(answer.body),
            headers=answer.headers,
            status=answer.status,
            preload_content=False,
            decode_content=False,
        )
        return self.build_response(request, raw)


class InProcessTransport(RequestsTransport):
    """A ``RequestsTransport`` whose requests to ``base_urls`` are answered by ``handler``.

    Args:
        handler: Answers one request; None makes every host unreachable (a network outage).
        base_urls: The ``https://host`` prefixes the handler serves.
    """

    def __init__(self, handler: Handler | None, base_urls: Iterable[str], **kwargs: Any) -> None:
        session = requests.Session()
        session.trust_env = False
        refusing = _InProcessAdapter(None)
        session.mount("https://", refusing)
        session.mount("http://", refusing)
        answering = _InProcessAdapter(handler)
        for base_url in base_urls:
            session.mount(base_url, answering)
        super().__init__(session=session, session_owner=True, use_env_settings=False, **kwargs)


class AzureSandboxTransport(InProcessTransport):
    """The sandbox's Entra ID and Resource Manager, in-process.

    Args:
        sandbox: The synthetic tenant.
        unreachable: Refuse every request as a connection failure.
    """

    def __init__(
        self, sandbox: AzureCostManagementSandbox, *, unreachable: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(None if unreachable else sandbox.handle, sandbox.base_urls, **kwargs)
        self.sandbox = sandbox
