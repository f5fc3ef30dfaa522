"""What each job type asks the model: the registry's system prompt, then the user's prompt."""

from __future__ import annotations

from openai.types.chat import ChatCompletionMessageParam

from schemas.jobs import JobType
from sluice.job_types import spec_for


def chat_messages(job_type: JobType, prompt: str) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": spec_for(job_type).system_prompt},
        {"role": "user", "content": prompt},
    ]
