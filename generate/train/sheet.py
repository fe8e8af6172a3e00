"""The generated contact sheet: prompts beside images, so a person can see color, kind and guidance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from t2iscope import fileio
from t2iscope.curate.world import spec
from t2iscope.generate.train.measure import GEN_SEED_BASE, generate
from t2iscope.weights import STABLE_DIFFUSION, load_model

ZOOM = 2
CELL = 64 * ZOOM
LABEL_W = 150
PAD = 4
GUIDANCE_PROMPTS = ("red ball", "blue car", "yellow dog", "green bird", "purple house", "orange spider")


def _grid(rows: list[tuple[str, list[np.ndarray]]], header: list[str], title: str) -> Image.Image:
    font = ImageFont.load_default(size=13)
    cols = len(header)
    top = 44
    sheet = Image.new("RGB", (LABEL_W + cols * (CELL + PAD), top + len(rows) * (CELL + PAD)), "white")
    d = ImageDraw.Draw(sheet)
    d.text((PAD, PAD), title, fill="black", font=font)
    for j, name in enumerate(header):
        d.text((LABEL_W + j * (CELL + PAD) + 4, top - 18), name, fill="black", font=font)
    for i, (label, images) in enumerate(rows):
        y = top + i * (CELL + PAD)
        d.multiline_text((PAD, y + CELL // 2 - 14), label, fill="black", font=font)
        for j, img in enumerate(images):
            tile = Image.fromarray(img).resize((CELL, CELL), Image.NEAREST)
            sheet.paste(tile, (LABEL_W + j * (CELL + PAD), y))
    return sheet


def write_sheet(models: Path, png: Path, steps: int = 25, device: str = "cpu") -> Path:
    """Section 1: every color x kind at CFG 7.5. Section 2: the same seeds at CFG 1 and CFG 7.5."""
    pipe = load_model(models / "sd", device, expect=STABLE_DIFFUSION)
    kinds = spec.KIND_WORDS["en"]
    grid_rows = []
    for c, color in enumerate(spec.COLOR_WORDS["en"]):
        prompts = [f"{color} {kind}" for kind in kinds]
        seeds = [GEN_SEED_BASE + 100 * c + k for k in range(len(kinds))]
        grid_rows.append((f'"{color} <kind>"', list(generate(pipe, prompts, seeds, 7.5, steps, device))))
    grid = _grid(grid_rows, list(kinds), f"tiny SD, CFG 7.5, {steps} steps: rows = prompted color")
    guidance_rows = []
    for cfg in (1.0, 7.5):
        seeds = [GEN_SEED_BASE + 900 + i for i in range(len(GUIDANCE_PROMPTS))]
        guidance_rows.append(
            (f"CFG {cfg:g}", list(generate(pipe, list(GUIDANCE_PROMPTS), seeds, cfg, steps, device)))
        )
    guidance = _grid(guidance_rows, list(GUIDANCE_PROMPTS), "same prompts and seeds, CFG 1 vs CFG 7.5")
    sheet = Image.new("RGB", (max(grid.width, guidance.width), grid.height + guidance.height + 10), "white")
    sheet.paste(grid, (0, 0))
    sheet.paste(guidance, (0, grid.height + 10))
    with fileio.atomic_path(png) as tmp:
        sheet.save(tmp, format="PNG")
    return png
