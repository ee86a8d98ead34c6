"""The JSON of a plan is written in pieces (render.write_json), item by item for the long
lists, and is the very text json.dumps makes of the whole document (render.to_json)."""

from __future__ import annotations

import json

import pytest

from planner.apply import Result
from planner.backends import LocalBackend
from planner.backends.targets import LocalTarget
from planner.plan import render
from planner.plan.build import build_plan
from planner.plan.compute import Options

NAMES = ["index.html", 'quote"d.html', "ünï/çødé.html", "space d/x.css", "emoji-🎉.txt",
         "<angle>&amp;/y.js", "a/b/c/d/e/f.json"]


def deploy(site, target):
    backend = LocalBackend(LocalTarget(str(target)))
    from planner.apply import apply_plan

    apply_plan(build_plan(str(site), backend, Options(), "test"), backend)


def write(root, names, body="x"):
    for name in names:
        path = root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body + name)


@pytest.mark.parametrize("case", ["first", "changes", "kept", "nothing", "many"])
def test_the_streamed_json_is_the_text_of_the_whole_document(tmp_path, case):
    site, target = tmp_path / "site", tmp_path / "target"
    names = NAMES
    if case == "many":
        names = [f"p/{i}/index.html" for i in range(4200)]  # more than a chunk of 4,096
    write(site, names)
    if case in ("changes", "kept", "nothing"):
        deploy(site, target)
    if case in ("changes", "kept"):
        write(site, names[:3], body="changed")
        site.joinpath(*names[-1].split("/")).unlink()
    backend = LocalBackend(LocalTarget(str(target)))
    plan = build_plan(str(site), backend, Options(delete=case != "kept"), "test")
    assert bool(plan.deletes) == (case == "changes") and bool(plan.kept) == (case == "kept")
    for result in (None, Result(uploaded=3, deleted=1)):
        pieces: list[str] = []
        render.write_json(plan, pieces.append, result)
        text = "".join(pieces)
        assert text == render.to_json(plan, result)
        doc = json.loads(text)
        assert [u["key"] for u in doc["uploads"]] == [u.key for u in plan.uploads]
        if case == "many":
            assert len(pieces) < 20  # in chunks, not a write per item
