"""The pydantic base of every API model, and the open (fallback-carrying) discriminated unions."""

from __future__ import annotations

import typing
from typing import Any, Union

import pydantic
from pydantic import ConfigDict, Discriminator, Tag

UNKNOWN_TAG = "__unknown__"


class BaseModel(pydantic.BaseModel):
    """API objects keep fields they don't know (``extra="allow"``): the API's enums and unions are open."""

    # built on first use, not at import: a cell or the server pays only for the models it touches
    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=(), defer_build=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict, without unset (None) fields: what goes on the wire."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)

    def to_json(self, *, indent: int | None = None) -> str:
        return self.model_dump_json(exclude_none=True, by_alias=True, indent=indent)


def literal_tag(model: type[pydantic.BaseModel], key: str) -> str:
    args = typing.get_args(model.model_fields[key].annotation)
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError(f"{model.__name__}.{key} must be a single string Literal")
    return args[0]


def open_union(
    models: tuple[type[pydantic.BaseModel], ...], fallback: type[pydantic.BaseModel], key: str
) -> Any:
    """A union discriminated on ``key`` whose unknown tags validate as ``fallback`` instead of failing."""
    tags = {literal_tag(m, key): m for m in models}

    def discriminate(value: Any) -> str:
        tag = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
        return tag if tag in tags else UNKNOWN_TAG

    members = tuple(typing.Annotated[m, Tag(t)] for t, m in tags.items())
    members += (typing.Annotated[fallback, Tag(UNKNOWN_TAG)],)
    return typing.Annotated[Union[members], Discriminator(discriminate)]  # noqa: UP007


def tag_map(models: tuple[type[pydantic.BaseModel], ...], key: str) -> dict[str, type[pydantic.BaseModel]]:
    return {literal_tag(m, key): m for m in models}
