"""Tests for the NCBI E-utilities client, replaying real recorded responses on a local server.

No network: pytest-httpserver serves the recorded ESearch/EFetch bodies from
shared/data/pubmed/entrez/, and a fake clock/sleep stands in for real waiting.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import data_path
from medcite.corpus.eutils import EutilsClient, fetch_pubmed_records, search_pubmed
from medcite.errors import CorpusError, SourceUnavailable
from medcite.models import Document, SkippedRecord

API_KEY = "0123456789abcdef0123456789abcdef0123"
EMAIL = "dev@example.org"
# NCBI's answers that are not in the recorded set, copied in the shape NCBI sends them.
REJECTED_QUERY_BODY = b"""<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" \
"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">
<eSearchResult>
\t<ERROR>Empty term and query_key - nothing todo</ERROR>
</eSearchResult>
"""
ZERO_HITS_BODY = b"""<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" \
"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">
<eSearchResult><Count>0</Count><RetMax>0</RetMax><RetStart>0</RetStart><QueryKey>1</QueryKey>\
<WebEnv>MCID_65f1c0ffee</WebEnv><IdList/><TranslationSet/><QueryTranslation/>\
<ErrorList><PhraseNotFound>xyzzyplugh</PhraseNotFound></ErrorList>\
<WarningList><OutputMessage>No items found.</OutputMessage></WarningList></eSearchResult>
"""
RATE_LIMIT_BODY = json.dumps(
    {"error": "API rate limit exceeded", "api-key": API_KEY, "count": "11", "limit": "10"}
).encode()
EXPIRED_HISTORY_BODY = b"""<?xml version="1.0" encoding="UTF-8" ?>
<eFetchResult>
\t<ERROR>Unable to obtain query #1</ERROR>
</eFetchResult>
"""


class FakeTime:
    """A clock that only moves when ``sleep`` is called; records every sleep."""

    def __init__(self) -> None:
        self.now_s = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds


@pytest.fixture
def entrez() -> Path:
    return data_path("pubmed", "entrez")


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_client(httpserver: HTTPServer, fake_time: FakeTime, **overrides: object) -> EutilsClient:
    options: dict[str, object] = {
        "email": EMAIL,
        "api_key": None,
        "timeout_s": 2.0,
        "max_retries": 3,
        "batch_records": 200,
        "sleep": fake_time.sleep,
        "clock": fake_time.clock,
    }
    options.update(overrides)
    return EutilsClient(httpserver.url_for("/"), **options)  # type: ignore[arg-type]


def requests_to(httpserver: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == path]


# --- ESearch ---------------------------------------------------------------------------------------


def test_search_pubmed_history_response_returns_count_webenv_and_ids(
    httpserver: HTTPServer, entrez: Path, fake_time: FakeTime
) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data(
        (entrez / "esearch2.xml").read_bytes(), content_type="text/xml"
    )
    with make_client(httpserver, fake_time) as client:
        result = search_pubmed(client, "journal article[pt] AND 2008/04/15[edat]", max_records=100)

    assert result.count == 10238
    assert result.query_key == "12"
    assert result.webenv is not None and result.webenv.startswith("0rYFb69LfbTFXfG7-0HPo2BU")
    assert result.has_history
    assert len(result.ids) == 100
    assert result.ids[:3] == ("18411453", "18411431", "18411430")
    (request,) = requests_to(httpserver, "/esearch.fcgi")
    assert request.args["db"] == "pubmed"
    assert request.args["term"] == "journal article[pt] AND 2008/04/15[edat]"
    assert request.args["usehistory"] == "y"
    assert request.args["retmax"] == "100"
    assert request.args["tool"] == "medcite"
    assert request.args["email"] == EMAIL
    assert "api_key" not in request.args


def test_search_pubmed_without_history_returns_id_list(
    httpserver: HTTPServer, entrez: Path, fake_time: FakeTime
) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch1.xml").read_bytes())
    with make_client(httpserver, fake_time) as client:
        result = search_pubmed(client, "biopython", max_records=20)

    assert result.count == 5
    assert result.ids == ("16403221", "16377612", "14871861", "14630660", "12230038")
    assert result.webenv is None and result.query_key is None
    assert not result.has_history
    assert result.query_translation == "biopython[All Fields]"


def test_search_pubmed_retmax_is_capped_at_10000(httpserver: HTTPServer, entrez: Path, fake_time: FakeTime) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch4.xml").read_bytes())
    with make_client(httpserver, fake_time) as client:
        result = search_pubmed(client, "obstetrics", max_records=50_000)

    assert result.count == 177
    assert result.ids[:2] == ("75", "138")
    assert requests_to(httpserver, "/esearch.fcgi")[0].args["retmax"] == "10000"


def test_search_pubmed_rejected_query_raises_corpus_error(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data(REJECTED_QUERY_BODY)
    with make_client(httpserver, fake_time) as client, pytest.raises(CorpusError) as caught:
        search_pubmed(client, '""', max_records=10)

    assert caught.value.source == "pubmed"
    assert caught.value.record == '""'
    assert "Empty term and query_key - nothing todo" in str(caught.value)
    assert len(httpserver.log) == 1  # a rejected query is not retried


def test_search_pubmed_blank_query_raises_corpus_error_without_request(
    httpserver: HTTPServer, fake_time: FakeTime
) -> None:
    with make_client(httpserver, fake_time) as client, pytest.raises(CorpusError, match="query is empty"):
        search_pubmed(client, "   ", max_records=10)
    assert httpserver.log == []


def test_search_pubmed_zero_hits_reports_phrase_not_found(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data(ZERO_HITS_BODY)
    with make_client(httpserver, fake_time) as client:
        result = search_pubmed(client, "xyzzyplugh", max_records=10)

    assert result.count == 0
    assert result.ids == ()
    assert result.warnings == ("PhraseNotFound: xyzzyplugh", "OutputMessage: No items found.")


# --- EFetch and batching ---------------------------------------------------------------------------


def test_fetch_pubmed_records_history_pages_efetch_in_batches(
    httpserver: HTTPServer, entrez: Path, fake_time: FakeTime
) -> None:
    bodies = {"0": "pubmed1.xml", "2": "pubmed2.xml", "4": "pubmed7.xml"}

    def efetch(request: Request) -> Response:
        return Response((entrez / bodies[request.args["retstart"]]).read_bytes(), content_type="text/xml")

    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch2.xml").read_bytes())
    httpserver.expect_request("/efetch.fcgi").respond_with_handler(efetch)
    with make_client(httpserver, fake_time, batch_records=2) as client:
        records = list(fetch_pubmed_records("journal article[pt]", max_records=5, client=client))

    efetches = requests_to(httpserver, "/efetch.fcgi")
    assert [(r.args["retstart"], r.args["retmax"]) for r in efetches] == [("0", "2"), ("2", "2"), ("4", "1")]
    for request in efetches:
        assert request.args["db"] == "pubmed"
        assert request.args["retmode"] == "xml"
        assert request.args["query_key"] == "12"
        assert request.args["WebEnv"].startswith("0rYFb69LfbTFXfG7-0HPo2BU")
        assert request.args["tool"] == "medcite"
        assert "id" not in request.args
    assert all(isinstance(record, Document) for record in records)
    documents = [record for record in records if isinstance(record, Document)]
    assert [d.doc_id for d in documents] == [
        "pmid:12091962",
        "pmid:9997",
        "pmid:11748933",
        "pmid:11700088",
        "pmid:29963580",
    ]
    assert {d.kind for d in documents} == {"pubmed"}
    assert documents[0].title == "The treatment of AIDS behind the walls of correctional facilities."
    assert documents[4].title == (
        "Development of a pulmonary imaging biomarker pipeline for phenotyping of chronic lung disease."
    )
    # 4 requests without an API key: 3 gaps of at least 1/3 s each.
    assert sum(fake_time.sleeps) == pytest.approx(1.0)


def test_fetch_pubmed_records_without_history_fetches_id_lists(
    httpserver: HTTPServer, entrez: Path, fake_time: FakeTime
) -> None:
    bodies = {"16403221,16377612": "pubmed1.xml", "14871861": "pubmed4.xml"}

    def efetch(request: Request) -> Response:
        return Response((entrez / bodies[request.args["id"]]).read_bytes(), content_type="text/xml")

    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch1.xml").read_bytes())
    httpserver.expect_request("/efetch.fcgi").respond_with_handler(efetch)
    with make_client(httpserver, fake_time, batch_records=2) as client:
        documents = list(fetch_pubmed_records("biopython", max_records=3, client=client))

    efetches = requests_to(httpserver, "/efetch.fcgi")
    assert [r.args["id"] for r in efetches] == ["16403221,16377612", "14871861"]
    assert all("WebEnv" not in r.args and "retstart" not in r.args for r in efetches)
    assert [d.doc_id for d in documents if isinstance(d, Document)] == [
        "pmid:12091962",
        "pmid:9997",
        "pmid:27797938",
    ]
    telomere = documents[2]
    assert isinstance(telomere, Document)
    assert telomere.kind == "pubmed"
    assert telomere.title == (
        "Leucocyte telomere length, genetic variants at the TERT gene region and risk of pancreatic cancer."
    )
    assert telomere.year == 2017


def test_fetch_pubmed_records_zero_hits_yields_nothing(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data(ZERO_HITS_BODY)
    with make_client(httpserver, fake_time) as client:
        assert list(fetch_pubmed_records("xyzzyplugh", max_records=10, client=client)) == []
    assert requests_to(httpserver, "/efetch.fcgi") == []


def test_fetch_pubmed_records_truncated_body_skips_with_source_without_api_key(
    httpserver: HTTPServer, entrez: Path, fake_time: FakeTime
) -> None:
    body = (entrez / "pubmed1.xml").read_bytes()
    truncated = body[: body.index(b"<PMID>9997</PMID>") + 200]
    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch1.xml").read_bytes())
    httpserver.expect_request("/efetch.fcgi").respond_with_data(truncated)
    with make_client(httpserver, fake_time, api_key=API_KEY) as client:
        records = list(fetch_pubmed_records("biopython", max_records=2, client=client))

    assert isinstance(records[0], Document) and records[0].doc_id == "pmid:12091962"
    skipped = records[-1]
    assert isinstance(skipped, SkippedRecord) and skipped.record is None
    assert "/efetch.fcgi?" in skipped.source and "id=16403221%2C16377612" in skipped.source
    assert "tool=medcite" in skipped.source
    assert API_KEY not in skipped.source and EMAIL not in skipped.source
    assert requests_to(httpserver, "/efetch.fcgi")[0].args["api_key"] == API_KEY


def test_fetch_pubmed_records_expired_history_raises_source_unavailable(
    httpserver: HTTPServer, entrez: Path, fake_time: FakeTime
) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch2.xml").read_bytes())
    httpserver.expect_request("/efetch.fcgi").respond_with_data(EXPIRED_HISTORY_BODY)
    with make_client(httpserver, fake_time) as client, pytest.raises(SourceUnavailable) as caught:
        list(fetch_pubmed_records("journal article[pt]", max_records=3, client=client))
    assert "Unable to obtain query #1" in str(caught.value)
    assert "/efetch.fcgi?" in caught.value.url


# --- Rate limit --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("api_key", "min_total_s"), [(None, 2.0), (API_KEY, 0.6)])
def test_eutils_client_seven_requests_are_spaced_by_rate_limit(
    httpserver: HTTPServer, entrez: Path, fake_time: FakeTime, api_key: str | None, min_total_s: float
) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch1.xml").read_bytes())
    with make_client(httpserver, fake_time, api_key=api_key) as client:
        for _ in range(7):
            assert search_pubmed(client, "biopython", max_records=5).count == 5

    assert len(httpserver.log) == 7
    assert sum(fake_time.sleeps) >= min_total_s - 1e-9
    assert sum(fake_time.sleeps) == pytest.approx(min_total_s)
    assert all(r.args.get("api_key") == api_key for r, _ in httpserver.log)


def test_eutils_client_min_interval_follows_ncbi_policy() -> None:
    assert EutilsClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))).min_interval_s == (
        pytest.approx(1 / 3)
    )
    assert EutilsClient(
        api_key=API_KEY, transport=httpx.MockTransport(lambda r: httpx.Response(200))
    ).min_interval_s == pytest.approx(0.1)


# --- Retries -----------------------------------------------------------------------------------------


def test_eutils_client_429_with_retry_after_then_succeeds(
    httpserver: HTTPServer, entrez: Path, fake_time: FakeTime
) -> None:
    httpserver.expect_oneshot_request("/esearch.fcgi").respond_with_data(
        RATE_LIMIT_BODY, status=429, headers={"Retry-After": "2"}, content_type="application/json"
    )
    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch1.xml").read_bytes())
    with make_client(httpserver, fake_time, api_key=API_KEY) as client:
        assert search_pubmed(client, "biopython", max_records=5).count == 5

    assert len(httpserver.log) == 2
    assert fake_time.sleeps == [2.0]  # Retry-After (2 s) beats the first backoff (0.5 s)


def test_eutils_client_500_twice_then_succeeds_with_backoff(
    httpserver: HTTPServer, entrez: Path, fake_time: FakeTime
) -> None:
    for _ in range(2):
        httpserver.expect_oneshot_request("/esearch.fcgi").respond_with_data("Internal error", status=500)
    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch1.xml").read_bytes())
    with make_client(httpserver, fake_time) as client:
        assert search_pubmed(client, "biopython", max_records=5).ids[0] == "16403221"

    assert len(httpserver.log) == 3
    assert fake_time.sleeps == [0.5, 1.0]


def test_eutils_client_rate_limit_body_with_http_200_is_retried(
    httpserver: HTTPServer, entrez: Path, fake_time: FakeTime
) -> None:
    httpserver.expect_oneshot_request("/esearch.fcgi").respond_with_data(
        b'<?xml version="1.0" ?>\n<eSearchResult><ERROR>API rate limit exceeded</ERROR></eSearchResult>'
    )
    httpserver.expect_request("/esearch.fcgi").respond_with_data((entrez / "esearch1.xml").read_bytes())
    with make_client(httpserver, fake_time) as client:
        assert search_pubmed(client, "biopython", max_records=5).count == 5
    assert len(httpserver.log) == 2


def test_eutils_client_always_503_raises_source_unavailable_without_api_key(
    httpserver: HTTPServer, fake_time: FakeTime
) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data("Service Unavailable", status=503)
    with (
        make_client(httpserver, fake_time, api_key=API_KEY, max_retries=2) as client,
        pytest.raises(SourceUnavailable) as caught,
    ):
        search_pubmed(client, "biopython", max_records=5)

    message = str(caught.value)
    assert len(httpserver.log) == 3
    assert fake_time.sleeps[:1] == [0.5] and 1.0 in fake_time.sleeps
    assert "after 3 attempts" in message and "HTTP 503" in message
    assert "Check the network" in message and "API key" in message
    assert API_KEY not in message and API_KEY not in caught.value.url
    assert caught.value.url.startswith(httpserver.url_for("/esearch.fcgi"))
    assert "term=biopython" in caught.value.url
    assert caught.value.exit_code == 6


def test_eutils_client_429_rate_limit_body_never_leaks_api_key(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data(RATE_LIMIT_BODY, status=429)
    with (
        make_client(httpserver, fake_time, api_key=API_KEY, max_retries=1) as client,
        pytest.raises(SourceUnavailable) as caught,
    ):
        search_pubmed(client, "biopython", max_records=5)

    assert "API rate limit exceeded" in str(caught.value)
    assert API_KEY not in str(caught.value)


def test_eutils_client_400_fails_at_once(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    body = json.dumps({"error": "API key invalid", "api-key": API_KEY, "type": "invalid", "status": "unknown"})
    httpserver.expect_request("/esearch.fcgi").respond_with_data(body, status=400)
    with (
        make_client(httpserver, fake_time, api_key=API_KEY) as client,
        pytest.raises(SourceUnavailable) as caught,
    ):
        search_pubmed(client, "biopython", max_records=5)

    assert len(httpserver.log) == 1
    assert fake_time.sleeps == []
    assert "HTTP 400" in str(caught.value) and "API key invalid" in str(caught.value)
    assert API_KEY not in str(caught.value) and API_KEY not in caught.value.url


# --- Timeouts ----------------------------------------------------------------------------------------


def test_eutils_client_read_timeout_then_success(entrez: Path, fake_time: FakeTime) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, content=(entrez / "esearch3.xml").read_bytes())

    client = EutilsClient(transport=httpx.MockTransport(handler), sleep=fake_time.sleep, clock=fake_time.clock)
    with client:
        result = search_pubmed(client, "PNAS[ta] AND 97[vi]", max_records=6)

    assert result.count == 2652
    assert result.ids[0] == "11121077"
    assert len(calls) == 2
    assert str(calls[0].url).startswith("https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi?")


def test_eutils_client_read_timeouts_exhaust_retries(fake_time: FakeTime) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    client = EutilsClient(
        api_key=API_KEY,
        max_retries=2,
        transport=httpx.MockTransport(handler),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    with client, pytest.raises(SourceUnavailable, match="timed out") as caught:
        search_pubmed(client, "biopython", max_records=5)
    assert len(calls) == 3
    assert API_KEY not in str(caught.value)


def test_eutils_client_real_read_timeout_against_slow_server(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.4)
        return Response("too late")

    httpserver.expect_request("/esearch.fcgi").respond_with_handler(slow)
    started = time.monotonic()
    with (
        make_client(httpserver, fake_time, timeout_s=0.05, max_retries=0) as client,
        pytest.raises(SourceUnavailable) as caught,
    ):
        search_pubmed(client, "biopython", max_records=5)

    assert time.monotonic() - started < 0.4
    assert "timed out after 0.05 s" in str(caught.value)
    assert "after 1 attempt " in str(caught.value)


# --- Construction ------------------------------------------------------------------------------------


def test_public_url_omits_api_key_and_email() -> None:
    client = EutilsClient("http://localhost:1/eutils", email=EMAIL, api_key=API_KEY)
    url = client.public_url("efetch", {"db": "pubmed", "id": "1,2", "api_key": API_KEY})
    assert url == "http://localhost:1/eutils/efetch.fcgi?db=pubmed&id=1%2C2&tool=medcite"
    client.close()


@pytest.mark.parametrize(
    "options",
    [{"timeout_s": 0}, {"max_retries": -1}, {"batch_records": 0}, {"batch_records": 10_001}],
)
def test_eutils_client_out_of_range_options_raise_value_error(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        EutilsClient(**options)  # type: ignore[arg-type]


def test_search_pubmed_max_records_below_one_raises_value_error() -> None:
    with EutilsClient() as client, pytest.raises(ValueError, match="max_records"):
        search_pubmed(client, "gout", max_records=0)


def test_eutils_client_error_text_echoing_api_key_is_scrubbed(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_data(f"Forbidden: api_key={API_KEY} is blocked", status=403)
    with (
        make_client(httpserver, fake_time, api_key=API_KEY) as client,
        pytest.raises(SourceUnavailable) as caught,
    ):
        search_pubmed(client, "biopython", max_records=5)

    assert "HTTP 403 FORBIDDEN: Forbidden: api_key=*** is blocked" in str(caught.value)
    assert API_KEY not in str(caught.value)
