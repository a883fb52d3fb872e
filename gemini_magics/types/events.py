"""Server-sent events of both schema generations, discriminated on ``event_type``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Union

from ._base import BaseModel, open_union
from .content import Content, Delta, Step, TextContent
from .interaction import ErrorDetail, Interaction, Usage

__all__ = [
    "ContentDeltaEvent",
    "ContentStartEvent",
    "ContentStopEvent",
    "EVENT_MODELS",
    "ErrorEvent",
    "InteractionCompleteEvent",
    "InteractionCompletedEvent",
    "InteractionCreatedEvent",
    "InteractionEvent",
    "InteractionStartEvent",
    "InteractionStatusUpdateEvent",
    "StepDeltaEvent",
    "StepStartEvent",
    "StepStopEvent",
    "TextContentDeltaEvent",
    "TextStepDeltaEvent",
    "UnknownEvent",
]


class _Event(BaseModel):
    event_id: str | None = None


class InteractionCreatedEvent(_Event):
    event_type: Literal["interaction.created"] = "interaction.created"
    interaction: Interaction


class InteractionStartEvent(_Event):
    """Legacy name of ``interaction.created``."""

    event_type: Literal["interaction.start"] = "interaction.start"
    interaction: Interaction


class InteractionStatusUpdateEvent(_Event):
    event_type: Literal["interaction.status_update"] = "interaction.status_update"
    interaction_id: str | None = None
    status: str | None = None
    continuation_token: str | None = None
    usage: Usage | None = None


class StepStartEvent(_Event):
    event_type: Literal["step.start"] = "step.start"
    index: int
    step: Step


class StepDeltaEvent(_Event):
    event_type: Literal["step.delta"] = "step.delta"
    index: int
    delta: Delta
    metadata: dict[str, Any] | None = None


class StepStopEvent(_Event):
    event_type: Literal["step.stop"] = "step.stop"
    index: int
    usage: Usage | None = None
    step_usage: Usage | None = None


class ContentStartEvent(_Event):
    event_type: Literal["content.start"] = "content.start"
    index: int
    content: Content


class ContentDeltaEvent(_Event):
    event_type: Literal["content.delta"] = "content.delta"
    index: int
    delta: Delta


class ContentStopEvent(_Event):
    event_type: Literal["content.stop"] = "content.stop"
    index: int


class InteractionCompletedEvent(_Event):
    event_type: Literal["interaction.completed"] = "interaction.completed"
    interaction: Interaction


class InteractionCompleteEvent(_Event):
    """Legacy name of ``interaction.completed``."""

    event_type: Literal["interaction.complete"] = "interaction.complete"
    interaction: Interaction


class ErrorEvent(_Event):
    event_type: Literal["error"] = "error"
    error: ErrorDetail


class UnknownEvent(_Event):
    event_type: str


class TextStepDeltaEvent(StepDeltaEvent):
    """A ``step.delta`` whose delta is text: the hot path, validated without a callable discriminator."""

    delta: TextContent


class TextContentDeltaEvent(ContentDeltaEvent):
    """A legacy ``content.delta`` whose delta is text (see :class:`TextStepDeltaEvent`)."""

    delta: TextContent


EVENT_MODELS = (
    InteractionCreatedEvent, InteractionStartEvent, InteractionStatusUpdateEvent, StepStartEvent,
    StepDeltaEvent, StepStopEvent, ContentStartEvent, ContentDeltaEvent, ContentStopEvent,
    InteractionCompletedEvent, InteractionCompleteEvent, ErrorEvent,
)  # fmt: skip

if TYPE_CHECKING:
    InteractionEvent = Union[
        InteractionCreatedEvent, InteractionStartEvent, InteractionStatusUpdateEvent, StepStartEvent,
        StepDeltaEvent, StepStopEvent, ContentStartEvent, ContentDeltaEvent, ContentStopEvent,
        InteractionCompletedEvent, InteractionCompleteEvent, ErrorEvent, UnknownEvent,
    ]  # fmt: skip
else:
    InteractionEvent = open_union(EVENT_MODELS, UnknownEvent, "event_type")
