"""Officer-facing rule messages: `{name[:spec]}` placeholders over context names, formatted safely.

The template is parsed at load time. A placeholder is a schema name, optionally with a
standard format spec (`{features.unit_value_ratio:.2f}`); there is no attribute access,
indexing or conversion, and widths are bounded, so a template cannot reach into objects or
allocate much. A value that does not fit its spec at run time is shown with str().
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

# Standard format spec with a width/precision of at most two digits.
_SPEC: Final = re.compile(r"(?:[^{}]?[<>=^])?[+\- ]?z?#?0?(?:\d{1,2})?[,_]?(?:\.\d{1,2})?[bcdeEfFgGnosxX%]?")
_SAMPLES: Final[dict[type, object]] = {str: "x", int: 1, float: 1.5, bool: True}


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """Literal text and (name, spec) placeholders, in order."""

    parts: tuple[str | tuple[str, str], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p[0] for p in self.parts if isinstance(p, tuple))

    def format(self, context: Mapping[str, object]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            name, spec = part
            value = context.get(name, "?")
            try:
                out.append(format(value, spec))
            except (TypeError, ValueError):
                out.append(str(value))
        return "".join(out)


def parse_template(text: str, schema: Mapping[str, type]) -> tuple[MessageTemplate | None, list[str]]:
    """Parses a description; returns (template, []) or (None, every error message)."""
    errors: list[str] = []
    parts: list[str | tuple[str, str]] = []
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        return None, [f"bad placeholder in description: {exc}"]
    for literal, name, spec, conversion in pieces:
        if literal:
            parts.append(literal)
        if name is None:
            continue
        if conversion:
            errors.append(f"placeholder '{{{name}!{conversion}}}' in description: conversions are not allowed")
            continue
        spec = spec or ""
        kind = schema.get(name)
        if kind is None:
            errors.append(f"unknown name '{name}' in description placeholder")
            continue
        if not _SPEC.fullmatch(spec):
            errors.append(f"placeholder '{{{name}:{spec}}}' in description: unsupported format spec")
            continue
        try:
            format(_SAMPLES[kind], spec)
        except (TypeError, ValueError) as exc:
            errors.append(f"placeholder '{{{name}:{spec}}}' in description: {exc}")
            continue
        parts.append((name, spec))
    if errors:
        return None, errors
    return MessageTemplate(tuple(parts)), []
