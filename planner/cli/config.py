"""The configuration file: ``planner.toml`` in the working directory, ``[tool.planner]`` in
``pyproject.toml``, or ``--config FILE``. Any option of any command, by its flag name
(``max-deletes`` or ``max_deletes``), at the top level, and named targets in
``[targets.NAME]`` tables chosen with ``--target NAME``.

Precedence is the CLI's: a flag, then its ``PLANNER_*`` environment variable, then the file
(a named target's table before the top level), then the built-in default.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Iterable

from planner.core.headers import HeaderRule, compile_pattern
from planner.errors import PlannerError

CONFIG_NAME = "planner.toml"
HEADER_RULE_KEYS = ("pattern", "cache-control", "content-type", "content-encoding")
# A rule's content-encoding -> what is stored: compressed with gzip or brotli, or as built.
CONTENT_ENCODINGS = {"gzip": "gzip", "br": "br", "identity": "", "": ""}


class ConfigError(PlannerError):
    """The configuration file cannot be used (unreadable, bad TOML, unknown key...)."""

    exit_code = 2


@dataclass(frozen=True)
class Config:
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # flag name -> value
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)


def key_name(key: str) -> str:
    """``max_deletes`` and ``max-deletes`` are one key."""
    return key.replace("_", "-")


def find(cwd: str, explicit: str | None = None) -> str | None:
    """--config FILE; else planner.toml; else pyproject.toml if it has [tool.planner]."""
    if explicit:
        if not os.path.isfile(explicit):
            raise ConfigError(f"--config {explicit}: no such file")
        return explicit
    own = os.path.join(cwd, CONFIG_NAME)
    if os.path.isfile(own):
        return own
    pyproject = os.path.join(cwd, "pyproject.toml")
    if os.path.isfile(pyproject):
        tool = _read(pyproject).get("tool")
        if isinstance(tool, dict) and "planner" in tool:
            return pyproject
    return None


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def load(path: str | None) -> Config:
    if path is None:
        return Config()
    doc = _read(path)
    if os.path.basename(path) == "pyproject.toml":
        doc = doc.get("tool", {}).get("planner", {})
        where = f"{path} [tool.planner]"
    else:
        where = path
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a table")
    targets = doc.get("targets", {})
    if not isinstance(targets, dict) or not all(isinstance(t, dict) for t in targets.values()):
        raise ConfigError(f"{where}: [targets] must hold tables, like [targets.prod]")
    for name, table in targets.items():
        if "target" not in table:
            raise ConfigError(
                f"{where}: [targets.{name}] needs a target (target = \"s3://bucket\")"
            )
    options = {key_name(k): v for k, v in doc.items() if k != "targets"}
    return Config(
        path=where,
        options=options,
        targets={n: {key_name(k): v for k, v in t.items()} for n, t in targets.items()},
    )


def check_keys(config: Config, known: Iterable[str]) -> None:
    """Every key names an option of some command; else an error naming the key and the
    closest valid one."""
    known = sorted(set(known))
    tables = [("", config.options)] + [(f"[targets.{n}] ", t) for n, t in config.targets.items()]
    for where, table in tables:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{config.path}: unknown key {where}{key!r}{hint}")


def header_rules(config: Config, target: str | None = None) -> tuple[Any, ...]:
    """The ``[[headers]]`` rules, in order (a named target's own list replaces the top
    level's). Each: ``pattern`` (gitignore-style) and one or more of ``cache-control``,
    ``content-type`` and ``content-encoding`` ("gzip", "br", or "identity" / "": none)."""

    table = config.targets.get(target or "", {})
    raw = table.get("headers", config.options.get("headers", []))
    where = f"{config.path} [[{'targets.' + str(target) + '.' if 'headers' in table else ''}headers]]"
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise ConfigError(f"{where}: expected an array of tables ([[headers]])")
    rules = []
    for rule in raw:
        rule = {key_name(k): v for k, v in rule.items()}
        for key in rule:
            if key not in HEADER_RULE_KEYS:
                close = difflib.get_close_matches(key, HEADER_RULE_KEYS, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        if not isinstance(rule.get("pattern"), str) or not rule["pattern"]:
            raise ConfigError(f"{where}: every rule needs a pattern (pattern = \"*.html\")")
        if not all(isinstance(rule.get(k, ""), str) for k in HEADER_RULE_KEYS):
            raise ConfigError(
                f"{where}: pattern, cache-control, content-type and content-encoding are text"
            )
        pattern = rule["pattern"]
        if pattern.startswith(("!", "#")):
            raise ConfigError(
                f"{where}: pattern {pattern!r}: a rule's pattern cannot be a negation or a comment"
            )
        try:
            compile_pattern(pattern)
        except ValueError as exc:
            raise ConfigError(
                f"{where}: pattern {pattern!r} is not a gitignore-style pattern ({exc})"
            ) from None
        if not any(k in rule for k in HEADER_RULE_KEYS[1:]):
            raise ConfigError(f"{where}: rule {pattern!r} sets no header")
        for k in ("cache-control", "content-type"):
            value = rule.get(k)
            if value is None:
                continue
            # An HTTP header value: printable ASCII (S3 refuses control characters, and
            # stores other text in a way that comes back different).
            if not value.strip() or not all(" " <= c <= "~" for c in value):
                raise ConfigError(
                    f"{where}: rule {pattern!r}: {k} {value!r} must be non-empty printable ASCII"
                )
        encoding = rule.get("content-encoding")
        if encoding is not None:
            if encoding not in CONTENT_ENCODINGS:
                raise ConfigError(
                    f"{where}: rule {pattern!r}: content-encoding {encoding!r} is not one of "
                    '"gzip", "br", "identity" (or "": none)'
                )
            encoding = CONTENT_ENCODINGS[encoding]
        rules.append(
            HeaderRule(
                rule["pattern"], rule.get("cache-control"), rule.get("content-type"), encoding
            )
        )
    return tuple(rules)
