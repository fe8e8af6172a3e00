"""The contract every registry keeps: each entry is registered under its name, documented, and listed.

One test per registry (curation stages, audits, judges, attacks, samplers, model architectures),
over every entry, so a new extension is covered the moment it registers. That each audit also
reaches the report is tests/evaluate/test_audit_registry.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from t2iscope.cli import main
from t2iscope.listing import summary
from t2iscope.registry import Registry


def operators() -> Registry[Any]:
    from t2iscope.curate.operators import OPERATORS, load_all

    load_all()
    return OPERATORS


def audits() -> Registry[Any]:
    from t2iscope.evaluate.audits import AUDITS

    return AUDITS


def judges() -> Registry[Any]:
    from t2iscope.evaluate.judges import JUDGES, load_all

    load_all()
    return JUDGES


def attacks() -> Registry[Any]:
    from t2iscope.evaluate.attacks import ATTACKS

    return ATTACKS


def architectures() -> Registry[Any]:
    from t2iscope.weights import ARCHITECTURES

    return ARCHITECTURES


def samplers() -> Registry[Any]:
    from t2iscope.generate.samplers import SAMPLERS

    return SAMPLERS


# registry, the `list` command that shows it, what documents one entry
REGISTRIES = [
    pytest.param(operators, ["curate", "list", "stages"], lambda op: summary(op.fn), id="operators"),
    pytest.param(audits, ["evaluate", "list", "audits"], lambda a: a.title and summary(a.fn), id="audits"),
    pytest.param(judges, ["evaluate", "list", "judges"], lambda j: summary(j.make), id="judges"),
    pytest.param(attacks, ["evaluate", "list", "attacks"], summary, id="attacks"),
    pytest.param(samplers, ["generate", "list", "samplers"], lambda s: s.summary, id="samplers"),
    pytest.param(
        architectures, ["models", "list", "architectures"], lambda a: summary(a.load), id="architectures"
    ),
]


def listed(out: str) -> list[str]:
    """The first column of a `list` table: the line after the title is the header."""
    return [re.split(r"\s{2,}", line)[0] for line in out.splitlines()[2:]]


@pytest.mark.parametrize(("load", "argv", "doc"), REGISTRIES)
def test_every_entry_is_registered_documented_and_listed(
    load: Callable[[], Registry[Any]],
    argv: list[str],
    doc: Callable[[Any], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = load()
    assert len(registry) > 0
    for name in registry:
        entry = registry.get(name)
        assert getattr(entry, "name", name) == name, f"{registry.kind} {name!r} is registered as another name"
        assert doc(entry), f"{registry.kind} {name!r} has no docstring or summary"
    assert main(argv) == 0
    assert sorted(listed(capsys.readouterr().out)) == registry.names()


@pytest.mark.parametrize(
    ("area", "tables"),
    [
        ("curate", ["stages", "recipes"]),
        ("evaluate", ["audits", "judges", "attacks"]),
        ("generate", ["samplers", "schedulers", "suites"]),
        ("models", ["architectures", "folders"]),
    ],
)
def test_list_prints_every_table_and_its_help_an_example(
    area: str, tables: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([area, "list"]) == 0
    out = capsys.readouterr().out
    assert [block.splitlines()[0] for block in out.strip().split("\n\n")] == [f"{t}:" for t in tables]
    assert main([area, "list", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "Example:" in help_text and f"t2iscope {area} list" in help_text
    assert main([area, "list", "nothing"]) == 2
    assert "'nothing' is not one of" in capsys.readouterr().err


def test_models_list_names_each_shipped_folder_and_why_a_broken_one_fails(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from t2iscope.paths import models_dir

    assert main(["models", "list", "folders"]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows == {
        "aesthetic": "laion-improved-aesthetic-mlp",
        "clip": "open_clip",
        "legs": "t2iscope-legs-cnn",
        "sd": "diffusers-stable-diffusion",
        "watermark": "t2iscope-watermark-cnn",
    }, f"shipped folders under {models_dir()}"
    (tmp_path / "head").mkdir()
    (tmp_path / "head" / "config.json").write_text('{"architecture": "resnet-9000"}')
    monkeypatch.setenv("T2ISCOPE_MODELS", str(tmp_path))
    assert main(["models", "list", "folders"]) == 0
    line = capsys.readouterr().out.splitlines()[2]
    assert line.startswith("head") and "unknown model architecture 'resnet-9000'" in line


def test_a_listed_summary_is_the_whole_first_sentence() -> None:
    """Docstrings wrap: the listing shows the first sentence across lines, never a cut-off line."""

    def wrapped() -> None:
        """img2img at denoising strength (e.g. 0.2) under the empty prompt, at the
        image's own size. More detail that the listing leaves out."""

    def one_line() -> None:
        """No attack"""

    assert summary(wrapped) == (
        "img2img at denoising strength (e.g. 0.2) under the empty prompt, at the image's own size."
    )
    assert summary(one_line) == "No attack" and summary(lambda: None) == ""
