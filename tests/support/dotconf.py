"""Reading Speech Dispatcher's dotconf files the way speechd does, for the module-config tests."""

from __future__ import annotations


def dotconf_value(line: str) -> str:
    """The value of a one-string dotconf line, unescaped as dotconf does (backslash takes the next char)."""
    raw = line.split(" ", 1)[1].strip()
    assert raw.startswith('"') and raw.endswith('"'), line
    out, chars = [], iter(raw[1:-1])
    for c in chars:
        out.append(next(chars) if c == "\\" else c)
    return "".join(out)


def directive(conf: str, name: str) -> list[str]:
    """Every line of ``conf`` that sets ``name``."""
    return [line for line in conf.splitlines() if line.split(" ", 1)[0] == name]
