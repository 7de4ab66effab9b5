"""Identifier scrubbing of typed questions (HIPAA Safe Harbor kinds), offline."""

import pytest

from medcite.privacy import scrub_question


def test_scrub_question_with_a_name_and_a_phone_number_removes_both():
    result = scrub_question("John Smith (555-201-7788) asks: what is the first-line treatment for an acute gout flare?")
    assert result.text == "[name] [phone] asks: what is the first-line treatment for an acute gout flare?"
    assert result.kinds == ["name", "phone"] and result.is_redacted
    assert result.searchable == "asks: what is the first-line treatment for an acute gout flare?"


def test_scrub_question_every_safe_harbor_kind_is_replaced():
    result = scrub_question(
        "My patient Mrs Kowalczyk, MRN 00123456, born 03/14/1950, 93 years old, lives at 12 Oak Street; "
        "email jk@example.org, fax +44 20 7946 0958, see http://example.org/a from 192.168.1.20: gout?"
    )
    assert result.text == (
        "My patient [name], [record number], born [date], [age over 89], lives at [address]; "
        "email [e-mail], fax [phone], see [URL] from [IP address]: gout?"
    )
    assert result.kinds == ["address", "age", "date", "email", "ip_address", "name", "phone", "record_number", "url"]


@pytest.mark.parametrize(
    "question",
    [
        "What is the treatment of Parkinson disease in a 45-year-old?",
        "How is Graves' disease treated?",
        "Is Hodgkin lymphoma curable?",
        "What about Wilson disease?",
        "Will colchicine help a gout flare that started in 2019?",
        "What dose of amoxicillin 500 mg is used for otitis media?",
        "What is the first-line vasopressor in septic shock?",
        "Should DOACs or warfarin be used to treat DVT or PE?",
    ],
)
def test_scrub_question_clinical_text_eponyms_years_and_doses_are_kept(question: str):
    result = scrub_question(question)
    assert result.text == question and result.kinds == []


def test_scrub_question_a_first_name_and_a_specific_date_are_removed():
    result = scrub_question("Can Mary take ibuprofen with warfarin since March 3rd?")
    assert result.text == "Can [name] take ibuprofen with warfarin since [date]?"
