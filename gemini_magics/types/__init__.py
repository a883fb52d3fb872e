"""Typed models of the Interactions API, both schema generations."""

from __future__ import annotations

from .content import *  # noqa: F403
from .content import (
    ArgumentsDelta,
    AudioContent,
    CodeExecutionCall,
    CodeExecutionResult,
    Content,
    Delta,
    DocumentContent,
    FunctionCall,
    FunctionResult,
    GoogleSearchCall,
    GoogleSearchResult,
    ImageContent,
    ModelOutputStep,
    Step,
    TextContent,
    Thought,
    ThoughtSignatureDelta,
    ThoughtSummaryDelta,
    ToolCall,
    ToolResult,
    UnknownContent,
    UnknownDelta,
    UnknownStep,
    UrlContextCall,
    UrlContextResult,
    UserInputStep,
    VideoContent,
)
from .events import *  # noqa: F403
from .events import EVENT_MODELS, InteractionEvent
from .files import File
from .interaction import *  # noqa: F403
from .interaction import GenerationConfig, Interaction, Tool, Usage

__all__ = [
    "ArgumentsDelta", "AudioContent", "CodeExecutionCall", "CodeExecutionResult", "Content", "Delta",
    "DocumentContent", "EVENT_MODELS", "File", "FunctionCall", "FunctionResult", "GenerationConfig",
    "GoogleSearchCall", "GoogleSearchResult", "ImageContent", "Interaction", "InteractionEvent",
    "ModelOutputStep", "Step", "TextContent", "Thought", "ThoughtSignatureDelta", "ThoughtSummaryDelta",
    "Tool", "ToolCall", "ToolResult", "UnknownContent", "UnknownDelta", "UnknownStep", "UrlContextCall",
    "UrlContextResult", "Usage", "UserInputStep", "VideoContent",
]  # fmt: skip
