"""Fake ``gh`` (GitHub CLI) and ``curl`` (for GitLab's REST API) for the CI recipes' comment
upserts (``tests/test_ci_recipes.py``): each records its arguments and answers from a JSON state
file, so a test can run the recipe's shell as written with these first on ``PATH``.

The state file (``FAKE_CI_STATE``) holds::

    {"token": ..., "repo": "owner/site", "pr": "7",            # GitHub
     "api": "https://gitlab.example.com/api/v4", "project": "42", "mr": "7",   # GitLab
     "comments": [{"id": 11, "body": "..."}], "next_id": 100, "calls": [[...], ...]}

Only what the recipes use is modelled, strictly: an option or a route the fake does not know
is an error (exit 1), so a recipe cannot drift from what is tested without the test noticing.

- ``gh api PATH`` lists the pull request's comments (GET ``repos/R/issues/N/comments``),
  ``gh api --method POST repos/R/issues/N/comments -F body=@FILE`` adds one,
  ``gh api --method PATCH repos/R/issues/comments/ID -F body=@FILE`` edits one; the token is
  ``GH_TOKEN``, as gh reads it.
- ``curl [--fail --silent --show-error] --header "PRIVATE-TOKEN: T" [--output F] [--request M]
  [--data-urlencode body@FILE] URL`` on ``API/projects/P/merge_requests/M/notes[/ID]``: GET
  lists the notes, POST (data without --request) adds one, PUT edits one.

A wrong token answers 401 (``gh`` exits 1, ``curl --fail`` exits 22), as the real APIs do.
Launch with ``python fake_ci_api.py gh|curl ARGS...`` (see ``install``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

STATE_VAR = "FAKE_CI_STATE"


def install(bindir: Path, state: Path, python: str = sys.executable) -> None:
    """Write ``gh`` and ``curl`` launchers into ``bindir`` (put it first on PATH)."""
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in ("gh", "curl"):
        launcher = bindir / tool
        launcher.write_text(
            f'#!/bin/sh\nFAKE_CI_STATE="{state}" exec "{python}" "{Path(__file__).resolve()}"'
            f' {tool} "$@"\n',
            encoding="utf-8",
        )
        launcher.chmod(0o755)


class Fail(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _new_comment(state: dict[str, Any], body: str) -> dict[str, Any]:
    comment = {"id": state["next_id"], "body": body}
    state["next_id"] += 1
    state["comments"].append(comment)
    return comment


def _edit_comment(state: dict[str, Any], comment_id: int, body: str) -> dict[str, Any]:
    for comment in state["comments"]:
        if comment["id"] == comment_id:
            comment["body"] = body
            return comment
    raise Fail(f"HTTP 404: no comment {comment_id}")


def gh(args: list[str], state: dict[str, Any]) -> str:
    if os.environ.get("GH_TOKEN") != state["token"]:
        raise Fail("HTTP 401: Bad credentials (https://api.github.com/)")
    if not args or args[0] != "api":
        raise Fail(f"fake gh: only `gh api` is modelled, not {args}")
    method, fields, silent, path = None, {}, False, None
    rest = iter(args[1:])
    for arg in rest:
        if arg in ("--method", "-X"):
            method = next(rest)
        elif arg in ("-F", "--field"):
            key, _, value = next(rest).partition("=")
            fields[key] = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") \
                else value
        elif arg == "--silent":
            silent = True
        elif arg.startswith("-") or path is not None:
            raise Fail(f"fake gh: {arg!r} not modelled")
        else:
            path = arg
    method = method or ("POST" if fields else "GET")  # as gh decides
    route = urlsplit(path or "").path
    repo, pr = state["repo"], state["pr"]
    if route == f"repos/{repo}/issues/{pr}/comments" and method == "GET" and not fields:
        answer: Any = state["comments"]
    elif route == f"repos/{repo}/issues/{pr}/comments" and method == "POST":
        answer = _new_comment(state, fields.pop("body"))
    elif (m := re.fullmatch(rf"repos/{re.escape(repo)}/issues/comments/(\d+)", route)) \
            and method == "PATCH":
        answer = _edit_comment(state, int(m.group(1)), fields.pop("body"))
    else:
        raise Fail(f"fake gh: {method} {path} not modelled")
    if fields:
        raise Fail(f"fake gh: fields {sorted(fields)} not modelled")
    return "" if silent else json.dumps(answer)


def curl(args: list[str], state: dict[str, Any]) -> str:
    headers, method, data, output, url = [], None, None, None, None
    rest = iter(args)
    for arg in rest:
        if arg in ("--fail", "--silent", "--show-error"):
            continue
        if arg in ("--header", "-H"):
            headers.append(next(rest))
        elif arg in ("--request", "-X"):
            method = next(rest)
        elif arg == "--output":
            output = next(rest)
        elif arg == "--data-urlencode":
            key, sep, name = next(rest).partition("@")
            if not sep or key != "body" or data is not None:
                raise Fail(f"fake curl: --data-urlencode {key}{sep}{name} not modelled")
            data = Path(name).read_text(encoding="utf-8")
        elif arg.startswith("-") or url is not None:
            raise Fail(f"fake curl: {arg!r} not modelled")
        else:
            url = arg
    if "--fail" not in args:
        raise Fail("fake curl: without --fail an HTTP error would pass unnoticed")
    if f"PRIVATE-TOKEN: {state['token']}" not in headers:
        raise Fail("curl: (22) The requested URL returned error: 401", 22)
    method = method or ("POST" if data is not None else "GET")  # as curl decides
    notes = f"{state['api']}/projects/{state['project']}/merge_requests/{state['mr']}/notes"
    where = urlsplit(url or "")
    route = f"{where.scheme}://{where.netloc}{where.path}"
    if route == notes and method == "GET" and data is None:
        answer: Any = state["comments"]
    elif route == notes and method == "POST" and data is not None:
        answer = _new_comment(state, data)
    elif (m := re.fullmatch(re.escape(notes) + r"/(\d+)", route)) and method == "PUT" \
            and data is not None:
        answer = _edit_comment(state, int(m.group(1)), data)
    else:
        raise Fail(f"fake curl: {method} {url} not modelled")
    text = json.dumps(answer)
    if output is not None:
        Path(output).write_text(text, encoding="utf-8")
        return ""
    return text


def main(argv: list[str]) -> NoReturn:
    tool, args = argv[0], argv[1:]
    path = Path(os.environ[STATE_VAR])
    state = json.loads(path.read_text(encoding="utf-8"))
    state["calls"].append([tool, *args])
    code = 0
    try:
        out = {"gh": gh, "curl": curl}[tool](args, state)
        if out:
            print(out)
    except Fail as e:
        print(e, file=sys.stderr)
        code = e.code
    path.write_text(json.dumps(state), encoding="utf-8")
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
