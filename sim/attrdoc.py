"""Documented mosaik attributes: one table per model gives each attribute's unit and value shape.

mosaik's META has no field to describe an attribute, so every simulator keeps a dict
``{attr: (unit, shape, meaning)}`` next to its META and builds the META's ``attrs`` from it
(:func:`names`). :func:`markdown_table` renders such a dict for the README.
"""

from __future__ import annotations

AttrDoc = dict[str, tuple[str, str, str]]  # attr -> (unit, value shape, meaning)


def names(doc: AttrDoc) -> list[str]:
    """The attribute names of ``doc``, in its order (for META's ``attrs``)."""
    return list(doc)


def received(doc: AttrDoc, attrs: list[str], source: str) -> AttrDoc:
    """``doc``'s entries for ``attrs`` as another model's inputs, credited to ``source``."""
    return {a: (doc[a][0], doc[a][1], f"input from {source}: {doc[a][2]}") for a in attrs}


def sent(doc: AttrDoc, attrs: list[str]) -> AttrDoc:
    """``doc``'s input entries for ``attrs`` as the sending model's outputs."""
    return {a: (doc[a][0], doc[a][1], doc[a][2].removeprefix("input: ")) for a in attrs}


def markdown_table(model: str, doc: AttrDoc) -> str:
    """One Markdown table: model, attribute, unit, value shape, meaning."""
    rows = ["| model | attribute | unit | value | meaning |", "| --- | --- | --- | --- | --- |"]
    rows += [
        f"| {model} | `{attr}` | {unit} | {shape} | {meaning} |"
        for attr, (unit, shape, meaning) in doc.items()
    ]
    return "\n".join(rows)
