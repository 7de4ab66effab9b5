"""Statements in context, question understanding, numeric conditions and vocabularies, on the guideline pack's text."""

from __future__ import annotations

import pytest

from medcite.compose.features import abstract_role, candidate_units
from medcite.index import default_guideline_pack
from medcite.models import Hit, Statement
from medcite.quote import normalise_quote, split_passage
from medcite.retrieve.match import everyday_factor, family_prefix, negated_stems, negation_agreement
from medcite.retrieve.question import NumericFact, fits, numeric_conditions, parse_question
from medcite.vocabulary import defined_abbreviations, vocabulary_entries

PACK = default_guideline_pack() / "content"


def _section(path: str, heading: str) -> str:
    """The text under a '### heading' (or '## heading') of a pack file, up to the next heading."""
    lines = (PACK / path).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip() == heading and line.startswith("#"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start + 1 : end]).strip()


def test_list_item_keeps_its_lead_in_line():
    # ada_diabetes_2024 pharmacotherapy.md, "When to Initiate Insulin (Recommendation 9.22, Grade E)".
    text = _section("ada_diabetes_2024/pharmacotherapy.md", "When to Initiate Insulin (Recommendation 9.22, Grade E)")
    item = next(p for p in split_passage(text) if p.text.startswith("A1C > 10%"))
    assert item.kind == "item"
    assert item.context == ("Insulin should be considered regardless of background therapy if:",)


def test_nested_item_keeps_its_parent_label():
    # aha_acc_hf_2022 classification.md, "Stage C": the four pillars sit under "HFrEF (LVEF ≤ 40%):".
    text = _section("aha_acc_hf_2022/classification.md", "Stage C — Symptomatic Heart Failure")
    item = next(p for p in split_passage(text) if p.text.startswith("Four-pillar GDMT"))
    assert item.context[-1] == "HFrEF (LVEF ≤ 40%):"
    assert item.text == "Four-pillar GDMT: ARNi (or ACEi/ARB) + beta-blocker + MRA + SGLT2i — all Class I, LOE A"


def test_table_row_keeps_its_header_row_and_reads_header_by_cell():
    # acr_gout_2020 flare_management.md, "Colchicine for Acute Flare": the low-dose regimen row.
    text = _section("acr_gout_2020/flare_management.md", "Colchicine for Acute Flare")
    row = next(p for p in split_passage(text) if p.kind == "row" and p.text.startswith("Regimen"))
    assert row.text == "Regimen | 1.2 mg orally immediately, followed by 0.6 mg orally 1 hour later"
    assert row.context == ("Parameter | Recommendation",)
    statement = Statement(text=row.text, citations=[1], context=list(row.context))
    assert statement.plain() == (
        "Parameter: Regimen; Recommendation: 1.2 mg orally immediately, followed by 0.6 mg orally 1 hour later"
    )


def test_anaphoric_sentence_keeps_the_sentence_it_points_back_to():
    # acr_gout_2020 flare_management.md, "First-Line Therapies": "The choice among these agents ..."
    text = _section("acr_gout_2020/flare_management.md", "First-Line Therapies")
    choice = next(p for p in split_passage(text) if p.text.startswith("The choice among these agents"))
    assert choice.context == (
        "Colchicine, NSAIDs, or glucocorticoids (oral, intraarticular, or intramuscular) are strongly recommended as "
        "first-line therapy for gout flares over IL-1 inhibitors or ACTH (Strong, High).",
    )


def test_algorithm_step_keeps_its_branch_and_questions_are_not_statements():
    # acr_gout_2020 flare_management.md, "Flare Treatment Decision Algorithm".
    text = _section("acr_gout_2020/flare_management.md", "Flare Treatment Decision Algorithm").strip("`\n")
    pieces = split_passage(text)
    step = next(p for p in pieces if p.text.startswith("NO --> Low-dose colchicine"))
    assert step.kind == "step"
    assert step.context[-1] == "Any contraindication to colchicine?"
    assert not any(p.kind == "step" and p.text.endswith("?") for p in pieces)


def test_every_unit_and_context_piece_is_verbatim_in_its_passage():
    text = _section("aasld_cirrhosis_2023/complications.md", "Acute Variceal Hemorrhage (AVH)")
    for piece in split_passage(text):
        for quoted in (piece.text, *piece.context):
            assert normalise_quote(quoted) in normalise_quote(text)


def test_numeric_conditions_read_ranges_thresholds_and_words():
    assert [(c.low, c.high, c.unit) for c in numeric_conditions("NEWS2 Score 5–6 — Urgent Response")] == [
        (5.0, 6.0, None)
    ]
    assert [(c.low, c.high, c.unit) for c in numeric_conditions("7.5% to < 20.0% (Intermediate Risk)")] == [
        (7.5, 20.0, "%")
    ]
    older = numeric_conditions("In patients older than age 65, a FIB-4 cutoff of > 2.0")
    assert (older[0].low, older[0].low_inclusive) == (65.0, False)
    assert numeric_conditions("COVID-19 and CURB-65") == []


def test_case_values_fit_the_stratum_that_applies():
    heart = NumericFact(name="heart score", value=3.0)
    assert fits(heart, numeric_conditions("HEART 0-3 AND hs-cTn")[0]) is True
    assert fits(heart, numeric_conditions("NO (HEART 4-6)")[0]) is False
    weight = NumericFact(name="tenecteplase dose", value=75.0, unit="kg")
    bands = numeric_conditions("<60 kg = 30 mg; 60-69 kg = 35 mg; 70-79 kg = 40 mg")
    assert [fits(weight, band) for band in bands if band.unit == "kg"] == [False, False, True]
    assert fits(NumericFact(name="ldl", value=6.0, unit="%"), numeric_conditions("< 10%")[0]) is True


def test_vignette_findings_are_separated_from_what_is_asked():
    frame = parse_question(
        "55M alcohol cirrhosis, hematemesis, HR 115, BP 95/60, Hb 7.8. Suspected variceal bleed - initial management?"
    )
    assert (frame.age_years, frame.sex) == (55.0, "male")
    assert {(f.name, f.value) for f in frame.facts} >= {("hr", 115.0), ("bp", 95.0), ("hb", 7.8)}
    assert "115" not in frame.focus and "variceal bleed" in frame.focus
    assert frame.is_vignette
    assert parse_question("nimodipine dose and duration in aneurysmal SAH?").form == "dose"
    assert parse_question("when to start insulin in T2D?").form == "time"


def test_abbreviations_defined_in_the_text_are_found():
    text = _section("aasld_cirrhosis_2023/complications.md", "Primary Prophylaxis (Prevention of First Bleed)")
    pairs = dict(defined_abbreviations(text))
    assert pairs["EVL"] == "endoscopic variceal ligation"


def test_maintained_vocabularies_give_brand_and_lay_names():
    entries = {e.concept: e for e in vocabulary_entries(["Empagliflozin lowers risk after myocardial infarction."])}
    assert "jardiance" in entries["drug:empagliflozin"].terms
    assert "heart attack" in entries["mesh:myocardial infarction"].terms


def test_everyday_words_weigh_less_than_clinical_ones():
    assert everyday_factor("insulin") == 1.0
    assert everyday_factor("take") < 0.5
    assert family_prefix("pregnant") == "pregnan" and "pregnanc".startswith(family_prefix("pregnant"))


def test_research_abstract_methods_and_conclusions_are_told_apart():
    def unit(section: str, text: str, evidence_type: str = "rct"):
        hit = Hit(passage_id="pmid:1#p1", doc_id="pmid:1", rank=1, score=1.0, title="t", section=section, text=text,
                  kind="pubmed-xml", evidence_type=evidence_type)  # fmt: skip
        return candidate_units([hit], {hit.passage_id})[0]

    assert abstract_role(unit("METHODS", "We conducted a 52-week randomized trial of 300 adults.")) == "methods"
    assert abstract_role(unit("CONCLUSIONS", "Drug A reduced flares compared with placebo.")) == "conclusions"
    assert abstract_role(unit("", "The primary objective was to compare two regimens in adults.")) == "methods"
    assert abstract_role(unit("", "We conducted a 52-week trial of two doses.", "guideline")) is None


@pytest.mark.parametrize("kind", ["sentence", "item", "row", "step", "list", "table", "algorithm"])
def test_the_pack_has_every_kind_of_unit(kind):
    text = "\n\n".join(
        _section(path, heading)
        for path, heading in [
            ("acr_gout_2020/flare_management.md", "Colchicine for Acute Flare"),
            ("acr_gout_2020/flare_management.md", "First-Line Therapies"),
            ("ada_diabetes_2024/pharmacotherapy.md", "When to Initiate Insulin (Recommendation 9.22, Grade E)"),
            ("acr_gout_2020/flare_management.md", "Flare Treatment Decision Algorithm"),
        ]
    ).replace("```", "")
    assert any(piece.kind == kind for piece in split_passage(text))


def test_what_the_question_rules_out_agrees_with_a_heading_that_rules_it_out_too():
    # ats_idsa_cap_2019: the regimen heading rules comorbidities out; the discharge list names them plainly.
    negated = negated_stems("first line abx for outpatient CAP, no comorbidities?")
    heading = "Healthy Adults Without Comorbidities or Risk Factors for Resistant Pathogens"
    assert heading in (PACK / "ats_idsa_cap_2019/empiric_antibiotic_therapy.md").read_text(encoding="utf-8")
    assert negation_agreement(negated, heading) == (1.0, 0.0)
    discharge = next(
        line
        for line in (PACK / "ats_idsa_cap_2019/special_populations_and_follow_up.md").read_text().splitlines()
        if "particularly for patients with comorbidities" in line
    )
    assert negation_agreement(negated, discharge) == (0.0, 1.0)
    assert negation_agreement(negated_stems("CAP outpatient, abx?"), heading) == (0.0, 0.0)


def test_heading_section_reads_the_deepest_heading_that_names_a_section():
    # ats_idsa_cap_2019 and idsa_uti_2022 headings, as stored passage sections.
    from medcite.retrieve.rerank import heading_section

    assert heading_section("Gram Stain and Sputum Culture > Outpatients") == "Diagnostic approach"
    assert heading_section("Agents Not Recommended for Complicated UTI") == "Pitfalls"
    assert heading_section("Outpatient Treatment > Healthy Adults Without Comorbidities or Risk Factors") is None


def test_an_exception_rules_out_what_follows_it_in_its_clause():
    # acc_aha_cholesterol_2018 risk_assessment.md, CAC 0 row: statins "may be withheld or delayed, except in
    # cigarette smokers, those with diabetes mellitus, ..." -- it agrees with a question that rules diabetes out.
    row = next(
        line
        for line in (PACK / "acc_aha_cholesterol_2018/risk_assessment.md").read_text(encoding="utf-8").splitlines()
        if "except in cigarette smokers" in line
    )
    negated = negated_stems("intermediate-risk 55M nonsmoker, no diabetes, CAC score 0 - statin?")
    assert negation_agreement(negated, row) == (1.0, 0.0)
    # The exception ends with its clause: a later sentence naming diabetes plainly conflicts.
    assert negation_agreement(negated, "Withheld, except in smokers. Start a statin in diabetes mellitus.") == (
        0.0,
        1.0,
    )


def test_a_negation_reaches_five_words_as_negex_does():
    # ats_idsa_cap_2019 empiric_antibiotic_therapy.md heads the ward regimen "Without Risk Factors for MRSA or
    # Pseudomonas aeruginosa": four words from 'Without' to 'MRSA', and it rules MRSA out as the question does.
    heading = "Without Risk Factors for MRSA or Pseudomonas aeruginosa"
    assert heading in (PACK / "ats_idsa_cap_2019/empiric_antibiotic_therapy.md").read_text(encoding="utf-8")
    negated = negated_stems("admitted to the ward with CAP, no MRSA or pseudomonas risk factors - regimen?")
    assert negation_agreement(negated, heading) == (1.0, 0.0)
    assert negation_agreement(negated, "If cultures grow MRSA: add vancomycin or linezolid.") == (0.0, 1.0)
