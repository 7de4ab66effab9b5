"""HL7 Infobutton (Context-Aware Knowledge Retrieval), URL-based: read a knowledge request, write the response.

The request's parameters are those of the HL7 Version 3 Implementation Guide: Context-Aware Knowledge Retrieval
Application (Infobutton), URL-based implementation (Release 4): ``mainSearchCriteria.v.c`` / ``.v.cs`` /
``.v.dn`` (the concept: code, code system OID, display name), ``informationRecipient`` (``PROV`` a provider,
``PAT`` the patient; also ``informationRecipient.languageCode.c``), ``taskContext.c.c`` (the EHR task, HL7
ActTaskCode), ``patientPerson.administrativeGenderCode.c``, ``age.v.v`` with ``age.v.u`` (UCUM: a, mo, wk, d)
and ``knowledgeResponseType`` (``application/json`` or ``text/xml`` / ``application/atom+xml``).

The response is an Atom feed (RFC 4287) as the guide specifies, or its JSON form (objects named as the Atom
elements, text in ``_value``, as NLM's MedlinePlus Connect serves it): the feed echoes the request as
``category`` elements (scheme = parameter name, term = value) and lists one ``entry`` per medcite article, with
the article's page as the entry's ``link``.

An ICD-10-CM code is read through the ``simple-icd-10-cm`` code list (the CDC's ICD-10-CM release): its
description names the concept. Other code systems are read through the display name the EHR sends with the code.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Literal
from xml.etree import ElementTree as ET

from pydantic import BaseModel, Field

from medcite.errors import InvalidInput, NotFound
from medcite.models import Audience, Intent

__all__ = [
    "CODE_SYSTEMS",
    "KnowledgeRequest",
    "atom_feed",
    "concept_name",
    "json_feed",
    "parse_request",
    "question_for",
]

CODE_SYSTEMS = {
    "2.16.840.1.113883.6.90": "ICD-10-CM",
    "2.16.840.1.113883.6.96": "SNOMED CT",
    "2.16.840.1.113883.6.88": "RxNorm",
    "2.16.840.1.113883.6.1": "LOINC",
    "2.16.840.1.113883.6.103": "ICD-9-CM",
}
"""Code systems by HL7 OID (HL7 OID registry); only ICD-10-CM codes are read without a display name."""
ICD10CM = "2.16.840.1.113883.6.90"
RECIPIENTS: dict[str, Audience] = {"PROV": "clinician", "PAT": "patient"}
"""informationRecipient codes (HL7 RoleClass) -> medcite audience; absent: a provider."""
TASK_INTENTS: dict[str, Intent] = {
    "OE": "treatment",
    "MEDOE": "treatment",
    "MEDLISTREV": "treatment",
    "LABOE": "diagnosis",
    "LABRREV": "diagnosis",
    "PROBLISTE": "overview",
    "PROBLISTREV": "overview",
    "DIAGLISTE": "overview",
}
"""taskContext.c.c (HL7 ActTaskCode) -> what the clinician is asking for: ordering wants treatment, lab work wants
diagnosis, the problem list an overview; any other task (or none): an overview."""
MAX_VALUE_CHARS = 300
MAX_AGE_YEARS = 130
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\ufffe\uffff]")
AGE_UNITS_IN_YEARS = {"a": 1.0, "mo": 1 / 12, "wk": 7 / 365.25, "d": 1 / 365.25, "h": 1 / 8766}
"""UCUM units of age.v.u -> years."""
CHILD_BELOW_YEARS = 18
OLDER_FROM_YEARS = 65
"""Ages that choose the population a question is asked for: children (under 18, the UN Convention on the Rights
of the Child, article 1) and older adults (65 and over, the convention of US health statistics: CDC, Census
Bureau)."""


class KnowledgeRequest(BaseModel):
    """An Infobutton knowledge request, read from its URL parameters."""

    code: str | None = Field(default=None, description="mainSearchCriteria.v.c")
    code_system: str | None = Field(default=None, description="mainSearchCriteria.v.cs (an OID)")
    display_name: str | None = Field(default=None, description="mainSearchCriteria.v.dn")
    audience: Audience = Field(description="From informationRecipient: PROV -> clinician, PAT -> patient.")
    task: str | None = Field(default=None, description="taskContext.c.c (HL7 ActTaskCode)")
    sex: str | None = Field(default=None, description="patientPerson.administrativeGenderCode.c (F, M, UN)")
    age_years: float | None = Field(default=None, description="age.v.v in age.v.u, as years")
    response_type: Literal["atom", "json"] = Field(description="From knowledgeResponseType (default Atom).")
    parameters: dict[str, str] = Field(description="Every Infobutton parameter received, for the feed's categories.")


def parse_request(params: Mapping[str, str]) -> KnowledgeRequest:
    """Read a knowledge request from URL parameters.

    Raises:
        InvalidInput: A value over ``MAX_VALUE_CHARS``, no main search criteria (neither a code nor a display name),
            an unknown informationRecipient or knowledgeResponseType, an age that is not a number or not in a
            UCUM unit of ``AGE_UNITS_IN_YEARS``.
    """
    for name, value in params.items():
        if len(value) > MAX_VALUE_CHARS or len(name) > 100:
            raise InvalidInput(
                f"The parameter {_CONTROL.sub('', name)[:100]} is longer than {MAX_VALUE_CHARS} characters."
            )
    # Control and format characters (invisible, and not allowed in XML) are removed from every name and value.
    params = {_CONTROL.sub("", name): " ".join(_CONTROL.sub("", value).split()) for name, value in params.items()}
    wanted = (params.get("knowledgeResponseType") or "text/xml").strip().lower()
    if wanted not in ("text/xml", "application/atom+xml", "application/xml", "application/json"):
        raise InvalidInput(
            f"knowledgeResponseType {wanted!r} is not served; ask for text/xml, application/atom+xml or "
            "application/json."
        )
    code = (params.get("mainSearchCriteria.v.c") or "").strip() or None
    display = " ".join((params.get("mainSearchCriteria.v.dn") or "").split()) or None
    if code is None and display is None:
        raise InvalidInput(
            "The request has no main search criteria: send mainSearchCriteria.v.c with mainSearchCriteria.v.cs, "
            "or mainSearchCriteria.v.dn."
        )
    recipient = (params.get("informationRecipient") or "PROV").strip().upper()
    if recipient not in RECIPIENTS:
        raise InvalidInput(f"informationRecipient {recipient!r} is not served; send PROV (a provider) or PAT.")
    age: float | None = None
    if params.get("age.v.v"):
        unit = (params.get("age.v.u") or "a").strip()
        try:
            value = float(params["age.v.v"])
        except ValueError:
            raise InvalidInput("age.v.v must be a number (with age.v.u, a UCUM unit: a, mo, wk, d).") from None
        if unit not in AGE_UNITS_IN_YEARS or not 0 <= value * AGE_UNITS_IN_YEARS.get(unit, 0) <= MAX_AGE_YEARS:
            raise InvalidInput(
                f"age.v.u must be a UCUM unit of age (a, mo, wk, d, h) and age.v.v an age of 0-{MAX_AGE_YEARS} years."
            )
        age = value * AGE_UNITS_IN_YEARS[unit]
    return KnowledgeRequest(
        code=code,
        code_system=(params.get("mainSearchCriteria.v.cs") or "").strip() or None,
        display_name=display,
        audience=RECIPIENTS[recipient],
        task=(params.get("taskContext.c.c") or "").strip().upper() or None,
        sex=(params.get("patientPerson.administrativeGenderCode.c") or "").strip().upper() or None,
        age_years=age,
        response_type="json" if wanted == "application/json" else "atom",
        parameters={name: value for name, value in params.items() if "." in name or name in _TOP_LEVEL},
    )


_TOP_LEVEL = {"informationRecipient", "knowledgeResponseType", "performer", "encounter"}


def concept_name(request: KnowledgeRequest) -> str:
    """The concept the request is about: an ICD-10-CM code's description, else the display name sent.

    Raises:
        InvalidInput: A code of a system other than ICD-10-CM without a display name, or of an unknown system.
        NotFound: An ICD-10-CM code that the code list does not hold.
    """
    if request.code and request.code_system == ICD10CM:
        import warnings

        with warnings.catch_warnings():  # the code list loads its data with importlib's legacy read_text
            warnings.simplefilter("ignore", DeprecationWarning)
            import simple_icd_10_cm as icd

        code = request.code.upper()
        if not icd.is_valid_item(code) or not (icd.is_category(code) or icd.is_subcategory(code)):
            raise NotFound("ICD-10-CM code", request.code[:40], where="the ICD-10-CM code list")
        if request.display_name:
            return request.display_name
        # The code's category (its three-character ancestor) names the condition; the subcategories add
        # qualifiers ("Unspecified asthma, uncomplicated") that a question does not need.
        category = code if icd.is_category(code) else next(a for a in icd.get_ancestors(code) if icd.is_category(a))
        return icd.get_description(category)
    if request.display_name:
        return request.display_name
    system = CODE_SYSTEMS.get(request.code_system or "")
    if system is None:
        raise InvalidInput(
            f"The code system {request.code_system or '(none)'} is not known here; send ICD-10-CM codes "
            f"(mainSearchCriteria.v.cs={ICD10CM}) or a display name (mainSearchCriteria.v.dn)."
        )
    raise InvalidInput(f"{system} codes are read through their display name here: send mainSearchCriteria.v.dn too.")


def question_for(request: KnowledgeRequest, concept: str) -> str:
    """The question a knowledge request asks: the concept, the task's intent and the patient's age group."""
    intent = TASK_INTENTS.get(request.task or "", "overview")
    question = {"treatment": f"Treatment of {concept}", "diagnosis": f"Diagnosis of {concept}"}.get(
        intent, f"{concept}: overview"
    )
    if request.age_years is not None and request.age_years < CHILD_BELOW_YEARS:
        question += " in children"
    elif request.age_years is not None and request.age_years >= OLDER_FROM_YEARS:
        question += " in older adults"
    return question


class FeedEntry(BaseModel):
    """One entry of the response: a medcite article."""

    title: str
    url: str = Field(description="Absolute URL of the article page.")
    summary: str = Field(description="The article's bottom line, plain text.")
    updated: str = Field(description="ISO 8601 UTC.")
    id: str = Field(description="A stable id (the article's URL without the audience).")


ATOM = "http://www.w3.org/2005/Atom"


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _zulu(when: str) -> str:
    return when.replace("+00:00", "Z") if when else _now()


def atom_feed(request: KnowledgeRequest | None, entries: list[FeedEntry], *, base_url: str, error: str = "") -> str:
    """The knowledge response as an Atom 1.0 feed (XML text); ``error`` goes in the subtitle, with no entries.

    ``request`` is None when the request could not be read (then ``error`` says why).
    """
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": "en", "xml:base": base_url})
    ET.SubElement(feed, f"{{{ATOM}}}title", {"type": "text"}).text = "medcite"
    concept = (request.display_name or request.code or "") if request else ""
    subtitle = error or f"medcite articles for {concept}".strip()
    ET.SubElement(feed, f"{{{ATOM}}}subtitle", {"type": "text"}).text = subtitle
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = "medcite"
    ET.SubElement(author, f"{{{ATOM}}}uri").text = base_url
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = _now()
    ET.SubElement(feed, f"{{{ATOM}}}id").text = f"{base_url}infobutton"
    for name, value in (request.parameters if request else {}).items():
        ET.SubElement(feed, f"{{{ATOM}}}category", {"scheme": name, "term": value})
    for item in entries:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry", {"xml:lang": "en"})
        ET.SubElement(entry, f"{{{ATOM}}}title", {"type": "text"}).text = item.title
        ET.SubElement(
            entry,
            f"{{{ATOM}}}link",
            {"href": item.url, "rel": "alternate", "type": "text/html", "title": item.title, "hreflang": "en"},
        )
        ET.SubElement(entry, f"{{{ATOM}}}id").text = item.id
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = _zulu(item.updated)
        ET.SubElement(entry, f"{{{ATOM}}}summary", {"type": "text"}).text = item.summary
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(feed, encoding="unicode")


def json_feed(request: KnowledgeRequest | None, entries: list[FeedEntry], *, base_url: str) -> dict[str, Any]:
    """The knowledge response in its JSON form: the Atom feed as objects, element text under ``_value``."""
    return {
        "feed": {
            "base": base_url,
            "lang": "en",
            "title": {"_value": "medcite", "type": "text"},
            "subtitle": {
                "_value": f"medcite articles for {(request.display_name or request.code) if request else ''}",
                "type": "text",
            },
            "author": {"name": {"_value": "medcite"}, "uri": {"_value": base_url}},
            "updated": {"_value": _now()},
            "id": {"_value": f"{base_url}infobutton"},
            "category": [{"scheme": k, "term": v} for k, v in (request.parameters if request else {}).items()],
            "entry": [
                {
                    "lang": "en",
                    "title": {"_value": item.title, "type": "text"},
                    "link": [
                        {
                            "href": item.url,
                            "rel": "alternate",
                            "type": "text/html",
                            "title": item.title,
                            "hreflang": "en",
                        }
                    ],
                    "id": {"_value": item.id},
                    "updated": {"_value": _zulu(item.updated)},
                    "summary": {"_value": item.summary, "type": "text"},
                }
                for item in entries
            ],
        }
    }
