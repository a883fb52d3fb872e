"""Content blocks, steps and stream deltas of both schema generations.

The legacy schema puts tool calls and thoughts in ``outputs`` as content blocks; the steps schema
makes them steps; streamed deltas carry the same fields again. One class per ``type`` serves all
three places, so a legacy ``function_call`` block and a ``function_call`` step are the same object.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Literal, Union

from ._base import BaseModel, open_union

__all__ = [
    "ArgumentsDelta",
    "AudioContent",
    "CodeExecutionCall",
    "CodeExecutionResult",
    "Content",
    "Delta",
    "DocumentContent",
    "FileSearchCall",
    "FileSearchResult",
    "FunctionCall",
    "FunctionResult",
    "GoogleMapsCall",
    "GoogleMapsResult",
    "GoogleSearchCall",
    "GoogleSearchResult",
    "ImageContent",
    "McpServerToolCall",
    "McpServerToolResult",
    "ModelOutputStep",
    "ProcessingCall",
    "ProcessingResult",
    "RetrievalCall",
    "RetrievalResult",
    "Step",
    "TextAnnotationDelta",
    "TextContent",
    "Thought",
    "ThoughtSignatureDelta",
    "ThoughtSummaryDelta",
    "ToolCall",
    "ToolResult",
    "ToolSearchCall",
    "ToolSearchResult",
    "UnknownContent",
    "UnknownDelta",
    "UnknownStep",
    "UrlContextCall",
    "UrlContextResult",
    "UserInputStep",
    "VideoContent",
]


# -- text and media ---------------------------------------------------------------------------


class TextContent(BaseModel):
    type: Literal["text"] = "text"
    text: str = ""
    annotations: list[dict[str, Any]] | None = None


class _Media(BaseModel):
    data: str | None = None
    """Base64 text, as on the wire."""
    uri: str | None = None
    mime_type: str | None = None

    def as_bytes(self) -> bytes:
        if self.data is None:
            raise ValueError(f"this {self.__class__.__name__} has no inline data (uri={self.uri!r})")
        return base64.b64decode(self.data)

    def __repr_args__(self) -> Any:
        # base64 walls make reprs useless; show the size instead
        for name, value in super().__repr_args__():
            if name == "data" and isinstance(value, str) and len(value) > 64:
                yield name, f"<{len(value) * 3 // 4} bytes>"
            else:
                yield name, value


class ImageContent(_Media):
    type: Literal["image"] = "image"
    resolution: str | None = None


class AudioContent(_Media):
    type: Literal["audio"] = "audio"
    channels: int | None = None
    sample_rate: int | None = None


class DocumentContent(_Media):
    type: Literal["document"] = "document"


class VideoContent(_Media):
    type: Literal["video"] = "video"
    resolution: str | None = None


class UnknownContent(BaseModel):
    type: str


if TYPE_CHECKING:
    SummaryBlock = Union[TextContent, ImageContent, UnknownContent]
else:
    SummaryBlock = open_union((TextContent, ImageContent), UnknownContent, "type")


# -- thoughts and tools (legacy content blocks == steps) ----------------------------------------


class Thought(BaseModel):
    type: Literal["thought"] = "thought"
    signature: str | None = None
    summary: list[SummaryBlock] | None = None

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.summary or [] if isinstance(b, TextContent))


class FunctionCall(BaseModel):
    type: Literal["function_call"] = "function_call"
    id: str | None = None
    name: str = ""
    arguments: dict[str, Any] = {}
    signature: str | None = None


class FunctionResult(BaseModel):
    type: Literal["function_result"] = "function_result"
    call_id: str | None = None
    name: str | None = None
    result: Any = None
    is_error: bool | None = None
    signature: str | None = None


class ToolCall(BaseModel):
    """A built-in tool's call; ``arguments`` holds the tool's own payload (code, queries, urls...)."""

    id: str | None = None
    arguments: Any = None
    signature: str | None = None


class ToolResult(BaseModel):
    call_id: str | None = None
    result: Any = None
    is_error: bool | None = None
    signature: str | None = None


class CodeExecutionCall(ToolCall):
    type: Literal["code_execution_call"] = "code_execution_call"


class CodeExecutionResult(ToolResult):
    type: Literal["code_execution_result"] = "code_execution_result"


class GoogleSearchCall(ToolCall):
    type: Literal["google_search_call"] = "google_search_call"
    search_type: str | None = None


class GoogleSearchResult(ToolResult):
    type: Literal["google_search_result"] = "google_search_result"


class UrlContextCall(ToolCall):
    type: Literal["url_context_call"] = "url_context_call"


class UrlContextResult(ToolResult):
    type: Literal["url_context_result"] = "url_context_result"


class McpServerToolCall(ToolCall):
    type: Literal["mcp_server_tool_call"] = "mcp_server_tool_call"
    name: str | None = None
    server_name: str | None = None


class McpServerToolResult(ToolResult):
    type: Literal["mcp_server_tool_result"] = "mcp_server_tool_result"
    name: str | None = None
    server_name: str | None = None


class FileSearchCall(ToolCall):
    type: Literal["file_search_call"] = "file_search_call"


class FileSearchResult(ToolResult):
    type: Literal["file_search_result"] = "file_search_result"


class GoogleMapsCall(ToolCall):
    type: Literal["google_maps_call"] = "google_maps_call"


class GoogleMapsResult(ToolResult):
    type: Literal["google_maps_result"] = "google_maps_result"


class RetrievalCall(ToolCall):
    type: Literal["retrieval_call"] = "retrieval_call"
    retrieval_type: str | None = None


class RetrievalResult(ToolResult):
    type: Literal["retrieval_result"] = "retrieval_result"


class ToolSearchCall(ToolCall):
    type: Literal["tool_search_call"] = "tool_search_call"


class ToolSearchResult(ToolResult):
    type: Literal["tool_search_result"] = "tool_search_result"


class ProcessingCall(ToolCall):
    type: Literal["processing_call"] = "processing_call"


class ProcessingResult(ToolResult):
    type: Literal["processing_result"] = "processing_result"


_MEDIA = (TextContent, ImageContent, AudioContent, DocumentContent, VideoContent)
LEGACY_TOOL_BLOCKS = (
    FunctionCall, FunctionResult, CodeExecutionCall, CodeExecutionResult, GoogleSearchCall,
    GoogleSearchResult, UrlContextCall, UrlContextResult, McpServerToolCall, McpServerToolResult,
    FileSearchResult,
)  # fmt: skip
STEP_TOOL_BLOCKS = LEGACY_TOOL_BLOCKS + (
    FileSearchCall, GoogleMapsCall, GoogleMapsResult, RetrievalCall, RetrievalResult,
    ToolSearchCall, ToolSearchResult, ProcessingCall, ProcessingResult,
)  # fmt: skip

if TYPE_CHECKING:
    Content = Union[
        TextContent, ImageContent, AudioContent, DocumentContent, VideoContent, Thought,
        FunctionCall, FunctionResult, ToolCall, ToolResult, UnknownContent,
    ]  # fmt: skip
else:
    Content = open_union(_MEDIA + (Thought,) + LEGACY_TOOL_BLOCKS, UnknownContent, "type")


# -- steps ---------------------------------------------------------------------------------------


class UserInputStep(BaseModel):
    type: Literal["user_input"] = "user_input"
    content: list[Content] = []


class ModelOutputStep(BaseModel):
    type: Literal["model_output"] = "model_output"
    content: list[Content] = []
    error: dict[str, Any] | None = None


class UnknownStep(BaseModel):
    type: str


STEP_MODELS = (UserInputStep, ModelOutputStep, Thought) + STEP_TOOL_BLOCKS
if TYPE_CHECKING:
    Step = Union[
        UserInputStep,
        ModelOutputStep,
        Thought,
        FunctionCall,
        FunctionResult,
        ToolCall,
        ToolResult,
        UnknownStep,
    ]
else:
    Step = open_union(STEP_MODELS, UnknownStep, "type")


# -- stream deltas --------------------------------------------------------------------------------


class TextAnnotationDelta(BaseModel):
    type: Literal["text_annotation_delta"] = "text_annotation_delta"
    annotations: list[dict[str, Any]] = []


class ThoughtSummaryDelta(BaseModel):
    type: Literal["thought_summary"] = "thought_summary"
    content: SummaryBlock | None = None


class ThoughtSignatureDelta(BaseModel):
    type: Literal["thought_signature"] = "thought_signature"
    signature: str = ""


class ArgumentsDelta(BaseModel):
    """A fragment of a function call's JSON arguments (steps schema); join them, then parse."""

    type: Literal["arguments_delta"] = "arguments_delta"
    arguments: str = ""


class UnknownDelta(BaseModel):
    type: str


DELTA_MODELS = (
    _MEDIA
    + (TextAnnotationDelta, ThoughtSummaryDelta, ThoughtSignatureDelta, ArgumentsDelta)
    + STEP_TOOL_BLOCKS
)
if TYPE_CHECKING:
    Delta = Union[
        TextContent, ImageContent, AudioContent, DocumentContent, VideoContent, TextAnnotationDelta,
        ThoughtSummaryDelta, ThoughtSignatureDelta, ArgumentsDelta, FunctionCall, FunctionResult,
        ToolCall, ToolResult, UnknownDelta,
    ]  # fmt: skip
else:
    Delta = open_union(DELTA_MODELS, UnknownDelta, "type")
