import re

import pytest

from medcite.corpus.guidelines import read_guideline_pack
from medcite.index import build_passages, default_guideline_pack, split_sentences
from medcite.models import Document, Section


@pytest.fixture(scope="module")
def guideline_passages():
    documents = list(read_guideline_pack(default_guideline_pack()))
    return documents, [p for d in documents for p in build_passages(d)]


def test_build_passages_text_is_a_slice_of_its_section(guideline_passages):
    documents, _ = guideline_passages
    for document in documents:
        sections = [s for s in document.sections if s.text.strip()]
        passages = build_passages(document)
        by_heading: dict[str, list[Section]] = {}
        for section in sections:
            by_heading.setdefault(section.heading, []).append(section)
        for passage in passages:
            if (
                passage.kind == "table"
                and "\n" in passage.text
                and passage.char_end - passage.char_start < len(passage.text)
            ):
                continue  # a split table repeats its header rows
            assert any(
                s.text[passage.char_start : passage.char_end] == passage.text for s in by_heading[passage.section]
            )


def test_build_passages_ids_are_ordered_and_zero_based(guideline_passages):
    documents, _ = guideline_passages
    passages = build_passages(documents[0])
    assert [p.passage_id for p in passages] == [f"{documents[0].doc_id}#p{n}" for n in range(len(passages))]


def test_build_passages_text_passages_fit_and_never_cut_mid_word(guideline_passages):
    documents, _ = guideline_passages
    n_checked = 0
    for document in documents:
        for passage in build_passages(document):
            if passage.kind != "text":
                continue
            assert len(passage.text) <= 1200, passage.passage_id
            section = next(
                s
                for s in document.sections
                if s.heading == passage.section and s.text[passage.char_start : passage.char_end] == passage.text
            )
            after = section.text[passage.char_end : passage.char_end + 1]
            before = section.text[passage.char_start - 1 : passage.char_start] if passage.char_start else ""
            assert after in ("", " ", "\n") and before in ("", " ", "\n"), passage.passage_id
            n_checked += 1
    assert n_checked > 1000


def test_build_passages_splits_long_paragraph_between_sentences():
    sentences = [f"Sentence number {i} says that the dose is {i}.5 mg per day." for i in range(60)]
    document = Document(
        doc_id="file:x", kind="files", external_id="x", title="t", sections=[Section(text=" ".join(sentences))]
    )
    passages = build_passages(document, max_chars=400)
    assert len(passages) > 1
    for passage in passages:
        assert len(passage.text) <= 400
        assert re.fullmatch(r"(Sentence number \d+ says that the dose is \d+\.5 mg per day\. ?)+", passage.text)
    assert " ".join(p.text for p in passages) == " ".join(sentences)


def test_build_passages_splits_big_table_between_rows_repeating_header():
    rows = "\n".join(f"| row {i} | value {i} |" for i in range(200))
    table = "| name | value |\n|---|---|\n" + rows
    document = Document(
        doc_id="file:t", kind="files", external_id="t", title="t", sections=[Section(text=table, kind="table")]
    )
    passages = build_passages(document, max_chars=300)
    assert len(passages) > 1
    assert all(p.text.startswith("| name | value |\n|---|---|\n| row ") for p in passages)
    assert sum(p.text.count("| row ") for p in passages) == 200


def test_split_sentences_keeps_abbreviations_decimals_and_initials():
    text = "Give 0.6 mg e.g. after meals. Smith J. et al. agree. Fig. 2 shows it! Done?"
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "Give 0.6 mg e.g. after meals.",
        "Smith J. et al. agree.",
        "Fig. 2 shows it!",
        "Done?",
    ]
