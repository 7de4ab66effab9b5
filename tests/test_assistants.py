"""The MCP server (``medcite mcp``) through the SDK's own client: in-process, over stdio, and over Streamable HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from conftest import free_port
from medcite.assistants import create_server
from medcite.index import default_guideline_pack, ingest
from medcite.retrieve import Retriever
from medcite.settings import Settings
from medcite.store import Store

mcp = pytest.importorskip("mcp")
GOUT = "What is the first-line treatment for an acute gout flare?"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "library.db"
    settings = Settings(library=path, embedder="none")
    with Store.open(path) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
    return path


def _structured(result) -> object:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if isinstance(content, dict) and set(content) == {"result"} else content
    return json.loads(result.content[0].text)


def test_the_tools_answer_with_citations_that_resolve_through_get_passage(library: Path):
    settings = Settings(library=library, embedder="none")

    async def session() -> None:
        with Store.open(library) as store:
            server = create_server(store, Retriever(store, settings))
            async with mcp.Client(server) as client:
                tools = {tool.name: tool for tool in (await client.list_tools()).tools}
                assert set(tools) == {"search", "ask", "get_passage"}
                assert "question" in tools["ask"].input_schema["properties"]
                answer = _structured(await client.call_tool("ask", {"question": GOUT}))
                assert answer["abstained"] is False and "colchicine" in answer["bottom_line"]["text"].lower()
                for reference in answer["references"]:  # every citation resolves, to the passage quoted
                    passage = _structured(
                        await client.call_tool("get_passage", {"passage_id": reference["passage_id"]})
                    )
                    assert passage["text"] == reference["passage"]
                    assert passage["document"]["doc_id"] == reference["passage_id"].split("#")[0]
                first = _structured(
                    await client.call_tool("get_passage", {"passage_id": answer["references"][0]["passage_id"]})
                )
                assert first["document"]["source"] == "ACR" and first["document"]["doi"] == "10.1002/art.41247"
                follow = _structured(
                    await client.call_tool(
                        "ask", {"question": "What about in pregnancy?", "follow_up_of": answer["id"]}
                    )
                )
                assert follow["follow_up_of"] == answer["id"]
                hits = _structured(await client.call_tool("search", {"query": "gout flare colchicine", "limit": 3}))
                assert len(hits) == 3 and hits[0]["passage_id"].startswith("guideline:")
                missing = await client.call_tool("get_passage", {"passage_id": "guideline:none#p0"})
                assert missing.is_error and "No passage with id 'guideline:none#p0'" in missing.content[0].text
                empty = await client.call_tool("ask", {"question": "   "})
                assert empty.is_error
                named = _structured(await client.call_tool("ask", {"question": "John Smith asks: " + GOUT.lower()}))
                assert "John" not in named["question"] and "Smith" not in named["question"]

    anyio.run(session)


def test_medcite_mcp_serves_stdio_and_streamable_http(library: Path):
    env = {**os.environ, "MEDCITE_EMBEDDER": "none"}
    command = [sys.executable, "-m", "medcite", "mcp", "--library", str(library)]

    async def over_stdio() -> list[str]:
        parameters = mcp.StdioServerParameters(command=command[0], args=command[1:], env=env)
        async with mcp.Client(parameters) as client:
            return sorted(tool.name for tool in (await client.list_tools()).tools)

    assert anyio.run(over_stdio) == ["ask", "get_passage", "search"]
    port = free_port()
    process = subprocess.Popen([*command, "--http", "--port", str(port)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "medcite mcp --http did not start"
                time.sleep(0.3)

        async def over_http() -> dict:
            async with mcp.Client(f"http://127.0.0.1:{port}/mcp") as client:
                return _structured(await client.call_tool("ask", {"question": GOUT}))

        answer = anyio.run(over_http)
        assert answer["references"][0]["passage_id"].startswith("guideline:acr_gout_2020#p")
    finally:
        process.terminate()
        process.wait(timeout=30)
