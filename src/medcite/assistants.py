"""medcite for AI assistants: a Model Context Protocol server (``medcite mcp``) over one library.

Three tools, so that an assistant quotes medcite's passages with their citations instead of inventing them:

- ``search(query, limit)``: the passages that best answer a question (``medcite search``).
- ``ask(question, audience, follow_up_of)``: the cited answer as ``medcite ask --format json`` prints it,
  abstention included; the question is scrubbed of personal identifiers first, and the answer is saved for
  follow-ups.
- ``get_passage(passage_id)``: one cited passage, in full, with its document's citation details.

Built on the official MCP Python SDK (``mcp``, its ``MCPServer``); transports: stdio (an assistant starts
``medcite mcp`` itself) and Streamable HTTP on 127.0.0.1 (``medcite mcp --http``). An adapter like ``cli`` and
``web``: nothing imports it but ``cli``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from medcite.answer import ask as compose_answer
from medcite.answer import load_answer, save_answer, search_passages
from medcite.errors import MedciteError
from medcite.review import check_length, prepare_question

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from medcite.retrieve import Retriever
    from medcite.store import Store

__all__ = ["create_server"]

INSTRUCTIONS = (
    "medcite answers clinical questions from a library of guidelines, PubMed abstracts and consumer-health pages. "
    "Every statement of an answer carries numbered citations to passages; quote them, cite them, and do not add "
    "claims of your own. An answer with abstained=true means the library does not cover the question."
)


def create_server(store: Store, retriever: Retriever) -> MCPServer:
    """An MCP server whose tools read ``store`` through ``retriever`` (both stay open while it runs).

    Tool failures (an empty question, an unknown passage or answer id) come back as tool errors with medcite's
    message, never as a crash of the server.
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer(name="medcite", instructions=INSTRUCTIONS)

    @server.tool()
    async def search(query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Find the library passages that best answer a clinical question (best first, at most 50).

        Each result has passage_id, title, section, text, evidence_type, year, organization or journal, doi, pmid.
        """
        if not 1 <= limit <= 50:
            raise ToolError(f"limit must be 1-50 (got {limit}).")
        try:
            check_length(query, "search query")
            hits = search_passages(query, retriever=retriever, limit=limit)
        except MedciteError as exc:
            raise ToolError(str(exc)) from exc
        return [
            hit.model_dump(
                include={
                    "passage_id",
                    "title",
                    "section",
                    "text",
                    "evidence_type",
                    "year",
                    "organization",
                    "journal",
                    "doi",
                    "pmid",
                    "rank",
                }  # fmt: skip
            )
            for hit in hits
        ]

    @server.tool()
    async def ask(
        question: str,
        audience: Literal["clinician", "student", "patient"] = "clinician",
        follow_up_of: str | None = None,
    ) -> dict[str, Any]:
        """Answer a clinical question: bottom line and sections, every statement cited to a source passage.

        Returns medcite's answer JSON: bottom_line, sections, references (each with passage_id and the passage
        text), abstained (true: the library does not cover it; say so rather than answer), disclaimer, id (pass
        it as follow_up_of to ask a follow-up).
        """
        try:
            earlier = load_answer(store, follow_up_of) if follow_up_of else None
            scrubbed = prepare_question(question)
            answer = compose_answer(scrubbed.searchable, retriever=retriever, audience=audience, follow_up_of=earlier)
            answer = answer.model_copy(update={"question": scrubbed.text})
            save_answer(store, answer)
        except MedciteError as exc:
            raise ToolError(str(exc)) from exc
        return answer.model_dump(mode="json")

    @server.tool()
    async def get_passage(passage_id: str) -> dict[str, Any]:
        """Return one passage in full (as cited: '<doc_id>#p<n>') with its document's citation details.

        The document's title, source, year, evidence type, DOI, PMID and URL, so a citation can be checked.
        """
        try:
            passage = store.get_passage(passage_id.strip())
            document = store.get_document(passage.doc_id)
        except MedciteError as exc:
            raise ToolError(str(exc)) from exc
        return {
            "passage_id": passage.passage_id,
            "section": passage.section,
            "text": passage.text,
            "document": {
                "doc_id": document.doc_id,
                "title": document.title,
                "source": document.organization or document.journal,
                "year": document.year,
                "evidence_type": document.evidence_type,
                "doi": document.doi,
                "pmid": document.pmid,
                "url": document.url,
                "retracted": document.is_retracted,
            },
        }

    return server
