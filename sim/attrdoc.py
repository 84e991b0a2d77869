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


def markdown_table(model: str, doc: AttrDoc) -> str:
    """One Markdown table: model, attribute, unit, value shape, meaning."""
    rows = ["| model | attribute | unit | value | meaning |", "| --- | --- | --- | --- | --- |"]
    rows += [
        f"| {model} | `{attr}` | {unit} | {shape} | {meaning} |"
        for attr, (unit, shape, meaning) in doc.items()
    ]
    return "\n".join(rows)
