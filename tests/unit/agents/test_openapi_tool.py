"""OpenAPI tools against a real FastAPI app on loopback, serving its own /openapi.json."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse
from pydantic import BaseModel

from shipyard.agents.tools.base import ToolContext, call_tool
from shipyard.agents.tools.openapi import OpenApiToolset
from shipyard.errors import InvalidArgument
from shipyard.storage import LocalStorage
from shipyard_services.inference.server import HttpServer


class Item(BaseModel):
    name: str
    price: float


def build_app() -> FastAPI:
    app = FastAPI(title="shop")
    items = {1: {"id": 1, "name": "kettle", "price": 20.0}}

    @app.get("/items/{item_id}", operation_id="get_item", summary="One item by id.")
    def get_item(item_id: int, verbose: bool = False) -> dict[str, object]:
        item = items.get(item_id)
        if item is None:
            from fastapi import HTTPException

            raise HTTPException(404, f"no item {item_id}")
        return {**item, "verbose": verbose}

    @app.post("/items", operation_id="create_item", summary="Add an item.")
    def create_item(item: Item) -> dict[str, object]:
        new = {"id": len(items) + 1, **item.model_dump()}
        items[new["id"]] = new
        return new

    @app.get("/catalogue", operation_id="catalogue", response_class=PlainTextResponse)
    def catalogue() -> str:
        return "x" * 5000

    @app.get("/moved", operation_id="moved")
    def moved() -> RedirectResponse:
        return RedirectResponse("/items/1")

    @app.get("/leave", operation_id="leave")
    def leave() -> RedirectResponse:
        return RedirectResponse("http://blocked.invalid/steal")

    return app


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    server = HttpServer(build_app(), "127.0.0.1", 0).start()
    yield server.url
    server.stop()


@pytest.fixture
def spec_file(api: str, tmp_path: pathlib.Path) -> pathlib.Path:
    document = httpx2.get(api + "/openapi.json", trust_env=False).json()
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def toolset(api: str, spec_file: pathlib.Path) -> Iterator[OpenApiToolset]:
    tools = OpenApiToolset.load(
        LocalStorage(), str(spec_file), allowed_hosts=["127.0.0.1"], base_url=api, max_chars=1000
    )
    yield tools
    tools.close()


def tool(toolset: OpenApiToolset, name: str):  # noqa: ANN201
    return next(t for t in toolset.tools if t.spec.name == name)


def test_one_tool_per_operation_with_params_and_resolved_body(toolset: OpenApiToolset) -> None:
    assert {t.spec.name for t in toolset.tools} == {"get_item", "create_item", "catalogue", "moved", "leave"}
    get_schema = tool(toolset, "get_item").spec.parameters
    assert set(get_schema["properties"]) == {"item_id", "verbose"}
    assert get_schema["required"] == ["item_id"]
    create_schema = tool(toolset, "create_item").spec.parameters
    # The body's $ref (#/components/schemas/Item) is resolved and its fields merged in.
    assert create_schema["properties"]["name"]["type"] == "string"
    assert create_schema["required"] == ["name", "price"]
    assert "POST /items" in tool(toolset, "create_item").spec.description


def test_calls_send_path_query_and_body(toolset: OpenApiToolset) -> None:
    got = call_tool(tool(toolset, "get_item"), {"item_id": 1, "verbose": True}, ToolContext())
    assert got.ok and got.data == {"id": 1, "name": "kettle", "price": 20.0, "verbose": True}
    made = call_tool(tool(toolset, "create_item"), {"name": "mug", "price": 4.5}, ToolContext())
    assert made.ok and made.data["name"] == "mug"
    again = call_tool(tool(toolset, "get_item"), {"item_id": made.data["id"]}, ToolContext())
    assert again.data["name"] == "mug"


def test_http_errors_and_bad_arguments_are_tool_errors(toolset: OpenApiToolset) -> None:
    missing = call_tool(tool(toolset, "get_item"), {"item_id": 99}, ToolContext())
    assert missing.error is not None and "HTTP 404" in missing.error and "no item 99" in missing.error
    bad = call_tool(tool(toolset, "create_item"), {"name": "mug"}, ToolContext())
    assert bad.error is not None and "'price' is a required property" in bad.error


def test_long_responses_are_cut(toolset: OpenApiToolset) -> None:
    got = call_tool(tool(toolset, "catalogue"), {}, ToolContext())
    assert got.content.startswith("x" * 1000) and got.content.endswith("[response cut at 1000 characters]")


def test_redirects_are_followed_only_on_allowed_hosts(toolset: OpenApiToolset) -> None:
    same_host = call_tool(tool(toolset, "moved"), {}, ToolContext())
    assert same_host.ok and same_host.data["name"] == "kettle"
    away = call_tool(tool(toolset, "leave"), {}, ToolContext())
    # Refused by the request hook, before any DNS lookup or connection to the other host.
    assert away.error == "refused to call 'blocked.invalid': it is not on allowed_hosts"


def test_a_host_not_on_the_allow_list_is_refused_when_building(spec_file: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument) as err:
        OpenApiToolset.load(
            LocalStorage(), str(spec_file), allowed_hosts=["127.0.0.1"], base_url="http://api.example.com"
        )
    assert err.value.violations[0].field == "openapi.allowed_hosts"
    assert "'api.example.com' is not on allowed_hosts" in str(err.value)


def test_path_values_cannot_change_the_url(toolset: OpenApiToolset, api: str) -> None:
    op = tool(toolset, "get_item").operation
    got = toolset.call(op, {"item_id": "1/../../leave"})
    assert got.error is not None and "HTTP 4" in got.error  # an encoded, invalid id, not another route


def test_invalid_documents_and_unknown_operations_are_named(
    tmp_path: pathlib.Path, spec_file: pathlib.Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("openapi: 3.0.0\npaths: {}\n")  # no info
    with pytest.raises(InvalidArgument) as err:
        OpenApiToolset.load(
            LocalStorage(), str(broken), allowed_hosts=["127.0.0.1"], base_url="http://127.0.0.1"
        )
    assert err.value.violations[0].field == "openapi.spec" and "'info' is a required property" in str(
        err.value
    )
    with pytest.raises(InvalidArgument) as err:
        OpenApiToolset.load(
            LocalStorage(),
            str(spec_file),
            allowed_hosts=["127.0.0.1"],
            base_url="http://127.0.0.1",
            operations=["get_item", "delete_everything"],
        )
    assert "no operation named delete_everything" in str(err.value)
