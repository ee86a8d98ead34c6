"""Markdown that renders: plans and reports in ``--format markdown`` read with markdown-it-py
(CommonMark with GFM tables, as GitHub renders a job summary or a pull-request comment),
and their structure asserted: a title, headings, tables standing alone (no line after a table
taken as one of its rows), figures as list items."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from test_figures import SCATTERED, plan_with
from test_report import sample_doc

from manifests import Entry
from planner.core.adopt import Listing, Stored, takeover
from planner.plan import render
from planner.plan.compute import Options, TargetState, compute_plan
from planner.report.render import to_text as report_text

ROOT = Path(__file__).resolve().parent.parent
MD = MarkdownIt("commonmark").enable("table")


@dataclass
class Block:
    kind: str  # "h2", "h3", "list", "table", "paragraph"
    text: str = ""  # heading or paragraph text
    items: list[str] = field(default_factory=list)  # list items
    header: list[str] = field(default_factory=list)  # table header cells
    rows: list[list[str]] = field(default_factory=list)  # table body rows


def plain(inline) -> str:
    """An inline token's text as the reader sees it (escapes and emphasis resolved)."""
    return "".join(c.content for c in inline.children or () if c.type in ("text", "code_inline"))


def blocks(markdown: str) -> list[Block]:
    """The top-level blocks of ``markdown`` as a renderer sees them."""
    tokens = MD.parse(markdown)
    out: list[Block] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.type == "heading_open":
            out.append(Block(t.tag, plain(tokens[i + 1])))
            i += 3
        elif t.type == "paragraph_open" and t.level == 0:
            out.append(Block("paragraph", plain(tokens[i + 1])))
            i += 3
        elif t.type == "bullet_list_open":
            block, depth = Block("list"), 0
            while True:
                t = tokens[i]
                depth += t.nesting if t.type.startswith("bullet_list") else 0
                if t.type == "inline":
                    block.items.append(plain(t))
                i += 1
                if depth == 0:
                    break
            out.append(block)
        elif t.type == "table_open":
            block, row, in_head = Block("table"), [], False
            while tokens[i].type != "table_close":
                t = tokens[i]
                in_head = {"thead_open": True, "thead_close": False}.get(t.type, in_head)
                if t.type == "inline":
                    row.append(plain(t))
                elif t.type == "tr_close":
                    (block.header.extend(row) if in_head else block.rows.append(row))
                    row = []
                i += 1
            out.append(block)
            i += 1
        else:
            i += 1
    return out


def kinds(bs: list[Block]) -> list[str]:
    return [b.kind for b in bs]


def check_well_formed(bs: list[Block]) -> None:
    """What every document of the tool must hold: a level-2 title first, and no paragraph
    (figures are list items; a stray paragraph is a line that merged or a table cut short)."""
    assert bs[0].kind == "h2"
    assert all(b.kind != "paragraph" for b in bs), [b.text for b in bs if b.kind == "paragraph"]
    for b in bs:
        if b.kind == "table":
            assert b.rows and all(len(r) == len(b.header) for r in b.rows)


# --- plans -------------------------------------------------------------------------------------


def test_a_plan_with_uploads_and_an_invalidation_renders_as_blocks():
    plan = plan_with(SCATTERED, paths_used=1000)
    bs = blocks(render.to_text(plan, "markdown"))
    check_well_formed(bs)
    assert bs[0].text == "Plan: /site -> s3://bucket"
    assert kinds(bs) == ["h2", "list", "table", "h3", "table", "h3", "list", "table", "list",
                         "h3", "table"]
    assert bs[1].items == [f"deploy {plan.deploy_id}, previous prev"]
    assert bs[2].header == ["change", "files", "bytes"]
    assert [r[0] for r in bs[2].rows] == ["added", "modified", "deleted", "unchanged"]
    assert bs[3].text == "Uploads (4, 40 B)"
    assert bs[4].header == ["key", "reason", "size"] and len(bs[4].rows) == 4
    assert bs[5].text == "Invalidation"
    assert bs[6].items[0] == ("4 paths (4 wildcards) for 8 changed URLs, 0 needless misses, "
                              "on E1")
    assert bs[7].header == ["path", "changed", "needless"]
    assert bs[7].rows[0] == ["/s0/p0/*", "2", "0"]  # '*' escaped in the source, shown as is
    # the two figures apart, as list items (a line right after the table was a table row)
    assert bs[8].items == ["AWS charge: $0.02 (4 paid paths)",
                           "miss estimate: $0.00 for 0 needless misses (cost model, --miss-cost)"]
    assert bs[9].text == "Alternatives"
    assert bs[10].header == ["plan", "paths", "needless", "paid", "AWS charge", "miss estimate"]
    assert [r[0] for r in bs[10].rows] == ["exact paths", "/*", "chosen"]


def test_warnings_a_takeover_and_deletes_are_list_items_and_tables():
    site = {"index.html": Entry("1".ljust(32, "0"), 10, "text/html", "cc")}
    remote = Listing(objects={"index.html": Stored(10, "x"), "old.html": Stored(5, "y")})
    t = takeover(site, remote, frozenset(), None, "a lost manifest: the target is taken over",
                 "s3://bucket")
    plan = compute_plan(
        site="/site", target="s3://bucket",
        state=TargetState(None, None, None, takeover=t,
                          warnings=("a warning with a_b and *stars*",)),
        entries=site, options=Options(paths_used=0, now=dt.datetime(2026, 12, 5, tzinfo=dt.UTC)),
        tool_version="test",
    )
    bs = blocks(render.to_text(plan, "markdown"))
    check_well_formed(bs)
    first = bs[1]
    assert first.kind == "list"
    assert first.items[0] == "warning: a warning with a_b and *stars*"
    assert any(i.startswith("takeover: 2 objects found") for i in first.items)
    tables = [b for b in bs if b.kind == "table"]
    assert ["key"] in [t.header for t in tables]  # the deletes: old.html, an orphan


def test_a_deploy_in_markdown_ends_with_its_summary_as_a_paragraph_of_its_own(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>hi</h1>\n")
    (site / "a.css").write_text("a{}\n")
    target = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "deploy", str(site), "--target", str(target),
         "--format", "markdown"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    bs = blocks(proc.stdout)
    assert bs[0].kind == "h2" and bs[-1].kind == "paragraph"
    assert bs[-1].text.startswith("Uploaded 2 (")
    assert all(b.kind != "paragraph" for b in bs[:-1])


deploy_test = test_a_deploy_in_markdown_ends_with_its_summary_as_a_paragraph_of_its_own
deploy_test.pytestmark = [pytest.mark.e2e]  # the CLI in a subprocess


def test_several_url_layouts_get_a_heading_each_and_the_totals_apart():
    from test_url_groups import BUCKET_ROOT, SITE_ROOT, group
    from test_url_groups import plan_for as group_plan

    plan = group_plan([group(SITE_ROOT, "E1"), group(BUCKET_ROOT, "E2")])
    bs = blocks(render.to_text(plan, "markdown"))
    check_well_formed(bs)
    headings = [b.text for b in bs if b.kind == "h3"]
    assert "Invalidation on E1" in headings and "Invalidation on E2" in headings
    assert headings[-1] == "In all"
    assert bs[-1].kind == "list" and bs[-1].items[1].startswith("AWS charge: ")


# --- the report --------------------------------------------------------------------------------


def test_the_report_renders_as_blocks():
    bs = blocks(report_text(sample_doc(), "markdown"))
    check_well_formed(bs)
    assert bs[0].text == "Invalidations in 2026-03 (the whole month)"
    headings = [b.text for b in bs if b.kind == "h3"]
    assert headings[0] == "Account (from cloudfront)" and headings[-1] == "Per day"
    tables = {tuple(b.header): b for b in bs if b.kind == "table"}
    per_day = tables[("date", "invalidations", "paths", "", "month so far", "paid",
                      "tool deploys")]
    assert len(per_day.rows) == 31
    tool = tables[("", "chosen", "exact paths", "/* every deploy")]
    assert [r[0] for r in tool.rows][-2:] == ["AWS charge", "miss estimate"]
    items = [i for b in bs if b.kind == "list" for i in b.items]
    assert "AWS charge: $1.00 (200 paid paths)" in items
    assert any(i.startswith("WARNING: ") for i in items)
