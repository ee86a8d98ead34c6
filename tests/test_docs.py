"""The documentation: the generated command reference is current, every relative link of the
README and of ``docs/*.md`` leads to a file that exists, and the README stays short."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
# Written by other work of the same issue; linked before they land.
NOT_YET: set[str] = set()  # links to documents still to be written (none)


def _script(name: str):
    """``scripts/NAME.py``, loaded as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference_module():
    return _script("command_reference")


def test_command_reference_is_generated_from_the_current_cli() -> None:
    ref = _reference_module()
    text = ref.COMMANDS_MD.read_text(encoding="utf-8")
    assert ref.current(text) == ref.render(), (
        f"docs/commands.md is stale (the CLI's --help changed): run `{ref.COMMAND}`"
    )


def test_environment_table_is_generated_from_the_current_cli() -> None:
    ref = _reference_module()
    text = ref.COMMANDS_MD.read_text(encoding="utf-8")
    assert ref.current(text, ref.ENV_BEGIN, ref.ENV_END) == ref.render_environment(), (
        f"docs/commands.md is stale (the CLI's variables changed): run `{ref.COMMAND}`"
    )
    assert ref.updated(text) == text


def test_command_reference_covers_every_command() -> None:
    from planner.cli import cli

    text = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"### planner {name}\n" in text, name


def _links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code blocks hold no links
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("doc", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves_to_a_file(doc: Path) -> None:
    broken = []
    for link in _links(doc):
        if re.match(r"[a-z][a-z0-9+.-]*:", link) or link.startswith("#"):
            continue  # a URL, or an anchor on the same page
        target = (doc.parent / link.split("#", 1)[0]).resolve()
        rel = target.relative_to(ROOT).as_posix() if target.is_relative_to(ROOT) else str(target)
        if not target.exists() and rel not in NOT_YET:
            broken.append(link)
    assert not broken, f"{doc.relative_to(ROOT)}: links to missing files: {broken}"


def test_readme_stays_under_20_kb() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 20_000, f"README.md is {size} bytes: move detail to docs/"


def _bench_table_module():
    return _script("bench_table")


def test_readme_benchmark_table_is_made_from_the_recorded_json_lines() -> None:
    table = _bench_table_module()
    readme = table.README.read_text(encoding="utf-8")
    assert table.render(readme, table.read_results()) == readme, (
        "README.md's benchmark table is stale: run scripts/bench_table.py"
    )
    assert table.read_results(), "docs/bench/results.jsonl records no benchmark run"


def test_a_benchmark_run_replaces_its_earlier_record(tmp_path, monkeypatch) -> None:
    table = _bench_table_module()
    monkeypatch.setattr(table, "RESULTS", tmp_path / "results.jsonl")
    line = {"bench": "takeover", "files": 10, "bytes": 1, "repeat": 1, "anchor_median_s": 2.0,
            "planner_median_s": 1.0, "planner_cpu_s": 1.0, "anchor_cpu_s": 1.0,
            "ratio_median": 0.5}
    import io
    import json

    monkeypatch.setattr("sys.stdout", io.StringIO())
    table.add("takeover", io.StringIO("a table\n" + json.dumps(line) + "\n"))
    table.add("takeover", io.StringIO(json.dumps(dict(line, planner_median_s=3.0)) + "\n"))
    (record,) = table.read_results(tmp_path / "results.jsonl").values()
    assert record["lines"][0]["planner_median_s"] == 3.0
    assert "| 3.00 s |" in table.table({"takeover": record})
    with pytest.raises(SystemExit):
        table.add("takeover", io.StringIO("no json here\n"))
