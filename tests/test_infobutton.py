"""HL7 Infobutton, URL-based (issue 13): requests in the implementation guide's forms, Atom and JSON responses."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from medcite.index import default_guideline_pack, ingest
from medcite.infobutton import parse_request, question_for
from medcite.settings import Settings
from medcite.store import Store
from medcite.web import create_app

ATOM = "{http://www.w3.org/2005/Atom}"
ICD10CM = "2.16.840.1.113883.6.90"
SNOMED = "2.16.840.1.113883.6.96"
GOUT = "What is the first-line treatment for an acute gout flare?"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("infobutton") / "library.db"
    settings = Settings(library=path, embedder="none")
    with Store.open(path) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
    with TestClient(create_app(settings)) as test_client:
        assert test_client.post("/api/articles", json={"question": GOUT}).status_code == 201
        yield test_client


def test_an_icd10cm_code_request_returns_an_atom_feed_with_the_gout_article(client: TestClient):
    params = {
        "mainSearchCriteria.v.c": "M10.9",
        "mainSearchCriteria.v.cs": ICD10CM,
        "mainSearchCriteria.v.dn": "Gout",
        "informationRecipient": "PROV",
        "taskContext.c.c": "PROBLISTREV",
    }
    response = client.get("/infobutton", params=params)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    for required in ("title", "id", "updated", "author"):  # RFC 4287: a feed's required elements
        assert feed.find(f"{ATOM}{required}") is not None, required
    categories = {c.get("scheme"): c.get("term") for c in feed.findall(f"{ATOM}category")}
    assert categories["mainSearchCriteria.v.c"] == "M10.9" and categories["mainSearchCriteria.v.cs"] == ICD10CM
    entries = feed.findall(f"{ATOM}entry")
    titles = [entry.findtext(f"{ATOM}title") for entry in entries]
    assert titles[0] == "Gout: overview"  # the code list's description of M10.9 is "Gout, unspecified"
    assert GOUT in titles
    gout = entries[titles.index(GOUT)]
    link = gout.find(f"{ATOM}link")
    assert link.get("rel") == "alternate" and link.get("type") == "text/html"
    assert link.get("href").startswith("http://testserver/articles/1/what-is-the-first-line-treatment")
    assert link.get("href").endswith("?audience=clinician")
    for required in ("id", "updated", "summary"):
        assert gout.find(f"{ATOM}{required}") is not None, required
    assert "colchicine" in gout.findtext(f"{ATOM}summary").lower()
    page = client.get(link.get("href").replace("http://testserver", ""))
    assert page.status_code == 200 and GOUT in page.text


def test_a_display_name_request_for_a_patient_in_json_names_its_fields_as_the_atom_elements(client: TestClient):
    params = {
        "mainSearchCriteria.v.c": "90560007",
        "mainSearchCriteria.v.cs": SNOMED,
        "mainSearchCriteria.v.dn": "Gout",
        "informationRecipient": "PAT",
        "taskContext.c.c": "MEDOE",
        "age.v.v": "8",
        "age.v.u": "a",
        "knowledgeResponseType": "application/json",
    }
    response = client.get("/infobutton", params=params)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    feed = response.json()["feed"]
    assert feed["title"]["_value"] == "medcite" and feed["updated"]["_value"].endswith("Z")
    assert {"scheme": "informationRecipient", "term": "PAT"} in feed["category"]
    first = feed["entry"][0]
    assert first["title"]["_value"] == "Treatment of Gout in children"  # ordering: treatment; age 8: children
    assert first["link"][0]["href"].endswith("?audience=patient") and first["link"][0]["rel"] == "alternate"
    assert set(first) == {"lang", "title", "link", "id", "updated", "summary"}
    again = client.get("/infobutton", params=params).json()["feed"]["entry"][0]
    assert again["id"] == first["id"]  # the same request finds the article it created, not a new one


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"informationRecipient": "PROV"}, 400, "The request has no main search criteria"),
        ({"mainSearchCriteria.v.c": "123", "mainSearchCriteria.v.cs": "1.2.3.4"}, 400, "The code system 1.2.3.4"),
        ({"mainSearchCriteria.v.c": "90560007", "mainSearchCriteria.v.cs": SNOMED}, 400, "SNOMED CT codes are read"),
        ({"mainSearchCriteria.v.c": "M10.999", "mainSearchCriteria.v.cs": ICD10CM}, 404, "No ICD-10-CM code"),
        ({"mainSearchCriteria.v.dn": "x" * 301}, 400, "The parameter mainSearchCriteria.v.dn is longer than 300"),
        ({"mainSearchCriteria.v.dn": "Gout", "informationRecipient": "NURSE"}, 400, "informationRecipient"),
        ({"mainSearchCriteria.v.dn": "Gout", "age.v.v": "old"}, 400, "age.v.v must be a number"),
    ],
)
def test_bad_requests_get_the_error_in_the_format_asked_for(client: TestClient, params, status, message):
    atom = client.get("/infobutton", params=params)
    assert atom.status_code == status and atom.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(atom.content)
    assert feed.findtext(f"{ATOM}subtitle").startswith(message) and feed.findall(f"{ATOM}entry") == []
    as_json = client.get("/infobutton", params={**params, "knowledgeResponseType": "application/json"})
    assert as_json.status_code == status and as_json.json()["ok"] is False
    assert as_json.json()["error"].startswith(message)


def test_the_task_chooses_the_intent_and_the_age_the_population():
    base = {"mainSearchCriteria.v.dn": "Gout"}
    assert question_for(parse_request({**base, "taskContext.c.c": "LABRREV"}), "Gout") == "Diagnosis of Gout"
    older = parse_request({**base, "taskContext.c.c": "OE", "age.v.v": "800", "age.v.u": "mo"})
    assert older.age_years == pytest.approx(66.67, abs=0.01)
    assert question_for(older, "Gout") == "Treatment of Gout in older adults"
    assert question_for(parse_request({**base, "age.v.v": "40"}), "Gout") == "Gout: overview"
    assert parse_request({**base, "knowledgeResponseType": "application/json"}).response_type == "json"


def test_codes_name_their_category_and_odd_values_are_cleaned_or_refused(client: TestClient):
    coded = {"mainSearchCriteria.v.c": "J45.909", "mainSearchCriteria.v.cs": ICD10CM, "taskContext.c.c": "MEDOE"}
    feed = ET.fromstring(client.get("/infobutton", params=coded).content)
    assert feed.findall(f"{ATOM}entry")[0].findtext(f"{ATOM}title") == "Treatment of Asthma"  # J45, not "Unspecified"
    for chapter_or_block in ("13", "M05-M14"):
        response = client.get("/infobutton", params={**coded, "mainSearchCriteria.v.c": chapter_or_block})
        assert response.status_code == 404
        assert f"No ICD-10-CM code '{chapter_or_block}' in the ICD-10-CM code list." in response.text
    control = client.get("/infobutton", params={"mainSearchCriteria.v.dn": "Gout\x01\x02", "foo.bar": "\x08"})
    assert control.status_code == 200
    cleaned = ET.fromstring(control.content)  # well-formed: control characters were removed
    first = cleaned.findall(f"{ATOM}entry")[0]
    plain = ET.fromstring(client.get("/infobutton", params={"mainSearchCriteria.v.dn": "Gout"}).content)
    assert first.findtext(f"{ATOM}id") == plain.findall(f"{ATOM}entry")[0].findtext(f"{ATOM}id")  # no duplicate
    old = client.get("/infobutton", params={"mainSearchCriteria.v.dn": "Gout", "age.v.v": "70000", "age.v.u": "a"})
    assert old.status_code == 400 and "an age of 0-130 years" in old.text
