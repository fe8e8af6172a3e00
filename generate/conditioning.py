"""Text conditioning for a batch, as A1111 builds it: AND parts, prompt editing, emphasis.

For each image the prompt is split into composable parts (``a cat AND a dog :0.5``,
:func:`~t2iscope.generate.prompt_schedule.split_and`), each part into its prompt-editing schedule
(``[cat:dog:0.5]``, ``[snow|rain]``, :func:`~t2iscope.generate.prompt_schedule.prompt_schedule`),
and every distinct text is encoded once with A1111's weighting and chunking
(:mod:`~t2iscope.generate.text_encoding`). The negative prompt is scheduled too, without ``AND``,
as A1111's ``get_learned_conditioning`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from t2iscope.generate.denoiser import ImageConditioning, Scheduled
from t2iscope.generate.extra_networks import (
    batch_networks,
    infotext_hashes,
    lora_requests,
    parse_extra_networks,
    resolve_loras,
    set_loras,
)
from t2iscope.generate.models import Model
from t2iscope.generate.params import Params
from t2iscope.generate.prompt_schedule import prompt_schedule, split_and
from t2iscope.generate.text_encoding import encode_prompt, used_embeddings


def apply_networks(model: Model, batch: Sequence[Params]) -> list[Params]:
    """Make exactly the batch's ``<lora:...>`` LoRAs active on the model and return the batch with
    every extra-network tag removed from its prompts (A1111's extra_networks.parse_prompts).

    Raises ConfigError when prompts of the batch name different LoRAs (``Params.settings_key``
    keeps them apart) or a LoRA is missing, DataError for a file that is not a LoRA of this model.
    """
    cleaned, requests = batch_networks([p.prompt for p in batch])
    set_loras(model.pipe, requests, model.lora_dir)
    return [dataclasses.replace(p, prompt=c) for p, c in zip(batch, cleaned, strict=True)]


def _texts(prompt: str, negative: str, steps: int) -> list[str]:
    parts = [text for part, _ in split_and(prompt) for _, text in prompt_schedule(part, steps)]
    return parts + [text for _, text in prompt_schedule(negative, steps)]


def network_fields(model: Model, p: Params) -> dict[str, str]:
    """The ``Lora hashes`` and ``TI hashes`` infotext fields of one image (empty when it used none)."""
    prompt, tags = parse_extra_networks(p.prompt)
    requests = lora_requests(tags)
    loras = resolve_loras(requests, model.lora_dir) if requests and model.lora_dir is not None else []
    used = used_embeddings(
        model.pipe.tokenizer,
        _texts(prompt, p.negative_prompt, p.steps),
        model.embeddings,
        emphasis=p.emphasis,
    )
    return infotext_hashes(loras, used)


class TextCache:
    """Encodes each distinct text once per (clip_skip, emphasis): [77 * chunks, dim] tensors.

    One cache serves one batch: a LoRA on the text encoder changes the encoding of the same text.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self._cache: dict[tuple[str, int, str], torch.Tensor] = {}

    def __call__(self, text: str, clip_skip: int, emphasis: str) -> torch.Tensor:
        key = (text, clip_skip, emphasis)
        if key not in self._cache:
            pipe = self.model.pipe
            self._cache[key] = encode_prompt(
                pipe.tokenizer,
                pipe.text_encoder,
                text,
                device=self.model.device,
                dtype=self.model.dtype,
                clip_skip=clip_skip,
                emphasis=emphasis,
                embeddings=self.model.embeddings,
            )[0]
        return self._cache[key]


def _scheduled(cache: TextCache, text: str, p: Params, steps: int, hires_steps: int | None) -> Scheduled:
    schedule = prompt_schedule(text, steps, hires_steps)
    return Scheduled(
        tuple(end for end, _ in schedule), tuple(cache(t, p.clip_skip, p.emphasis) for _, t in schedule)
    )


@torch.no_grad()
def conditioning(
    model: Model,
    batch: Sequence[Params],
    *,
    steps: int | None = None,
    hires_steps: int | None = None,
    cache: TextCache | None = None,
) -> list[ImageConditioning]:
    """One :class:`ImageConditioning` per image of ``batch``, scheduled over ``steps`` (default:
    each Params' own) or, for a hires-fix second pass, over ``hires_steps`` after ``steps``."""
    cache = cache or TextCache(model)
    out = []
    for p in batch:
        n = steps or p.steps
        parts = tuple((_scheduled(cache, text, p, n, hires_steps), w) for text, w in split_and(p.prompt))
        out.append(ImageConditioning(parts, _scheduled(cache, p.negative_prompt, p, n, hires_steps)))
    return out
