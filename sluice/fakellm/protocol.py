"""The chat-completions request body, and how a malformed one is reported."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

# OpenAI's own wording, so clients that match on it behave as against the real API.
_INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you "
    "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
    "but what was sent was not valid JSON.)"
)


_TYPE_LABELS = frozenset({"str", "int", "float", "bool", "none"})


class InvalidRequest(Exception):
    """A request the API rejects with 400 and an ``invalid_request_error`` body."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class ContentPart(BaseModel):
    """One part of a multi-part message content (text, image, audio...)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the conversation; unknown fields (name, tool_calls...) are kept."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text, with the text parts of a multi-part content joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return " ".join(part.text for part in self.content if part.text)


class StreamOptions(BaseModel):
    """``stream_options``: only ``include_usage`` changes what the simulator sends."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The fields of a chat-completions request the simulator acts on; others are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    n: int | None = Field(default=None, ge=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None

    @property
    def token_limit(self) -> int | None:
        """The completion-token cap; ``max_completion_tokens`` supersedes ``max_tokens``."""
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens
        return self.max_tokens

    @property
    def include_usage(self) -> bool:
        """Whether a streamed answer ends with a usage chunk."""
        return self.stream_options is not None and self.stream_options.include_usage


def parse_chat_request(body: bytes) -> ChatCompletionRequest:
    """Validate a raw request body, raising ``InvalidRequest`` shaped like OpenAI's 400s."""
    try:
        return ChatCompletionRequest.model_validate_json(body)
    except ValidationError as exc:
        # The deepest error is the most specific one, e.g. inside a union's list branch.
        deepest = max(exc.errors(), key=lambda error: len(error["loc"]))
        raise _invalid_request(deepest) from None


def _invalid_request(error: ErrorDetails) -> InvalidRequest:
    if error["type"] == "json_invalid":
        return InvalidRequest(_INVALID_JSON)
    param = _param_name(error["loc"])
    if param is None:
        return InvalidRequest(f"Invalid request body: {error['msg']}.", code="invalid_type")
    if error["type"] == "missing":
        return InvalidRequest(
            f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
        )
    return InvalidRequest(f"Invalid '{param}': {error['msg']}.", param, "invalid_value")


def _param_name(loc: tuple[int | str, ...]) -> str | None:
    """``("messages", 0, "role")`` -> ``messages[0].role``, the way OpenAI names params."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            # pydantic labels union members by type ("str", "list[...]"); they are not params.
            if name and (part in _TYPE_LABELS or not part.isidentifier()):
                continue
            name += f".{part}" if name else part
    return name or None
