"""``client.file_search_stores``: stores the ``file_search`` tool searches (``fileSearchStores/…``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._client import Client


def _store_name(name: str) -> str:
    return name if name.startswith("fileSearchStores/") else f"fileSearchStores/{name}"


class FileSearchStores:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, *, display_name: str | None = None) -> dict[str, Any]:
        """A new, empty store: ``{"name": "fileSearchStores/…", "displayName": …}``."""
        body = {"displayName": display_name} if display_name else {}
        return dict(self._client._post("fileSearchStores", json=body).json())

    def get(self, name: str) -> dict[str, Any]:
        return dict(self._client._get(_store_name(name)).json())

    def import_file(self, name: str, *, file_name: str) -> dict[str, Any]:
        """Add an uploaded file (``files/…``) to the store; the long-running operation the API answers."""
        return dict(self._client._post(f"{_store_name(name)}:importFile", json={"fileName": file_name}).json())

    def delete(self, name: str) -> None:
        self._client._delete(_store_name(name))
