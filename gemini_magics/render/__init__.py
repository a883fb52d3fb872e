"""Rendering: the final result object and the live view. Nothing here imports httpx."""
