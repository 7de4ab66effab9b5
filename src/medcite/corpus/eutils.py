"""Live PubMed source: a small NCBI E-utilities client (ESearch + EFetch) on httpx.

Stage: corpus (remote source -> ``Document``), behind ``medcite ingest pubmed --query Q``.
It follows NCBI's "Entrez Programming Utilities Help" (https://www.ncbi.nlm.nih.gov/books/NBK25499/ ,
chapters "The E-utilities In-Depth" and "A General Introduction to the E-utilities"):
ESearch with ``usehistory=y`` returns ``Count``, ``WebEnv`` and ``QueryKey``; EFetch
(``db=pubmed``, ``retmode=xml``) is then paged with ``retstart``/``retmax``; every request
carries ``tool`` and, when given, ``email`` and ``api_key``; clients send at most 3 requests/s
without an API key and 10/s with one. EFetch bodies are parsed by ``corpus.pubmed_xml``.
Imports ``models``, ``errors`` and ``corpus``; never ``store``.
"""

from __future__ import annotations

import email.utils
import io
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Self

import httpx
from lxml import etree

import medcite
from medcite.errors import CorpusError, SourceUnavailable

if TYPE_CHECKING:
    from medcite.corpus import Record
    from medcite.settings import Settings

__all__ = [
    "DEFAULT_BASE_URL",
    "ESEARCH_MAX_RETMAX",
    "EutilsClient",
    "SearchResult",
    "fetch_pubmed_ids",
    "fetch_pubmed_records",
    "search_pubmed",
]

DEFAULT_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
TOOL_NAME = "medcite"
ESEARCH_MAX_RETMAX = 10_000
"""Largest ``retmax`` ESearch accepts for PubMed (E-utilities Help, "ESearch")."""

_RATE_LIMIT_MESSAGE = b"api rate limit exceeded"
_SECRET_PARAMS = frozenset({"api_key", "email"})
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
_ADVICE = (
    "Check the network connection (and https://www.ncbi.nlm.nih.gov/ status), the query, "
    "and the NCBI API key (--api-key or MEDCITE_NCBI_API_KEY), then try again later"
)


@dataclass(frozen=True)
class SearchResult:
    """What ESearch reported for a PubMed query.

    Attributes:
        count: Total number of PubMed records matching the query (may exceed ``ids``).
        ids: PMIDs (strings) of the first records, in PubMed's order, at most the ``retmax`` asked for.
        webenv: History server Web environment, or ``None`` when the response has no history.
        query_key: History server query key, or ``None`` when the response has no history.
        query_translation: How PubMed interpreted the query (``QueryTranslation``), if reported.
        warnings: NCBI's ``ErrorList``/``WarningList`` notes, e.g. ``"PhraseNotFound: xyzzy"``.
    """

    count: int
    ids: tuple[str, ...]
    webenv: str | None = None
    query_key: str | None = None
    query_translation: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_history(self) -> bool:
        """True when EFetch can page through the result with ``WebEnv`` and ``query_key``."""
        return bool(self.webenv and self.query_key)


class EutilsClient:
    """A rate-limited, retrying HTTP client for NCBI E-utilities (sync; calls the network).

    Requests are spaced at least ``min_interval_s`` apart (1/3 s without an API key, 1/10 s
    with one: NCBI's policy). Connect/read timeouts and other transport errors, HTTP 429,
    HTTP 5xx and bodies saying "API rate limit exceeded" are retried with exponential backoff
    (``backoff_s * 2**attempt``, at most ``max_backoff_s``; a ``Retry-After`` header wins when
    longer). Other HTTP 4xx answers fail at once. Use it as a context manager, or call
    ``close()``, to release the connection pool it owns.

    Args:
        base_url: E-utilities base URL; ``<utility>.fcgi`` is appended.
        email: Contact e-mail sent with every request (NCBI asks for one), or ``None``.
        api_key: NCBI API key (raises the limit to 10 requests/s), or ``None``. It is never shown
            in error messages or record sources.
        timeout_s: Timeout of one request (connect, read, write, pool), seconds, > 0.
        max_retries: Retries after the first attempt of each request, >= 0.
        batch_records: PMIDs per EFetch request, 1-10,000.
        http_client: An ``httpx.Client`` to use (not closed by this client), e.g. in tests.
        transport: An httpx transport for the client built here (``httpx.MockTransport`` in tests).
        sleep: Function that waits a number of seconds (injected by tests).
        clock: Monotonic clock in seconds (injected by tests).
        backoff_s: First retry delay, seconds.
        max_backoff_s: Upper bound of one retry delay (also caps ``Retry-After``), seconds.

    Raises:
        ValueError: A numeric argument is out of range.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        email: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        batch_records: int = 200,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 (got {timeout_s})")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 (got {max_retries})")
        if not 1 <= batch_records <= ESEARCH_MAX_RETMAX:
            raise ValueError(f"batch_records must be 1-{ESEARCH_MAX_RETMAX} (got {batch_records})")
        if backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("backoff_s and max_backoff_s must be >= 0")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.email = email or None
        self.api_key = api_key or None
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.batch_records = batch_records
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._clock = clock
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            transport=transport,
            timeout=timeout_s,
            headers={"User-Agent": f"medcite/{medcite.__version__}"},
            follow_redirects=True,
        )
        self._lock = threading.Lock()
        self._last_request_at: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, email: str | None = None, api_key: str | None = None) -> EutilsClient:
        """Build a client from ``Settings`` (``ncbi_*`` and ``eutils_*`` fields).

        Args:
            settings: The run's settings.
            email: Overrides ``settings.ncbi_email`` when given (the ``--email`` option).
            api_key: Overrides ``settings.ncbi_api_key`` when given (the ``--api-key`` option).

        Returns:
            A new client that owns its connection pool.
        """
        return cls(
            settings.eutils_base_url,
            email=email or settings.ncbi_email,
            api_key=api_key or settings.ncbi_api_key,
            timeout_s=settings.eutils_timeout_s,
            max_retries=settings.eutils_max_retries,
            batch_records=settings.eutils_batch_records,
        )

    @property
    def min_interval_s(self) -> float:
        """Minimum spacing between request starts, seconds (1/10 with an API key, else 1/3)."""
        return 1 / 10 if self.api_key else 1 / 3

    def close(self) -> None:
        """Close the connection pool if this client created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def url_for(self, utility: str) -> str:
        """Return the endpoint URL of a utility, e.g. ``url_for("efetch")`` -> ``<base>efetch.fcgi``."""
        return f"{self.base_url}{utility}.fcgi"

    def public_url(self, utility: str, params: Mapping[str, str | int]) -> str:
        """Return the request URL as it may be shown or stored: without ``api_key`` or ``email``."""
        shown = {key: str(value) for key, value in params.items() if key not in _SECRET_PARAMS}
        shown["tool"] = TOOL_NAME
        return str(httpx.URL(self.url_for(utility), params=shown))

    def get(self, utility: str, params: Mapping[str, str | int]) -> httpx.Response:
        """GET one E-utility, honouring the rate limit and retrying transient failures.

        Args:
            utility: Utility name without ``.fcgi``: ``"esearch"``, ``"efetch"``, ...
            params: Query parameters; ``tool``, ``email`` and ``api_key`` are added here.

        Returns:
            The successful (HTTP 2xx) response, body fully read.

        Raises:
            SourceUnavailable: HTTP 4xx other than 429 (at once), or every attempt failed (timeouts,
                network errors, HTTP 429/5xx, "API rate limit exceeded" bodies). The message and
                ``url`` never contain the API key.
        """
        url = self.url_for(utility)
        shown_url = self.public_url(utility, params)
        query = {key: str(value) for key, value in params.items()}
        query["tool"] = TOOL_NAME
        if self.email:
            query["email"] = self.email
        if self.api_key:
            query["api_key"] = self.api_key
        n_attempts = self.max_retries + 1
        problem = "no attempt was made"
        delay_s = 0.0
        for attempt in range(n_attempts):
            if attempt:
                self._sleep(delay_s)
            self._wait_for_slot()
            retry_after_s: float | None = None
            try:
                response = self._http.get(url, params=query, timeout=self.timeout_s)
            except httpx.TimeoutException as exc:
                problem = f"the request timed out after {self.timeout_s:g} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                problem = f"the connection failed ({type(exc).__name__}: {self._scrub(str(exc))})"
            else:
                status = response.status_code
                if status == 429 or status >= 500:
                    problem = f"HTTP {status} {response.reason_phrase}{self._ncbi_detail(response)}"
                    retry_after_s = _retry_after_s(response)
                elif status >= 400:
                    raise SourceUnavailable(
                        f"NCBI E-utilities rejected the {utility} request with HTTP {status} "
                        f"{response.reason_phrase}{self._ncbi_detail(response)}. Check the query and the "
                        f"NCBI API key (--api-key or MEDCITE_NCBI_API_KEY). URL: {shown_url}",
                        url=shown_url,
                    )
                elif _RATE_LIMIT_MESSAGE in response.content[:2048].lower():
                    problem = "NCBI answered 'API rate limit exceeded'"
                    retry_after_s = _retry_after_s(response)
                else:
                    return response
            delay_s = min(self.backoff_s * 2**attempt, self.max_backoff_s)
            if retry_after_s is not None:
                delay_s = max(delay_s, min(retry_after_s, self.max_backoff_s))
        raise SourceUnavailable(
            f"NCBI E-utilities did not answer the {utility} request after {n_attempts} "
            f"attempt{'s' if n_attempts > 1 else ''} (last problem: {problem}). {_ADVICE}. URL: {shown_url}",
            url=shown_url,
        )

    def _wait_for_slot(self) -> None:
        """Sleep until ``min_interval_s`` has passed since the previous request started."""
        with self._lock:
            now = self._clock()
            if self._last_request_at is not None:
                wait_s = self._last_request_at + self.min_interval_s - now
                if wait_s > 0:
                    self._sleep(wait_s)
                    now = self._clock()
            self._last_request_at = now

    def _scrub(self, text: str) -> str:
        """Remove the API key and e-mail from text that may reach a user."""
        for secret in (self.api_key, self.email):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _ncbi_detail(self, response: httpx.Response) -> str:
        """Return ``": <NCBI's error message>"`` from a JSON or XML error body, or ``""``."""
        message = _error_message(response.content)
        return f": {self._scrub(message)}" if message else ""


def search_pubmed(client: EutilsClient, query: str, *, max_records: int, sort: str | None = None) -> SearchResult:
    """Run ESearch on PubMed with the history server (``usehistory=y``); calls the network.

    Args:
        client: The E-utilities client.
        query: A PubMed query, as typed in PubMed's search box.
        max_records: How many PMIDs to ask for (``retmax``, capped at 10,000), >= 1.
        sort: ESearch's ``sort`` ('pub_date': newest first; None: PubMed's default, most recent added first).

    Returns:
        The hit count, up to ``max_records`` PMIDs, and ``WebEnv``/``QueryKey`` when NCBI
        returned them. A query with no hits gives ``count == 0`` (not an error).

    Raises:
        ValueError: ``max_records`` is below 1.
        CorpusError: The query is empty or PubMed rejected it (``source="pubmed"``,
            ``record=query``, NCBI's ``ERROR`` text in the message).
        SourceUnavailable: NCBI could not be reached or answered something other than an
            ``eSearchResult`` (see ``EutilsClient.get``).
    """
    if max_records < 1:
        raise ValueError(f"max_records must be >= 1 (got {max_records})")
    if not query.strip():
        raise CorpusError(
            "The PubMed query is empty; pass a search term, e.g. --query 'gout colchicine'.",
            source="pubmed",
            record=query,
        )
    params: dict[str, str | int] = {
        "db": "pubmed",
        "term": query,
        "usehistory": "y",
        "retstart": 0,
        "retmax": min(max_records, ESEARCH_MAX_RETMAX),
    }
    if sort:
        params["sort"] = sort
    response = client.get("esearch", params)
    root = _parse_xml(response.content, "esearch", client.public_url("esearch", params))
    if root.tag != "eSearchResult":
        url = client.public_url("esearch", params)
        raise SourceUnavailable(
            f"NCBI ESearch answered <{root.tag}> instead of <eSearchResult>. {_ADVICE}. URL: {url}",
            url=url,
        )
    error = " ".join((root.findtext("ERROR") or "").split())
    if error:
        raise CorpusError(
            f"PubMed rejected the query {query!r}: {error}. Check the query syntax "
            "(https://pubmed.ncbi.nlm.nih.gov/help/) and try again.",
            source="pubmed",
            record=query,
        )
    warnings = tuple(
        f"{child.tag}: {' '.join(child.itertext()).strip()}"
        for container in ("ErrorList", "WarningList")
        for child in root.iterfind(container + "/*")
        if isinstance(child.tag, str)
    )
    return SearchResult(
        count=int((root.findtext("Count") or "0").strip() or 0),
        ids=tuple(text.strip() for text in root.xpath("IdList/Id/text()")),
        webenv=(root.findtext("WebEnv") or "").strip() or None,
        query_key=(root.findtext("QueryKey") or "").strip() or None,
        query_translation=(root.findtext("QueryTranslation") or "").strip() or None,
        warnings=warnings,
    )


def fetch_pubmed_records(query: str, *, max_records: int, client: EutilsClient) -> Iterator[Record]:
    """Search PubMed and yield its records, fetched with EFetch in batches; calls the network.

    ESearch runs once with the history server; EFetch (``db=pubmed``, ``retmode=xml``) then
    pages with ``WebEnv``/``query_key``/``retstart``/``retmax``, ``client.batch_records`` at a
    time, up to ``max_records`` or the hit count. When ESearch returns no ``WebEnv``, the
    returned ``IdList`` is fetched with ``id=`` instead. Each body is parsed by
    ``corpus.pubmed_xml.iter_pubmed_xml`` with the request URL (without API key or e-mail) as
    its source. Records already yielded stay valid when a later batch fails.

    Args:
        query: A PubMed query, as typed in PubMed's search box.
        max_records: Upper bound on records requested, >= 1 (more than 10,000 needs NCBI EDirect).
        client: The E-utilities client (its ``batch_records`` sets the EFetch page size).

    Yields:
        ``Document`` objects with ``kind="pubmed"``, in PubMed's order, and ``SkippedRecord``
        for records the parser could not read. A query with no hits yields nothing.

    Raises:
        ValueError: ``max_records`` is below 1.
        CorpusError: The query is empty or PubMed rejected it.
        SourceUnavailable: NCBI could not be reached after retries, or EFetch answered an error
            (e.g. an expired ``WebEnv``).
    """
    result = search_pubmed(client, query, max_records=max_records)
    n_records = min(result.count, max_records)
    if n_records <= 0:
        return
    batch = client.batch_records
    if result.has_history:
        for retstart in range(0, n_records, batch):
            yield from _fetch_batch(
                client,
                {
                    "db": "pubmed",
                    "retmode": "xml",
                    "WebEnv": result.webenv or "",
                    "query_key": result.query_key or "",
                    "retstart": retstart,
                    "retmax": min(batch, n_records - retstart),
                },
            )
    else:
        yield from fetch_pubmed_ids(result.ids[:n_records], client=client)


def fetch_pubmed_ids(ids: Sequence[str], *, client: EutilsClient) -> Iterator[Record]:
    """Fetch PubMed records by PMID with EFetch, ``client.batch_records`` at a time; calls the network.

    Yields:
        ``Document`` objects (``kind="pubmed"``) and ``SkippedRecord`` for records the parser could not read;
        records of batches already fetched stay valid when a later batch fails.

    Raises:
        SourceUnavailable: NCBI could not be reached after retries, or EFetch answered an error.
    """
    batch = client.batch_records
    for start in range(0, len(ids), batch):
        yield from _fetch_batch(client, {"db": "pubmed", "retmode": "xml", "id": ",".join(ids[start : start + batch])})


def _fetch_batch(client: EutilsClient, params: Mapping[str, str | int]) -> Iterator[Record]:
    """Run one EFetch request and parse its PubmedArticleSet body."""
    from medcite.corpus.pubmed_xml import iter_pubmed_xml  # written in parallel; imported lazily

    response = client.get("efetch", params)
    url = client.public_url("efetch", params)
    body = response.content
    if b"<eFetchResult" in body[:4096]:
        message = _error_message(body) or "an empty eFetchResult"
        raise SourceUnavailable(
            f"NCBI EFetch answered an error: {client._scrub(message)}. The search history may have "
            f"expired; run the ingest again. {_ADVICE}. URL: {url}",
            url=url,
        )
    yield from iter_pubmed_xml(io.BytesIO(body), source=url, kind="pubmed")


def _parse_xml(body: bytes, utility: str, url: str) -> etree._Element:
    """Parse an E-utilities XML body; raise ``SourceUnavailable`` when it is not XML."""
    try:
        return etree.fromstring(body, parser=_XML_PARSER)
    except etree.XMLSyntaxError as exc:
        detail = _error_message(body)
        raise SourceUnavailable(
            f"NCBI {utility} answered a body that is not XML ({detail or exc}). {_ADVICE}. URL: {url}",
            url=url,
        ) from None


def _error_message(body: bytes) -> str:
    """Return NCBI's error text from a JSON (``{"error": ...}``) or XML (``<ERROR>``) body, else ``""``."""
    text = body.strip()
    if not text:
        return ""
    if text.startswith(b"{"):
        try:
            payload = json.loads(text)
        except ValueError:
            return ""
        error = payload.get("error") if isinstance(payload, dict) else None
        return str(error) if error else ""
    if text.startswith(b"<"):
        try:
            root = etree.fromstring(text, parser=_XML_PARSER)
        except etree.XMLSyntaxError:
            return ""
        found = root.xpath("string(//ERROR[1])") if root.tag != "ERROR" else root.xpath("string(.)")
        return " ".join(str(found).split())
    return " ".join(text[:200].decode("utf-8", "replace").split())


def _retry_after_s(response: httpx.Response) -> float | None:
    """Return the ``Retry-After`` delay in seconds (delta-seconds or HTTP-date, RFC 9110 §10.2.3)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
