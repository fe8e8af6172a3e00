"""Generation parameters in AUTOMATIC1111's infotext format, stored in a PNG ``parameters`` chunk.

A1111, its extensions and image browsers (and ComfyUI importers, civitai) read this text, so our
PNGs carry it in the same place and shape::

    a red cat on a hill
    Negative prompt: blurry
    Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 1, Size: 512x512, Model: t2iscope-world

Values containing ``,``, ``:`` or a newline are written as JSON strings, as A1111's ``quote()`` does.
:func:`parse_parameters` mirrors A1111's ``parse_generation_parameters`` (the last line is the
parameter line when it holds at least 3 ``key: value`` pairs) without the UI defaults it adds, and
asks one thing more of that line: one of its keys is a parameter A1111 writes
(:data:`A1111_KEYS`), so a last prompt line such as ``<lora:a:1>, <lora:b:1>, <lora:c:1>``, which
A1111's own rule takes for parameters, stays prompt.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from PIL import Image, PngImagePlugin

from t2iscope.errors import ConfigError, DataError
from t2iscope.fileio import atomic_path

NEGATIVE_PREFIX = "Negative prompt:"
PNG_KEY = "parameters"
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286

# A1111's re_param: key, then a JSON-quoted value or anything up to the next comma.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_KEY = re.compile(r"\w[\w \-/]*[\w\-/]")
_INT = re.compile(r"[+-]?\d+")
# Keys A1111's create_infotext (modules/processing.py) and its hires fix, LoRA and TI code write,
# and ours (generate/output.py): a parameter line names at least one of them.
A1111_KEYS = frozenset(
    {
        "Steps", "Sampler", "Schedule type", "CFG scale", "Image CFG scale", "Seed", "Size",
        "Model hash", "Model", "VAE hash", "VAE", "Variation seed", "Variation seed strength",
        "Seed resize from", "Denoising strength", "Clip skip", "ENSD", "Eta", "Eta DDIM", "RNG",
        "Hires upscale", "Hires steps", "Hires upscaler", "Hires resize", "Lora hashes", "TI hashes",
        "Emphasis", "Mask blur", "Version", "Face restoration", "Tiling", "Token merging ratio",
        "CFG rescale", "Output scale", "Watermark",
    }
)  # fmt: skip


def _quote(value: str) -> str:
    """A1111's ``quote()``, also quoting values that would not survive parsing unquoted."""
    needs = any(c in value for c in ",\n:") or value != value.strip() or value.startswith('"') or not value
    return json.dumps(value, ensure_ascii=False) if needs else value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _typed(value: str) -> object:
    """Numbers come back as numbers when the text is exactly how Python writes that number."""
    if _INT.fullmatch(value) and str(int(value)) == value:
        return int(value)
    try:
        number = float(value)
    except ValueError:
        return value
    return number if repr(number) == value else value


def format_parameters(prompt: str, negative_prompt: str, params: Mapping[str, object]) -> str:
    """A1111 infotext: prompt, ``Negative prompt:`` line when non-empty, then ``Key: value, ...``.

    ``None`` values are left out, as A1111 does. Keys are A1111-style labels (``Steps``, ``CFG scale``).
    """
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        if not _KEY.fullmatch(key):
            raise ConfigError(f"infotext key {key!r} must be letters/digits/space/-/ (e.g. 'CFG scale')")
        pairs.append(f"{key}: {_quote(str(value))}")
    negative = f"\n{NEGATIVE_PREFIX} {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{', '.join(pairs)}".strip()


def parse_parameters(text: str) -> dict[str, object]:
    """Inverse of :func:`format_parameters`; also reads A1111's own infotexts.

    Returns ``{"prompt", "negative_prompt", <Key>: value, ...}``; values are strings except exact
    integers/floats (``Steps: 20`` -> 20, ``CFG scale: 7.5`` -> 7.5); ``Size`` stays ``"512x512"``.
    """
    *lines, last = text.strip().split("\n")
    pairs = _PARAM.findall(last)
    if len(pairs) < 3 or not any(key.strip() in A1111_KEYS for key, _ in pairs):
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        line = line.strip()
        if not negative and line.startswith(NEGATIVE_PREFIX):
            negative.append(line[len(NEGATIVE_PREFIX) :].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    result: dict[str, object] = {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative)}
    for key, value in _PARAM.findall(last) if last else ():
        result[key] = _typed(_unquote(value))
    return result


def save_png(path: str | os.PathLike[str], image: Image.Image, parameters: str) -> None:
    """Write ``image`` as PNG with a ``parameters`` text chunk, atomically."""
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_KEY, parameters)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", pnginfo=info)


def _decode_user_comment(raw: bytes | str) -> str:
    """EXIF UserComment: 8-byte charset code then text (A1111 writes piexif's UTF-16 "UNICODE")."""
    if isinstance(raw, str):
        return raw
    code, body = raw[:8], raw[8:]
    if code == b"UNICODE\0":
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return body.decode("utf-16")
        # piexif writes big-endian; Windows tools little-endian: ASCII text has its zero bytes first in BE.
        be = sum(1 for b in body[0::2] if b == 0) >= sum(1 for b in body[1::2] if b == 0)
        return body.decode("utf-16-be" if be else "utf-16-le", errors="replace")
    if code in (b"ASCII\0\0\0", b"\0" * 8):
        return body.decode("utf-8", errors="replace")
    return raw.decode("utf-8", errors="replace")


def read_parameters(path: str | os.PathLike[str]) -> str | None:
    """The infotext stored in an image: PNG ``parameters`` chunk (tEXt or iTXt), or the EXIF
    UserComment of a JPEG/WebP/TIFF, in the Exif IFD (where A1111 writes it) or in IFD0 (some tools).

    Returns None when the image carries none; raises DataError when the file is not a readable image.
    """
    file = Path(path)
    try:
        with Image.open(file) as image:
            text = image.info.get(PNG_KEY)
            if text is None and image.format in ("JPEG", "WEBP", "TIFF"):
                exif = image.getexif()
                comment = exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT) or exif.get(_USER_COMMENT)
                text = _decode_user_comment(comment).rstrip("\0") if comment else None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{file}: not a readable image ({exc})") from exc
    return text or None


# Infotext key -> (Params field, type): what `params_from_infotext` carries over
_PARAMS_FIELDS: dict[str, tuple[str, type]] = {
    "Steps": ("steps", int),
    "Sampler": ("sampler", str),
    "Schedule type": ("scheduler", str),
    "CFG scale": ("cfg_scale", float),
    "CFG rescale": ("cfg_rescale", float),
    "Seed": ("seed", int),
    "Variation seed": ("subseed", int),
    "Variation seed strength": ("subseed_strength", float),
    "Clip skip": ("clip_skip", int),
    "Emphasis": ("emphasis", str),
    "Hires upscale": ("hr_scale", float),
    "Hires steps": ("hr_second_pass_steps", int),
    "Hires upscaler": ("hr_upscaler", str),
}
HIRES_KEYS = ("Hires upscale", "Hires steps", "Hires upscaler")
_SIZE = re.compile(r"(\d+)x(\d+)")


def _as(kind: type, key: str, value: object) -> object:
    if kind is str:
        return str(value)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise DataError(f"infotext {key}: expected {'an integer' if kind is int else 'a number'}, got {value!r}")


def params_from_infotext(fields: Mapping[str, object]) -> dict[str, object]:
    """``Params`` keyword arguments from parsed infotext (:func:`parse_parameters`), A1111's or ours.

    So an A1111 PNG can be generated again: ``Params(**params_from_infotext(fields)).check()``.
    Keys left out stay at Params' defaults, as A1111's "send to txt2img" leaves its defaults
    (a missing ``Schedule type`` is Automatic; old names such as ``DPM++ 2M Karras`` are read by
    ``Params.check``). Any hires key turns on ``enable_hr``, and ``Denoising strength`` is then
    the second pass's; without one it is an img2img strength, returned as ``strength`` apart from
    Params' fields (pop it before calling Params). ``Size`` gives width and height. Keys that are
    not generation settings (``Model``, ``Model hash``, ``Version``, hashes) are not returned, nor
    is A1111's ``Hires resize`` (a target size; t2iscope's hires fix takes ``Hires upscale`` only).
    Raises DataError for a field of the wrong type (``Steps: many``).
    """
    out: dict[str, object] = {
        "prompt": str(fields.get("prompt", "")),
        "negative_prompt": str(fields.get("negative_prompt", "")),
    }
    for key, (name, kind) in _PARAMS_FIELDS.items():
        if key in fields:
            out[name] = _as(kind, key, fields[key])
    if "Size" in fields:
        size = _SIZE.fullmatch(str(fields["Size"]))
        if size is None:
            raise DataError(f"infotext Size: expected WIDTHxHEIGHT, got {fields['Size']!r}")
        out["width"], out["height"] = int(size[1]), int(size[2])
    hires = any(key in fields for key in HIRES_KEYS)
    if hires:
        out["enable_hr"] = True
    if "Denoising strength" in fields:
        out["denoising_strength" if hires else "strength"] = _as(
            float, "Denoising strength", fields["Denoising strength"]
        )
    return out
