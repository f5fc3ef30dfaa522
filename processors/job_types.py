"""What each job type asks the model to do."""

from __future__ import annotations

from openai.types.chat import ChatCompletionMessageParam

from schemas.jobs import JobType

SYSTEM_PROMPTS: dict[JobType, str] = {
    JobType.security_analysis: (
        "You are a smart-contract security auditor. List each finding with its severity "
        "(critical, high, medium, low, info), location and a fix."
    ),
    JobType.gas_analysis: (
        "You are a gas-optimisation expert for EVM contracts. List concrete savings with "
        "estimated gas per call."
    ),
    JobType.sentiment_analysis: (
        "Classify the sentiment of the text as positive, negative or neutral, with a score "
        "between -1 and 1, and explain briefly."
    ),
    JobType.analysis: "You are a careful analyst. Answer clearly and concisely.",
}


def chat_messages(job_type: JobType, prompt: str) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": SYSTEM_PROMPTS[job_type]},
        {"role": "user", "content": prompt},
    ]
