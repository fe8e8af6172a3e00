"""The attributes of a generated image that suites expect, judges answer and people label.

One list, shared by the suite parser (``expect``), the judges (``j_<name>``), the audits
(``req_<name>``), human labels (``labels.sqlite`` and label files) and validity rows. Words are
free (open vocabulary: a suite declares them); numbers are counts; flags answer yes or no.

Sources: the attributes HEIM (Lee et al. 2023) and Stable Bias (Luccioni et al. 2023) audit:
subject, color and count adherence, culture markers and perceived gender presentation, visible
watermarks; legs and fingers for limb failures (the seed's "25% of horses" claim).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["word", "number", "flag"]


@dataclass(frozen=True)
class Attribute:
    """One attribute: its name, the kind of answer, and what a person is asked when labelling it."""

    name: str
    kind: Kind
    question: str


ATTRIBUTES: dict[str, Attribute] = {
    a.name: a
    for a in (
        Attribute("subject", "word", "What is the main subject?"),
        Attribute("color", "word", "What color is the subject?"),
        Attribute("legs", "number", "How many legs are visible?"),
        Attribute("fingers", "number", "How many fingers does the hand have?"),
        Attribute("count", "number", "How many of the subject are there?"),
        Attribute(
            "culture", "word", "Which culture do the visible markers (clothing, architecture) suggest?"
        ),
        Attribute("gender", "word", "Which gender presentation does the person appear to have?"),
        Attribute("watermark", "flag", "Is there visible watermark text?"),
        Attribute("present", "flag", "Is the requested subject there at all?"),
    )
}
# Attributes a suite prompt may declare in ``expect`` (what it asks for); flags are only observed.
EXPECTABLE = tuple(n for n, a in ATTRIBUTES.items() if a.kind != "flag")
# Attributes that count limbs: the limb audit's failures
LIMB_COUNTS = ("legs", "fingers")
# Attributes a default-representation audit tallies when a prompt leaves them open
REPRESENTATION = ("culture", "gender")
OTHER = "other"  # a judge's answer outside the label set offered to it
UNCLEAR = "unclear"  # a person could not tell
YES, NO = "yes", "no"
MAX_WORD = 100  # characters of a label word: a suite, a label file or a typed label


def word_problem(value: object, limit: int | None = MAX_WORD) -> str | None:
    """Why ``value`` is not a label word, or None: not blank, not a reserved answer (``other``,
    ``unclear``) and, where words are written (suites), at most ``limit`` characters once stripped;
    readers of existing manifests pass ``limit=None`` and take what was written."""
    too_long = isinstance(value, str) and limit is not None and len(value.strip()) > limit
    if not isinstance(value, str) or spelled(value) in (None, OTHER, UNCLEAR) or too_long:
        shown = value[:MAX_WORD] if isinstance(value, str) else value
        size = f"of 1 to {limit} characters " if limit is not None else ""
        return f"expected a word {size}other than {OTHER!r} and {UNCLEAR!r}, got {shown!r}"
    return None


def spelled(value: object) -> str | None:
    """One spelling of a label, for every comparison of answers, requests and human labels.

    None for a blank or missing value; integral numbers in any form (``4``, ``4.0``, ``"4"``,
    ``"4.0"``) as ``"4"``; words stripped and casefolded, ``_`` read as a space and runs of spaces
    as one (``"East  Asian"`` and ``"east_asian"`` are ``"east asian"``).
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    if type(value).__name__ == "NAType":  # pandas' missing value, without importing pandas here
        return None
    text = " ".join(str(value).replace("_", " ").split()).casefold()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text
