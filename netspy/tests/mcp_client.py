"""Drives netspy's MCP server with the official Python MCP SDK (a client written by others).

usage: mcp_client.py stdio COMMAND [ARGS...] | http URL | sse URL | client URL
A JSON list of [tool, arguments] pairs comes on stdin; a JSON report goes to stdout.
"""
import asyncio
import json
import sys

from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


async def drive(read, write, plan):
    report = {}
    async with ClientSession(read, write) as session:
        init = await session.initialize()
        report["protocol_version"] = init.protocol_version
        report["server_name"] = init.server_info.name
        listed = await session.list_tools()
        report["tools"] = [
            {
                "name": t.name,
                "description": t.description,
                "input_schema": t.input_schema,
                "output_schema": t.output_schema,
                "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else None,
            }
            for t in listed.tools
        ]
        calls = []
        for name, arguments in plan:
            try:
                result = await session.call_tool(name, arguments)
                texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
                calls.append(
                    {
                        "name": name,
                        "is_error": bool(result.is_error),
                        "text": "\n".join(texts),
                        "structured": result.structured_content,
                    }
                )
            except Exception as e:  # the SDK raises on JSON-RPC errors
                calls.append({"name": name, "exception": f"{type(e).__name__}: {e}"})
        report["calls"] = calls
    return report


async def main():
    transport, target, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    plan = json.load(sys.stdin)
    if transport == "stdio":
        params = StdioServerParameters(command=target, args=rest)
        async with stdio_client(params) as (read, write):
            report = await drive(read, write, plan)
    elif transport == "http":
        async with streamable_http_client(target) as streams:
            report = await drive(streams[0], streams[1], plan)
    elif transport == "sse":
        async with sse_client(target) as (read, write):
            report = await drive(read, write, plan)
    elif transport == "client":
        # The SDK's high-level client: discovers the server first (protocol 2026-07-28).
        async with Client(target) as client:
            report = {"protocol_version": getattr(client, "protocol_version", None), "calls": []}
            report["tools"] = [t.name for t in (await client.list_tools()).tools]
            for name, arguments in plan:
                result = await client.call_tool(name, arguments)
                texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
                report["calls"].append({"name": name, "is_error": bool(result.is_error),
                                        "text": "\n".join(texts), "structured": result.structured_content})
    else:
        raise SystemExit(f"unknown transport {transport}")
    print(json.dumps(report))


asyncio.run(main())
