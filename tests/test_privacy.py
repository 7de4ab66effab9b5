"""Identifier scrubbing of typed questions (HIPAA Safe Harbor kinds), offline."""

import pytest

from medcite.privacy import clean_text, scrub_question


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
        "Is Amoxicillin 500 mg TDS orally for 5 days the first-line choice?",  # bts_cap_2009's dose, verbatim
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


def test_scrub_question_lower_case_first_and_last_name_after_a_cue_is_removed():
    result = scrub_question("my husband robert johnson has gout, what should he take?")
    assert result.text == "my husband [name] has gout, what should he take?"
    assert result.kinds == ["name"]


def test_scrub_question_lower_case_name_pair_without_a_cue_is_removed():
    result = scrub_question("can robert johnson take colchicine? ROBERT JOHNSON asked")
    assert result.text == "can [name] take colchicine? [name] asked"


def test_scrub_question_lower_case_name_with_two_family_names_is_removed_whole():
    assert scrub_question("patient maria garcia lopez has gout").text == "patient [name] has gout"


def test_scrub_question_lower_case_name_after_a_relation_cue_is_removed():
    assert scrub_question("my daughter emily has asthma").text == "my daughter [name] has asthma"


@pytest.mark.parametrize(
    "question",
    [
        "will this help? may i take it with food? the patient will improve with rest",
        "ms patients with a relapse; severe mr in a patient; can my son take aspirin?",
        "my patient has gout and a drug called colchicine was started",
        "what is parkinson disease? graves disease? crohn's flare? hashimoto's thyroiditis?",
        "Cushing syndrome, Addison's crisis, Wilson disease, Bell's palsy, Down syndrome and Hodgkin lymphoma",
        "stevens johnson syndrome after allopurinol",
        "my patient wilson disease",
    ],
)
def test_scrub_question_lower_case_words_and_eponyms_are_kept(question: str):
    result = scrub_question(question)
    assert result.text == question and result.kinds == []


def test_scrub_question_hyphenated_surname_is_removed_whole():
    result = scrub_question("My patient Maria Garcia-Lopez, 45, has gout.")
    assert result.text == "My patient [name], 45, has gout." and result.kinds == ["name"]


@pytest.mark.parametrize("title", ["Mr", "Mr.", "Mrs", "Ms", "Miss", "Dr.", "Prof"])
def test_scrub_question_surname_after_a_title_is_removed_whatever_the_name(title: str):
    result = scrub_question(f"Seen {title} Patel, MRN 12345678, with gout.")
    assert result.text == f"Seen {title} [name], [record number], with gout."
    assert result.kinds == ["name", "record_number"]


def test_scrub_question_us_address_with_direction_city_state_and_zip_is_removed_whole():
    result = scrub_question("He lives at 1600 Pennsylvania Avenue NW, Washington, DC 20500 and has gout.")
    assert result.text == "He lives at [address] and has gout." and result.kinds == ["address"]


def test_scrub_question_uk_address_with_town_and_postcode_is_removed_whole():
    result = scrub_question("She lives at 42 Baker Street, London NW1 6XE; gout?")
    assert result.text == "She lives at [address]; gout?" and result.kinds == ["address"]


def test_scrub_question_town_state_and_zip_without_a_street_are_removed():
    assert scrub_question("Lives in Springfield, IL 62704.").text == "Lives in [address]."


@pytest.mark.parametrize(
    "address", ["2001:db8::ff00:42:8329", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "fe80::1", "::ffff:192.0.2.1"]
)
def test_scrub_question_ipv6_address_is_removed(address: str):
    result = scrub_question(f"Logged in from {address} today.")
    assert result.text == "Logged in from [IP address] today." and result.kinds == ["ip_address"]


def test_scrub_question_times_and_ratios_are_not_ip_addresses():
    question = "Dose at 10:30 and 22:15:30, ratio 1:2:3"
    assert scrub_question(question).text == question


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("A ninety-five year old man with gout.", "A [age over 89] man with gout."),
        ("She is one hundred and two years old, gout?", "She is [age over 89], gout?"),
        ("A ninety-year-old with gout", "A [age over 89] with gout"),
        ("aged ninety one, gout?", "[age over 89], gout?"),
        ("a hundred years old", "[age over 89]"),
    ],
)
def test_scrub_question_ages_over_89_in_words_are_removed(question: str, expected: str):
    result = scrub_question(question)
    assert result.text == expected and result.kinds == ["age"]


@pytest.mark.parametrize(
    "question", ["An eighty-nine year old with gout.", "Over the last one hundred years", "A forty-five-year-old"]
)
def test_scrub_question_ages_up_to_89_and_other_numbers_in_words_are_kept(question: str):
    assert scrub_question(question).text == question


@pytest.mark.parametrize(
    "number", ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "3782 822463 10005", "4222222222222"]
)
def test_scrub_question_card_numbers_that_pass_luhn_are_removed(number: str):
    result = scrub_question(f"Card {number} was charged for the visit.")
    assert result.text == "Card [record number] was charged for the visit."
    assert result.kinds == ["record_number"]


def test_scrub_question_digit_runs_that_fail_luhn_are_kept():
    question = "Is 4111 1111 1111 1112 a lab code?"
    assert scrub_question(question).text == question


def test_scrub_question_iban_is_removed():
    assert scrub_question("Refund to GB82 WEST 1234 5698 7654 32 please").text == "Refund to [record number] please"


def test_scrub_question_control_bidi_and_zero_width_characters_are_stripped():
    result = scrub_question("gout\x00 flare\x07 \x1b[31mred\x1b[0m \u202eevil\u202c\u200b toe\ufeff\u00a0pain\t\tnow  ")
    assert result.text == "gout flare red evil toe pain now" and result.kinds == []


def test_scrub_question_zero_width_characters_cannot_hide_an_identifier():
    result = scrub_question("Jo\u200bhn Smith, 555-201-\u200d7788")
    assert result.text == "[name], [phone]" and result.kinds == ["name", "phone"]


def test_clean_text_keeps_line_breaks_and_indentation_for_lists():
    assert clean_text("- one\r\n  - two\u2028three  \n") == "- one\n  - two\nthree"


@pytest.mark.parametrize(
    "statement",
    [
        "- Scheduled acetaminophen 650–1000 mg every 4–6 hours",
        "| **Beclomethasone dipropionate (pMDI, standard particle)** | 200-500 | >500-1000 | >1000 |",
        "### Stage 1 Hypertension (130--139/80--89 mm Hg)",
        "Meta-analysis of 13 studies (RR 0.72; 95% CI 0.57-0.91); pH 7.0-7.25",
        "| **Spironolactone** | 12.5-25 mg once daily; Umeclidinium/Vilanterol (62.5/25 mcg)",
        "### Patient Health Questionnaire-9 (PHQ-9); | Patient Group | (Pre-existing Patient Factors)",
        "The EPDS and PHQ-9 may have reduced sensitivity",
        "- In key trials (Mason et al., JAMA Intern Med 2014); derived by Lee et al. in 1999; the Lee study",
        "NEWS2 is endorsed by NHS England and NHS Improvement",
        "| **Age** | Validated for ages 40-90 years |",
        "Mallory-Weiss tear; Parkland or Modified Brooke formula",
        "(doi: 10.1182/bloodadvances.2021004734)",
    ],
)
def test_scrub_question_guideline_statements_a_reviewer_may_copy_are_kept(statement: str):
    result = scrub_question(statement)
    assert result.text == statement and result.kinds == []


def test_scrub_question_changes_no_line_of_the_default_guideline_pack():
    from medcite.index import default_guideline_pack

    lines = [
        line.strip()
        for path in sorted(default_guideline_pack().rglob("*.md"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(lines) > 10_000
    assert [line for line in lines if scrub_question(line).kinds] == []
