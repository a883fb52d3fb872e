"""The Interaction resource, its usage, and the request-side config models (tools, generation config)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Union

from pydantic import PrivateAttr, model_validator

from .._constants import TERMINAL_STATUSES
from ._base import BaseModel, open_union
from .content import (
    AudioContent,
    Content,
    DocumentContent,
    FunctionCall,
    ImageContent,
    ModelOutputStep,
    Step,
    TextContent,
    Thought,
    UnknownContent,
    UnknownStep,
    UserInputStep,
    VideoContent,
)

__all__ = [
    "CodeExecutionTool",
    "ComputerUseTool",
    "ErrorDetail",
    "FileSearchTool",
    "FunctionTool",
    "GenerationConfig",
    "GoogleMapsTool",
    "GoogleSearchTool",
    "Interaction",
    "McpServerTool",
    "ModalityTokens",
    "RetrievalTool",
    "Tool",
    "ToolSearchTool",
    "UnknownTool",
    "UrlContextTool",
    "Usage",
    "outputs_from_steps",
    "steps_from_outputs",
]


class ModalityTokens(BaseModel):
    modality: str | None = None
    tokens: int | None = None


class Usage(BaseModel):
    """Token counts. Both generations' names for thinking tokens are filled whichever one came."""

    total_input_tokens: int | None = None
    total_output_tokens: int | None = None
    total_tokens: int | None = None
    total_cached_tokens: int | None = None
    total_tool_use_tokens: int | None = None
    total_thought_tokens: int | None = None
    total_reasoning_tokens: int | None = None
    initial_input_tokens: int | None = None
    input_tokens_by_modality: list[ModalityTokens] | None = None
    output_tokens_by_modality: list[ModalityTokens] | None = None
    cached_tokens_by_modality: list[ModalityTokens] | None = None
    tool_use_tokens_by_modality: list[ModalityTokens] | None = None
    grounding_tool_count: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _normalise_thinking(self) -> Usage:
        if self.total_thought_tokens is None:
            self.total_thought_tokens = self.total_reasoning_tokens
        elif self.total_reasoning_tokens is None:
            self.total_reasoning_tokens = self.total_thought_tokens
        return self


class ErrorDetail(BaseModel):
    code: str | int | None = None
    message: str = ""


# -- request-side config --------------------------------------------------------------------------


class GenerationConfig(BaseModel):
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    max_output_tokens: int | None = None
    stop_sequences: list[str] | None = None
    thinking_level: str | None = None
    thinking_summaries: str | None = None
    tool_choice: str | dict[str, Any] | None = None
    speech_config: Any = None
    image_config: dict[str, Any] | None = None
    transcription_config: dict[str, Any] | None = None
    video_config: dict[str, Any] | None = None


class FunctionTool(BaseModel):
    type: Literal["function"] = "function"
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    defer_loading: bool | None = None
    short_description: str | None = None


class GoogleSearchTool(BaseModel):
    type: Literal["google_search"] = "google_search"
    search_types: list[str] | None = None


class CodeExecutionTool(BaseModel):
    type: Literal["code_execution"] = "code_execution"


class UrlContextTool(BaseModel):
    type: Literal["url_context"] = "url_context"


class McpServerTool(BaseModel):
    type: Literal["mcp_server"] = "mcp_server"
    name: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    allowed_tools: list[dict[str, Any]] | None = None


class FileSearchTool(BaseModel):
    type: Literal["file_search"] = "file_search"
    file_search_store_names: list[str] | None = None
    top_k: int | None = None
    metadata_filter: str | None = None


class ComputerUseTool(BaseModel):
    type: Literal["computer_use"] = "computer_use"
    environment: str | None = None
    excluded_predefined_functions: list[str] | None = None


class GoogleMapsTool(BaseModel):
    type: Literal["google_maps"] = "google_maps"
    latitude: float | None = None
    longitude: float | None = None
    enable_widget: bool | None = None


class RetrievalTool(BaseModel):
    type: Literal["retrieval"] = "retrieval"
    retrieval_types: list[str] | None = None


class ToolSearchTool(BaseModel):
    type: Literal["tool_search"] = "tool_search"
    execution: str | None = None


class UnknownTool(BaseModel):
    type: str


_TOOLS = (
    FunctionTool, GoogleSearchTool, CodeExecutionTool, UrlContextTool, McpServerTool, FileSearchTool,
    ComputerUseTool, GoogleMapsTool, RetrievalTool, ToolSearchTool,
)  # fmt: skip
if TYPE_CHECKING:
    Tool = Union[
        FunctionTool, GoogleSearchTool, CodeExecutionTool, UrlContextTool, McpServerTool, FileSearchTool,
        ComputerUseTool, GoogleMapsTool, RetrievalTool, ToolSearchTool, UnknownTool,
    ]  # fmt: skip
else:
    Tool = open_union(_TOOLS, UnknownTool, "type")


# -- the Interaction ------------------------------------------------------------------------------


def outputs_from_steps(steps: list[Step]) -> list[Content]:
    """The legacy ``outputs`` view of steps: model output content, thoughts and tool blocks, in order."""
    outputs: list[Content] = []
    for step in steps:
        if isinstance(step, UserInputStep):
            continue
        if isinstance(step, ModelOutputStep):
            outputs.extend(step.content)
        elif isinstance(step, UnknownStep):
            outputs.append(UnknownContent.model_validate(step.model_dump()))
        else:
            outputs.append(step)  # thoughts and tool blocks are the same classes in both schemas
    return outputs


_MEDIA_TYPES = (TextContent, ImageContent, AudioContent, DocumentContent, VideoContent)


def steps_from_outputs(outputs: list[Content]) -> list[Step]:
    """The steps view of legacy ``outputs``: consecutive media blocks become one ``model_output`` step."""
    steps: list[Step] = []
    for block in outputs:
        if isinstance(block, _MEDIA_TYPES):
            last = steps[-1] if steps else None
            if isinstance(last, ModelOutputStep):
                last.content.append(block)
            else:
                steps.append(ModelOutputStep(content=[block]))
        elif isinstance(block, UnknownContent):
            steps.append(UnknownStep.model_validate(block.model_dump()))
        else:
            steps.append(block)
    return steps


ENDED_STATUSES = TERMINAL_STATUSES | {"requires_action", "requires_continuation"}
ANSWERED_STATUSES = frozenset({"completed", "incomplete", "requires_action"})


class Interaction(BaseModel):
    """One interaction, in either schema generation.

    ``outputs`` and ``steps`` are both always available: whichever the server did not send is
    derived from the other (and left out of ``to_dict()``), so code written against the public
    guide (``interaction.outputs[-1].text``) works on the steps schema too.
    """

    id: str = ""
    status: str | None = None
    object: str | None = None
    model: str | None = None
    agent: str | None = None
    role: str | None = None
    created: str | None = None
    updated: str | None = None
    steps: list[Step] | None = None
    outputs: list[Content] | None = None
    input: Any = None
    usage: Usage | None = None
    previous_interaction_id: str | None = None
    continuation_token: str | None = None
    errors: list[ErrorDetail] | None = None
    system_instruction: str | None = None
    tools: list[Tool] | None = None
    generation_config: GenerationConfig | None = None
    agent_config: dict[str, Any] | None = None
    response_format: Any = None
    response_mime_type: str | None = None
    response_modalities: list[str] | None = None
    store: bool | None = None
    background: bool | None = None

    _derived: set[str] = PrivateAttr(default_factory=set)

    @property
    def served_by(self) -> str | None:
        """What answered, when the server says (the local server: its engine, beside the requested model)."""
        extra = self.model_extra or {}
        return extra.get("x_gemini_magics_served_by") or extra.get("served_by")

    @property
    def incomplete_details(self) -> dict[str, Any] | None:
        """Why an ``incomplete`` interaction stopped, when the server says (e.g. ``max_output_tokens``)."""
        extra = self.model_extra or {}
        details = extra.get("x_gemini_magics_incomplete_details") or extra.get("incomplete_details")
        return details if isinstance(details, dict) else None

    @property
    def ended(self) -> bool:
        """No more events will come: a final status, or ``requires_action`` (the caller acts next). The
        one answer to "has it ended?" for waiting, following and the magic's runs."""
        return self.status in ENDED_STATUSES

    @property
    def answered(self) -> bool:
        """It ended with an answer to keep (``incomplete``: cut at the token limit, and said so)."""
        return self.status in ANSWERED_STATUSES

    @model_validator(mode="after")
    def _derive_views(self) -> Interaction:
        if self.outputs is None and self.steps is not None:
            self.outputs = outputs_from_steps(self.steps)
            self._derived.add("outputs")
        elif self.steps is None and self.outputs is not None:
            self.steps = steps_from_outputs(self.outputs)
            self._derived.add("steps")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True, exclude=self._derived or None)

    @property
    def schema_generation(self) -> Literal["steps", "legacy"]:
        return "legacy" if "steps" in self._derived else "steps"

    @property
    def text(self) -> str:
        """All text the model produced in this interaction, joined."""
        return "".join(b.text for b in self.outputs or [] if isinstance(b, TextContent))

    @property
    def images(self) -> list[ImageContent]:
        return [b for b in self.outputs or [] if isinstance(b, ImageContent)]

    @property
    def videos(self) -> list[VideoContent]:
        """Generated videos (``--video``), each a block with its data or URI."""
        return [b for b in self.outputs or [] if isinstance(b, VideoContent)]

    @property
    def audio(self) -> list[AudioContent]:
        """Spoken answers (``--audio``), each a block with its data or URI."""
        return [b for b in self.outputs or [] if isinstance(b, AudioContent)]

    @property
    def function_calls(self) -> list[FunctionCall]:
        return [b for b in self.outputs or [] if isinstance(b, FunctionCall)]

    @property
    def thoughts(self) -> list[Thought]:
        return [b for b in self.outputs or [] if isinstance(b, Thought)]
