"""The CI recipes in ``examples/ci/``: their structure, and their ``planner`` commands run for
real against the moto server (see ``conftest.py``).

Each recipe is read with ``yaml.safe_load``. Which jobs run in which pipeline is worked out
from the recipe itself (GitLab ``rules``, GitHub ``on`` and ``if``, evaluated by a small
evaluator of the ``==``/``!=``/``&&``/``||`` expressions they use), for a merge request / pull
request, a push to the default branch, a push to another branch and a schedule.

Then every script/run line that invokes ``planner`` is taken from the recipe as written (no
copy of it here), its CI variables filled in (GitLab: ``$S3_BUCKET`` and
``$CLOUDFRONT_DISTRIBUTION_ID`` as environment variables, as GitLab passes them; GitHub:
``${{ vars.X }}`` replaced in the text, as GitHub does, and ``$GITHUB_STEP_SUMMARY`` a file of
the test) and run with ``bash -eo pipefail -c`` in a folder holding a ``public/`` build, with
this venv's ``planner`` console script first on ``PATH``. ``pip install``, ``uses:`` steps and
shell-only lines (the build) are not run: the venv has the tool, the test writes the build.

The plan jobs are also run whole (every script but ``pip install``), their comment upsert
included, with a fake ``gh`` (GitHub) and a fake ``curl`` (GitLab) first on ``PATH``
(``fake_ci_api.py``): the plan becomes one pull-request comment / merge request note per
target, created once and edited after. GitLab's plan, deploy and report jobs are run whole
too: their markdown goes to a file kept as an artifact, never into the job log (which shows
it raw), where people get tables, progress and one-line results. The pins
(``invalidation-planner==X``) follow ``planner/__init__.py``, and the release workflow
(``examples/release``) is checked too.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from e2e_helpers import (
    MANIFEST,
    SITE,
    TIMEOUT,
    body,
    history,
    inv_paths,
    invalidations,
    objects,
    site_objects,
    write_site,
)

import fake_ci_api
import planner

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "ci"
GITLAB = EXAMPLES / "gitlab-ci.yml"
GITHUB = EXAMPLES / "github-actions.yml"
RELEASE = EXAMPLES.parent / "release" / "github-release.yml"
CI_DOC = ROOT / "docs" / "ci.md"
README = ROOT / "README.md"
# The version, as planner/__init__.py says it (and as the installed package reports it).
VERSION = re.search(r'^__version__ = "([^"]+)"$',
                    (ROOT / "planner" / "__init__.py").read_text(encoding="utf-8"), re.M)[1]
PIN = ["pip", "install", f"invalidation-planner=={VERSION}"]

# GitLab top-level keys that are not jobs.
GITLAB_KEYWORDS = {
    "stages", "variables", "default", "include", "workflow", "image", "services", "cache",
    "before_script", "after_script", "spec",
}
ACCESS_KEY_INPUTS = {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"}
CHANGED_PAGE = "about/index.html"


# --- reading recipes ---------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    return doc


def logical_lines(script: str) -> list[str]:
    """The commands of a shell script: continuations joined, blank and comment lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [s for s in (ln.strip() for ln in joined.splitlines()) if s and not s.startswith("#")]


def _flatten(items: Any) -> Iterator[str]:
    """GitLab script items: strings, or (through YAML anchors) nested lists of them."""
    if items is None:
        return
    if isinstance(items, str):
        yield items
        return
    for item in items:
        yield from _flatten(item)


def gitlab_jobs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The visible jobs, with ``extends`` resolved (keys merged, the job's own winning)."""

    def resolve(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        assert name not in seen, f"extends cycle: {seen + (name,)}"
        job = doc[name]
        parents = job.get("extends", [])
        merged: dict[str, Any] = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            merged.update(resolve(parent, seen + (name,)))
        merged.update({k: v for k, v in job.items() if k != "extends"})
        return merged

    return {
        name: resolve(name)
        for name, job in doc.items()
        if isinstance(job, dict) and name not in GITLAB_KEYWORDS and not name.startswith(".")
    }


def gitlab_items(doc: dict[str, Any], job: dict[str, Any]) -> list[str]:
    """The script items a (resolved) job runs: its before_script (or the default), then its
    script."""
    default = doc.get("default") or {}
    before = job.get("before_script", default.get("before_script", doc.get("before_script")))
    return [item for part in (before, job.get("script")) for item in _flatten(part)]


def gitlab_commands(doc: dict[str, Any], job: dict[str, Any]) -> list[str]:
    return [line for item in gitlab_items(doc, job) for line in logical_lines(item)]


def github_on(doc: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    on = doc["on"] if "on" in doc else doc[True]
    if isinstance(on, dict):
        return on
    return {event: None for event in ([on] if isinstance(on, str) else on)}


def github_commands(job: dict[str, Any]) -> list[str]:
    steps = job.get("steps", [])
    return [line for step in steps if "run" in step for line in logical_lines(step["run"])]


@dataclass(frozen=True)
class Script:
    """One shell script of a job: a GitLab script item, or a GitHub step's ``run``."""

    text: str  # as written in the recipe
    env: dict[str, str]  # GitHub: the step's env, expressions not yet filled in


def job_scripts(doc: dict[str, Any], kind: str, job: str) -> list[Script]:
    if kind == "gitlab":
        return [Script(item, {}) for item in gitlab_items(doc, gitlab_jobs(doc)[job])]
    return [Script(step["run"], step.get("env") or {})
            for step in doc["jobs"][job].get("steps", []) if "run" in step]


def comment_script(recipe: Recipe) -> Script:
    """The plan job's script that posts the plan (gh api / curl): exactly one."""
    [script] = [s for s in job_scripts(recipe.doc, recipe.kind, recipe.roles["plan"])
                if re.search(r"\b(gh api|curl)\b", s.text)]
    return script


def invokes_planner(line: str) -> bool:
    """True if the line's command (after ``NAME=value`` assignments) is ``planner``."""
    words = shlex.split(line)
    while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
        words.pop(0)
    return bool(words) and words[0] == "planner"


# `> FILE.md` (not `>>`, not `2>`): a command's stdout into a markdown file.
_INTO_MD = re.compile(r"""(?:^|[^>\d])>\s*["']?([\w./-]+\.md)["']?(?=\s|$)""")


def _markdown_file(script: str) -> str | None:
    """The markdown file a script's ``planner`` command writes its stdout to (``> plan.md``),
    or None (stdout goes to the log, or to the step summary with ``>>``)."""
    for line in logical_lines(script):
        if invokes_planner(line):
            m = _INTO_MD.search(line)
            if m:
                return m.group(1)
    return None


def subcommand(line: str) -> str:
    words = shlex.split(line)
    return words[words.index("planner") + 1]


@dataclass(frozen=True)
class Recipe:
    path: Path
    kind: str  # "gitlab" or "github"
    roles: dict[str, str]  # "plan" / "deploy" / "report" -> job name

    @property
    def doc(self) -> dict[str, Any]:
        return load(self.path)

    def jobs(self) -> dict[str, dict[str, Any]]:
        return gitlab_jobs(self.doc) if self.kind == "gitlab" else self.doc["jobs"]

    def commands(self, job: str) -> list[str]:
        doc = self.doc
        if self.kind == "gitlab":
            return gitlab_commands(doc, gitlab_jobs(doc)[job])
        return github_commands(doc["jobs"][job])

    def planner_lines(self) -> Iterator[tuple[str, str]]:
        """(job, line) for every script/run line of the recipe that invokes ``planner``."""
        for job in self.jobs():
            for line in self.commands(job):
                if invokes_planner(line):
                    yield job, line


GITLAB_RECIPE = Recipe(GITLAB, "gitlab", {"plan": "plan", "deploy": "prod_deploy",
                                           "report": "invalidation_report"})
GITHUB_RECIPE = Recipe(GITHUB, "github", {"plan": "plan", "deploy": "deploy", "report": "report"})
RECIPES = [pytest.param(GITLAB_RECIPE, id="gitlab"), pytest.param(GITHUB_RECIPE, id="github")]


# --- CI expressions: GitLab `rules: if`, GitHub `if` ----------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:(?P<op>==|!=|&&|\|\||\(|\)|!)|(?P<str>"[^"]*"|'[^']*')"""
    r"""|(?P<var>\$\{?\w+\}?)|(?P<name>[A-Za-z_][\w.-]*))"""
)


def evaluate(expr: str, lookup: Callable[[str], str | None]) -> bool:
    """Evaluate the subset of CI expressions the recipes use: variables (``$X`` for GitLab,
    ``github.x.y`` names for GitHub), quoted strings, ``==``, ``!=``, ``!``, ``&&``, ``||``,
    parentheses. Anything else is an error, so a recipe cannot silently outgrow the test."""
    expr = expr.strip()
    if expr.startswith("${{") and expr.endswith("}}"):
        expr = expr[3:-2]
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr.rstrip()):
        m = _TOKEN.match(expr, pos)
        assert m and m.end() > pos, f"unsupported expression at {expr[pos:]!r} in {expr!r}"
        tokens.append(next((k, v) for k, v in m.groupdict().items() if v is not None))
        pos = m.end()
    tokens.append(("end", ""))
    i = 0

    def peek() -> tuple[str, str]:
        return tokens[i]

    def take() -> tuple[str, str]:
        nonlocal i
        i += 1
        return tokens[i - 1]

    def value() -> Any:
        kind, text = take()
        if (kind, text) == ("op", "("):
            result = disjunction()
            assert take() == ("op", ")"), expr
            return result
        if kind == "str":
            return text[1:-1]
        if kind == "var":
            return lookup(text.strip("${}"))
        if kind == "name":
            return lookup(text)
        raise AssertionError(f"unexpected {text!r} in {expr!r}")

    def comparison() -> Any:
        if peek() == ("op", "!"):
            take()
            return not comparison()
        left = value()
        if peek() in (("op", "=="), ("op", "!=")):
            _, op = take()
            right = value()
            return (left == right) if op == "==" else (left != right)
        return left

    def conjunction() -> Any:
        result = bool(comparison())
        while peek() == ("op", "&&"):
            take()
            result = bool(comparison()) and result
        return result

    def disjunction() -> Any:
        result = conjunction()
        while peek() == ("op", "||"):
            take()
            result = conjunction() or result
        return result

    result = disjunction()
    assert peek() == ("end", ""), f"trailing {peek()[1]!r} in {expr!r}"
    return bool(result)


def gitlab_pipeline(doc: dict[str, Any], variables: dict[str, str]) -> set[str]:
    """The jobs of a pipeline with these predefined variables (rules: first match decides)."""
    selected = set()
    for name, job in gitlab_jobs(doc).items():
        assert "only" not in job and "except" not in job, f"{name}: only/except not modelled"
        rules = job.get("rules")
        runs = rules is None
        for rule in rules or []:
            assert not set(rule) - {"if", "when"}, f"{name}: rule {rule} not modelled"
            if "if" not in rule or evaluate(rule["if"], variables.get):
                runs = rule.get("when", "on_success") != "never"
                break
        if runs:
            selected.add(name)
    return selected


def github_run(doc: dict[str, Any], context: dict[str, str]) -> set[str]:
    """The jobs that run for this event: `if` true and every job in `needs` ran."""
    jobs = doc["jobs"]

    def runs(name: str) -> bool:
        job = jobs[name]
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        if not all(runs(n) for n in needs):
            return False
        return "if" not in job or evaluate(job["if"], context.get)

    return {name for name in jobs if runs(name)}


# --- structure -------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_runs_planner_plan_deploy_and_report_in_their_jobs(recipe: Recipe) -> None:
    lines = list(recipe.planner_lines())
    assert lines, f"{recipe.path.name} has no planner command at all"
    by_job: dict[str, list[str]] = {}
    for job, line in lines:
        by_job.setdefault(job, []).append(line)
    assert set(by_job) == set(recipe.roles.values()), by_job
    for role, job in recipe.roles.items():
        assert {subcommand(line) for line in by_job[job]} == {role}, by_job[job]
        commands = recipe.commands(job)
        first = next(i for i, line in enumerate(commands) if invokes_planner(line))
        assert PIN in [shlex.split(c) for c in commands[:first]], (
            f"{job}: no `pip install \"invalidation-planner=={VERSION}\"` before "
            f"{commands[first]!r}"
        )
        [markdown] = [line for line in by_job[job] if "--format markdown" in line]
        for line in by_job[job]:
            if role != "report":
                assert line.startswith(f"planner {role} ./public "), line
        if role == "plan":  # the markdown goes to plan.md: summary, artifact, comment
            assert re.search(r"[^>]> plan\.md( |$)", markdown), markdown
    # GitLab's job log does not render markdown: its plan job prints tables there too.
    if recipe.kind == "gitlab":
        assert len(by_job["plan"]) == 2 and "--format" not in by_job["plan"][1], by_job["plan"]
        _assert_no_markdown_into_the_gitlab_log(recipe, by_job)
    # The usual aws-cli deploy is gone from every script (it stays in a comment).
    for job in recipe.jobs():
        for line in recipe.commands(job):
            assert not line.startswith(("aws ", "pip install awscli")), f"{job}: {line}"


def _assert_no_markdown_into_the_gitlab_log(recipe: Recipe, by_job: dict[str, list[str]]) -> None:
    """Each job's markdown goes to a file of its own that the job keeps as an artifact (also
    when the job fails), and no script line sends markdown to the log: no planner line prints
    it there, and no line shows a markdown file (cat, tee, less...) but into another file."""
    jobs = recipe.jobs()
    for role, job in recipe.roles.items():
        [markdown] = [line for line in by_job[job] if "--format markdown" in line]
        written = _markdown_file(markdown)
        assert written, f"{job}: the markdown goes to the job log: {markdown}"
        artifacts = jobs[job].get("artifacts") or {}
        assert written in artifacts.get("paths", []), f"{job}: {written} is no artifact"
        if role != "plan":  # a failed deploy's plan, an over-budget report: kept too
            assert artifacts.get("when") == "always", f"{job}: {artifacts}"
        others = [line for line in by_job[job] if line != markdown]
        assert all("--format" not in line for line in others), others  # tables for people
        for line in recipe.commands(job):
            if re.search(r"\b(cat|tee|less|more|head)\b[^|;]*\.md\b", line):
                assert re.search(r"(?<!>)>\s*\S+\s*$", line), f"{job}: into the log: {line}"
            assert "| tee" not in line, f"{job}: {line}"
    # The report job still fails over $5: on its line for people, the job's last.
    [fails] = [line for line in by_job[recipe.roles["report"]] if "--fail-over" in line]
    assert "--format" not in fails, fails


def test_gitlab_jobs_run_in_the_right_pipelines() -> None:
    doc = load(GITLAB)
    base = {"CI_DEFAULT_BRANCH": "main"}
    pipelines = {
        "merge request": ({"CI_PIPELINE_SOURCE": "merge_request_event",
                           "CI_MERGE_REQUEST_IID": "7"}, {"build", "plan"}),
        "push to the default branch": ({"CI_PIPELINE_SOURCE": "push",
                                        "CI_COMMIT_BRANCH": "main"}, {"build", "prod_deploy"}),
        "push to another branch": ({"CI_PIPELINE_SOURCE": "push",
                                    "CI_COMMIT_BRANCH": "feature"}, set()),
        "schedule": ({"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main"},
                     {"invalidation_report"}),
    }
    jobs = gitlab_jobs(doc)
    stages = doc["stages"]
    for what, (variables, expected) in pipelines.items():
        selected = gitlab_pipeline(doc, {**base, **variables})
        assert selected == expected, f"{what}: {sorted(selected)}"
        for name in selected:  # GitLab refuses a pipeline whose job needs a job not in it
            for need in jobs[name].get("needs", []):
                assert need in selected, f"{what}: {name} needs {need}, which does not run"
                assert stages.index(jobs[need]["stage"]) <= stages.index(jobs[name]["stage"])
    # The site is built once, into ./public, and handed to plan and deploy as an artifact.
    assert "public/" in jobs["build"]["artifacts"]["paths"]
    for name in ("plan", "prod_deploy"):
        assert jobs[name]["needs"] == ["build"]
    # The bucket and distribution are CI variables.
    for name in ("plan", "prod_deploy"):
        for line in (c for c in gitlab_commands(doc, jobs[name]) if invokes_planner(c)):
            assert '--target "s3://$S3_BUCKET"' in line
            assert '--distribution "$CLOUDFRONT_DISTRIBUTION_ID"' in line
    # The merge request's plan in markdown, kept as an artifact shown on the merge request.
    assert jobs["plan"]["artifacts"]["paths"] == ["plan.md"]
    assert jobs["plan"]["artifacts"]["expose_as"]
    reports = [c for c in gitlab_commands(doc, jobs["invalidation_report"]) if invokes_planner(c)]
    assert reports and all('--target "s3://$S3_BUCKET"' in r for r in reports), reports
    assert [r for r in reports if "--fail-over 5" in r] == reports[-1:], reports


def test_github_workflow_triggers_oidc_permissions_and_summary() -> None:
    doc = load(GITHUB)
    on = github_on(doc)
    assert on["pull_request"]["branches"] == ["main"]
    assert on["push"]["branches"] == ["main"]
    assert doc["permissions"] == {"id-token": "write", "contents": "read"}
    jobs = doc["jobs"]
    # pull-requests: write for the plan job alone (a job's permissions replace the workflow's).
    assert {name for name, job in jobs.items() if "permissions" in job} == {"plan"}
    assert jobs["plan"]["permissions"] == {**doc["permissions"], "pull-requests": "write"}

    repo = "owner/site"
    events = {
        "pull request": ({"github.event_name": "pull_request", "github.ref": "refs/pull/7/merge",
                          "github.event.pull_request.head.repo.full_name": repo},
                         {"build", "plan"}),
        "pull request from a fork": ({"github.event_name": "pull_request",
                                      "github.ref": "refs/pull/8/merge",
                                      "github.event.pull_request.head.repo.full_name": "x/site"},
                                     {"build"}),
        "push to main": ({"github.event_name": "push", "github.ref": "refs/heads/main"},
                         {"build", "deploy"}),
        "schedule": ({"github.event_name": "schedule", "github.ref": "refs/heads/main"},
                     {"report"}),
    }
    for what, (context, expected) in events.items():
        selected = github_run(doc, {"github.repository": repo, **context})
        assert selected == expected, f"{what}: {sorted(selected)}"

    for name in GITHUB_RECIPE.roles.values():
        steps = jobs[name]["steps"]
        uses = [s.get("uses", "") for s in steps]
        planner_at = next(i for i, s in enumerate(steps)
                          if any(invokes_planner(c) for c in logical_lines(s.get("run", ""))))
        [creds_at] = [i for i, u in enumerate(uses)
                      if u.startswith("aws-actions/configure-aws-credentials@v4")]
        assert creds_at < planner_at, f"{name}: credentials after the planner step"
        inputs = steps[creds_at]["with"]
        assert inputs["role-to-assume"] == "${{ secrets.AWS_DEPLOY_ROLE_ARN }}"
        assert not ACCESS_KEY_INPUTS & set(inputs), f"{name}: stored keys {inputs}"
        assert any(u.startswith("actions/setup-python@") for u in uses[:planner_at]), name
        for line in (c for c in github_commands(jobs[name]) if invokes_planner(c)):
            assert '>> "$GITHUB_STEP_SUMMARY"' in line or name == "plan", line
            assert "${{ vars.S3_BUCKET }}" in line, line
    # The plan job's markdown goes to plan.md, then into the summary and the comment.
    plan_runs = github_commands(jobs["plan"])
    planned = next(i for i, c in enumerate(plan_runs) if invokes_planner(c))
    assert 'cat plan.md >> "$GITHUB_STEP_SUMMARY"' in plan_runs[planned + 1:], plan_runs
    comment = comment_script(GITHUB_RECIPE)
    assert comment.env["GH_TOKEN"] == "${{ github.token }}", comment.env
    for name in ("plan", "deploy"):
        [line] = [c for c in github_commands(jobs[name]) if invokes_planner(c)]
        assert '--distribution "${{ vars.CLOUDFRONT_DISTRIBUTION_ID }}"' in line
    assert "needs" in jobs["plan"] and "needs" in jobs["deploy"]
    [plan] = [c for c in github_commands(jobs["plan"]) if invokes_planner(c)]
    assert "--detailed-exitcode" in plan and plan.endswith("|| [ $? -eq 2 ]"), plan
    text = GITHUB.read_text(encoding="utf-8")
    assert "AWS_SECRET_ACCESS_KEY" not in text and "aws-access-key-id" not in text


# --- running the recipes' planner commands ----------------------------------------------------


@dataclass
class Ran:
    job: str
    line: str  # as run, variables filled in
    proc: subprocess.CompletedProcess
    summary: str | None  # GitHub: what the step appended to $GITHUB_STEP_SUMMARY
    # The markdown file the script writes (`> plan.md`, `> deploy.md`, ...), if it does.
    md_file: str | None = None

    def ok(self) -> Ran:
        assert self.proc.returncode == 0, self.describe()
        return self

    @property
    def markdown(self) -> str:
        """The job's markdown: the file the script writes it to (plan.md, deploy.md...), else
        the step summary (GitHub) or the job log."""
        if self.md_file is not None:
            return self.md_file
        return self.proc.stdout if self.summary is None else self.summary

    def describe(self) -> str:
        return (f"{self.job}: {self.line}\nexit {self.proc.returncode}\n"
                f"stdout: {self.proc.stdout}\nstderr: {self.proc.stderr}\nsummary: {self.summary}")


class CI:
    """Runs a recipe's scripts against the moto site, in a folder with a ./public build, as
    the job would: in order, each with ``bash -eo pipefail``, stopping at the first failure."""

    def __init__(self, env: dict[str, str], workdir: Path, tmp: Path, bucket: str, dist: str):
        self.env, self.workdir, self.tmp = env, workdir, tmp
        self.bucket, self.dist = bucket, dist
        self.runs = 0

    def run(self, recipe: Recipe, role: str, bucket: str | None = None) -> list[Ran]:
        """The job's planner lines."""
        job = recipe.roles[role]
        lines = [line for j, line in recipe.planner_lines() if j == job]
        assert lines, f"{recipe.path.name}: job {job} has no planner line"
        return self._run(recipe, job, [Script(line, {}) for line in lines], bucket=bucket)

    def run_job(self, recipe: Recipe, role: str, env: dict[str, str],
                context: dict[str, str]) -> list[Ran]:
        """Every script of the job but ``pip install`` (the venv has the tool). ``env``: more
        variables of the job (GitLab's CI/CD and predefined variables, GitHub's default
        environment); ``context``: GitHub expressions other than ``vars.*``."""
        job = recipe.roles[role]
        scripts = [s for s in job_scripts(recipe.doc, recipe.kind, job)
                   if not all(ln.startswith("pip install ") for ln in logical_lines(s.text))]
        return self._run(recipe, job, scripts, env=env, context=context)

    def _run(self, recipe: Recipe, job: str, scripts: list[Script], bucket: str | None = None,
             env: dict[str, str] | None = None,
             context: dict[str, str] | None = None) -> list[Ran]:
        values = {"S3_BUCKET": bucket or self.bucket, "CLOUDFRONT_DISTRIBUTION_ID": self.dist}
        for old in self.workdir.glob("*.md"):  # a job's markdown files: this run's only
            old.unlink()
        out = []
        for script in scripts:
            text = script.text
            run_env = {**self.env, **(env or {})}
            summary = None
            if recipe.kind == "gitlab":
                run_env.update(_gitlab_variables(recipe.doc, job))
                run_env.update(values)  # CI/CD variables: environment variables of the job
            else:
                expressions = {**{f"vars.{k}": v for k, v in values.items()}, **(context or {})}
                text = _github_expand(text, expressions)
                run_env.update({k: _github_expand(str(v), expressions)
                                for k, v in script.env.items()})
                self.runs += 1
                summary = self.tmp / f"step-summary-{self.runs}.md"
                summary.write_text("")
                run_env["GITHUB_STEP_SUMMARY"] = str(summary)
            proc = subprocess.run(
                ["bash", "-eo", "pipefail", "-c", text], cwd=self.workdir, env=run_env,
                capture_output=True, text=True, encoding="utf-8", timeout=TIMEOUT, check=False,
            )
            written = _markdown_file(text)
            md_path = self.workdir / written if written else None
            out.append(Ran(job, text, proc,
                           None if summary is None else summary.read_text(encoding="utf-8"),
                           md_path.read_text(encoding="utf-8")
                           if md_path is not None and md_path.exists() else None))
            if proc.returncode != 0:
                break  # the job fails here
        return out


def _gitlab_variables(doc: dict[str, Any], job: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for scope in (doc.get("variables") or {}, gitlab_jobs(doc)[job].get("variables") or {}):
        for key, val in scope.items():
            merged[key] = str(val["value"] if isinstance(val, dict) else val)
    return merged


def _github_expand(line: str, values: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        assert expr in values, f"no value for ${{{{ {expr} }}}} in {line!r}"
        return values[expr]

    return re.sub(r"\$\{\{(.*?)\}\}", sub, line)


@pytest.fixture
def ci(moto, site, tmp_path: Path) -> CI:
    bindir = os.path.dirname(sys.executable)
    env = {
        **moto.env,
        "PATH": bindir + os.pathsep + moto.env.get("PATH", os.defpath),
        "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
    }
    assert shutil.which("planner", path=env["PATH"]) == os.path.join(bindir, "planner"), (
        "this venv has no planner console script: pip install -e '.[test]'"
    )
    workdir = tmp_path / "checkout"
    write_site(workdir / "public")
    return CI(env, workdir, tmp_path, site.bucket, site.distribution_id)


def _assert_markdown(ran: Ran, title: str) -> None:
    md = ran.markdown
    assert md.startswith(f"## {title}"), ran.describe()
    assert re.search(r"^\|.*\|$", md, re.M), f"no markdown table\n{ran.describe()}"
    if ran.summary is not None or ran.md_file is not None:  # all of stdout went there
        assert ran.proc.stdout == "", ran.describe()


def _assert_plan(ran: Ran) -> None:
    """A plan line's output: markdown into plan.md, or (GitLab's log) tables."""
    if ran.md_file is not None or ran.summary is not None:
        _assert_markdown(ran, "Plan")
    else:
        assert ran.proc.stdout.startswith("Plan: "), ran.describe()
        assert re.search(r"^-+  -+", ran.proc.stdout, re.M), f"no table\n{ran.describe()}"


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_plan_deploy_and_report_run_against_moto(recipe: Recipe, ci: CI, moto, site) -> None:
    s3 = moto.s3

    # A merge/pull request before the first deploy: a plan, nothing written.
    before = history(s3, site.bucket)
    for ran in ci.run(recipe, "plan"):
        _assert_plan(ran.ok())
    assert history(s3, site.bucket) == before == []

    # The default branch: the whole site, and the manifest beside it; nothing to invalidate.
    [ran] = ci.run(recipe, "deploy")
    _assert_markdown(ran.ok(), "Plan")
    assert "**Uploaded" in ran.markdown, ran.describe()
    assert set(site_objects(s3, site.bucket)) == set(SITE)
    assert MANIFEST in objects(s3, site.bucket)
    assert invalidations(moto.cloudfront, site.distribution_id) == []

    # A change: the plan shows it and writes nothing (GitHub's exit 2 is not a failure) ...
    page = ci.workdir / "public" / CHANGED_PAGE
    page.write_text("<!doctype html><h1>About us, again</h1>\n", encoding="utf-8")
    before = history(s3, site.bucket)
    for ran in ci.run(recipe, "plan"):
        _assert_plan(ran.ok())
        assert CHANGED_PAGE in (ran.markdown if ran.md_file is not None else ran.proc.stdout)
    assert history(s3, site.bucket) == before

    # ... and the next deploy uploads it and invalidates its URLs on the distribution.
    [ran] = ci.run(recipe, "deploy")
    ran.ok()
    assert body(s3, site.bucket, CHANGED_PAGE) == page.read_bytes()
    [inv] = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) and all(p.startswith("/about") for p in inv_paths(inv)), inv_paths(inv)

    # The scheduled report: under $5 this month, so exit 0 (3 only if over), in markdown
    # (GitLab: into report.md, and as tables in the log).
    reports = [r.ok() for r in ci.run(recipe, "report")]
    [ran] = [r for r in reports if "--format markdown" in r.line]
    _assert_markdown(ran, "")
    assert "2 deploys" in ran.markdown, ran.describe()
    for ran in reports:
        if ran.md_file is None and ran.summary is None:
            assert re.search(r"^-+  -+", ran.proc.stdout, re.M), f"no table\n{ran.describe()}"


# With --detailed-exitcode, exit 2 means only "something would change": bad usage and a bad
# configuration file exit 1 then, so `|| [ $? -eq 2 ]` forgives nothing else.
PLAN_FAULTS = [
    pytest.param(GITLAB_RECIPE, "missing bucket", id="gitlab-missing-bucket"),
    pytest.param(GITHUB_RECIPE, "missing bucket", id="github-missing-bucket"),
    pytest.param(GITLAB_RECIPE, "planner.toml typo", id="gitlab-config-typo"),
    pytest.param(GITHUB_RECIPE, "planner.toml typo", id="github-config-typo"),
]


@pytest.mark.parametrize(("recipe", "fault"), PLAN_FAULTS)
def test_a_planner_error_in_the_plan_job_still_fails_it(recipe: Recipe, fault: str, ci: CI) -> None:
    """`|| [ $? -eq 2 ]` must forgive only "something would change": a plan that cannot read
    the target (exit 1), or a configuration file it refuses, fails the job."""
    bucket = None
    if fault == "missing bucket":
        bucket = "no-such-bucket"
    else:
        (ci.workdir / "planner.toml").write_text("max-delets = 50\n", encoding="utf-8")
    [ran] = ci.run(recipe, "plan", bucket=bucket)
    assert ran.proc.returncode != 0, ran.describe()
    assert "Error: " in ran.proc.stderr and "Traceback" not in ran.proc.stderr, ran.describe()


# --- the plan as a pull-request comment / merge request note ---------------------------------

TOKEN = "fake-token-3f9a1c"  # must never show in a job's output
OTHER_TARGET_NOTE = "<!-- invalidation-planner plan: s3://other-bucket -->\n## Plan: elsewhere\n"


class FakeAPI:
    """The fake gh and curl of ``fake_ci_api.py``, first on PATH, and their state."""

    def __init__(self, tmp: Path, comments: list[dict[str, Any]]):
        self.state_path = tmp / "fake-api-state.json"
        self.bindir = tmp / "fake-bin"
        fake_ci_api.install(self.bindir, self.state_path)
        self.write({"token": TOKEN, "repo": "owner/site", "pr": "7",
                    "api": "https://gitlab.example.com/api/v4", "project": "42", "mr": "7",
                    "comments": comments, "next_id": 100, "calls": []})

    def read(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text(encoding="utf-8"))

    def write(self, state: dict[str, Any]) -> None:
        self.state_path.write_text(json.dumps(state), encoding="utf-8")

    def take_calls(self) -> list[list[str]]:
        state = self.read()
        calls, state["calls"] = state["calls"], []
        self.write(state)
        return calls


def _run_plan_job(recipe: Recipe, ci: CI, api: FakeAPI, token: str | None = TOKEN) -> list[Ran]:
    """The recipe's plan job, whole, on a merge/pull request, the fakes first on PATH."""
    path = f"{api.bindir}{os.pathsep}{ci.env['PATH']}"
    if recipe.kind == "gitlab":
        env = {"PATH": path, "CI_API_V4_URL": "https://gitlab.example.com/api/v4",
               "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7"}
        if token is not None:
            env["PLANNER_NOTE_TOKEN"] = token  # a masked CI/CD variable
        return ci.run_job(recipe, "plan", env=env, context={})
    context = {"github.token": token or "", "github.event.pull_request.number": "7"}
    return ci.run_job(recipe, "plan", env={"PATH": path, "GITHUB_REPOSITORY": "owner/site"},
                      context=context)


def _method(call: list[str]) -> str:
    """The HTTP method of a recorded gh api / curl call, decided as the tools decide it."""
    for flag in ("--method", "--request", "-X"):
        if flag in call:
            return call[call.index(flag) + 1]
    return "POST" if {"-F", "--field", "--data-urlencode"} & set(call) else "GET"


@pytest.mark.parametrize("recipe", RECIPES)
def test_plan_job_comments_the_plan_once_per_target_then_edits_it(recipe: Recipe, ci: CI) -> None:
    """The plan job's comment upsert, run as written with a fake gh / curl: the first plan of
    a pull/merge request adds one comment (the marker, then the plan's markdown); the next
    edits that comment, found by its marker, and adds none; another target's comment and
    people's comments are left alone; the token never shows in the job's output."""
    marker = f"<!-- invalidation-planner plan: s3://{ci.bucket} -->"
    people = {"id": 11, "body": "Looks good to me"}
    other = {"id": 12, "body": OTHER_TARGET_NOTE}
    api = FakeAPI(ci.tmp, [people, other])

    # No earlier comment of this target: one is added.
    ran = _run_plan_job(recipe, ci, api)
    for r in ran:
        r.ok()
    [plan] = [r.md_file for r in ran if r.md_file is not None]
    assert "## Plan:" in plan, plan  # the plan's heading; the rest of its text is not ours
    calls = api.take_calls()
    assert [_method(c) for c in calls] == ["GET", "POST"], calls
    comments = api.read()["comments"]
    assert comments[:2] == [people, other]
    [added] = comments[2:]
    assert added["body"] == f"{marker}\n{plan}", added["body"]
    if recipe.kind == "github":  # the job summary holds the plan too
        assert plan in [r.summary for r in ran], [r.summary for r in ran]
    else:  # GitLab's log: tables, and plan.md is the artifact
        assert any(r.proc.stdout.startswith("Plan: ") for r in ran), [r.proc.stdout for r in ran]

    # A new push: a new plan, written into the same comment.
    page = ci.workdir / "public" / CHANGED_PAGE
    page.write_text("<!doctype html><h1>About us, edited</h1>\n", encoding="utf-8")
    ran += _run_plan_job(recipe, ci, api)
    for r in ran:
        r.ok()
    calls = api.take_calls()
    assert [_method(c) for c in calls] == ["GET", "PATCH" if recipe.kind == "github" else "PUT"]
    assert any(re.search(rf"/(comments|notes)/{added['id']}$", arg) for arg in calls[1]), calls
    comments = api.read()["comments"]
    assert [c["id"] for c in comments] == [11, 12, added["id"]], "a second comment was added"
    assert comments[:2] == [people, other]
    assert comments[2]["body"].startswith(f"{marker}\n") and "## Plan:" in comments[2]["body"]
    assert comments[2]["body"] != added["body"]  # the new plan (its deploy id at least)

    for r in ran:  # nothing prints the token
        assert TOKEN not in r.proc.stdout + r.proc.stderr + (r.summary or ""), r.describe()


def test_gitlab_plan_job_without_the_note_token_writes_no_note(ci: CI) -> None:
    """Without PLANNER_NOTE_TOKEN (not set, or protected on an unprotected branch), the plan
    job still plans (plan.md, the log) and says why there is no note; it calls no API."""
    api = FakeAPI(ci.tmp, [])
    ran = _run_plan_job(GITLAB_RECIPE, ci, api, token=None)
    for r in ran:
        r.ok()
    assert len(ran) == len(job_scripts(GITLAB_RECIPE.doc, "gitlab", "plan")) - 1  # all but pip
    assert "PLANNER_NOTE_TOKEN is not set" in ran[-1].proc.stdout, ran[-1].describe()
    assert api.read()["calls"] == [] and api.read()["comments"] == []


# Markdown as a log would show it raw: a heading, a table row, a bold line.
MARKDOWN_LINE = re.compile(r"^(#{1,6} .*|\|.*\||\*\*.*\*\*)$", re.M)


def test_gitlab_jobs_keep_their_markdown_out_of_the_job_log(ci: CI) -> None:
    """GitLab's job log shows markdown raw. The plan, deploy and report jobs, run whole (but
    pip install) against moto, write it into plan.md / deploy.md / report.md, their artifacts,
    and print for people in the log: the plan and report as tables, the deploy's progress and
    its one-line result."""
    def log(ran: list[Ran]) -> str:
        for r in ran:
            r.ok()
        text = "".join(r.proc.stdout + r.proc.stderr for r in ran)
        assert not MARKDOWN_LINE.search(text), f"markdown in the job log:\n{text}"
        return text

    api = FakeAPI(ci.tmp, [])
    plan = _run_plan_job(GITLAB_RECIPE, ci, api, token=None)
    assert "Plan: " in log(plan)
    assert [r.md_file for r in plan if r.md_file is not None][0].startswith("## Plan: ")

    deploy = ci.run_job(GITLAB_RECIPE, "deploy", env={}, context={})
    text = log(deploy)
    [md] = [r.md_file for r in deploy if r.md_file is not None]
    assert md.startswith("## Plan: ") and MARKDOWN_LINE.search(md), md
    result = md.rstrip("\n").splitlines()[-1]
    assert result.startswith("**Uploaded ") and result.endswith("**"), md
    # The log: progress lines (stderr), then the result as one line for people.
    assert "uploaded " in text and deploy[-1].proc.stdout == result.strip("*") + "\n", text
    assert (ci.workdir / "deploy.md").read_text(encoding="utf-8") == md

    report = ci.run_job(GITLAB_RECIPE, "report", env={}, context={})
    text = log(report)
    [md] = [r.md_file for r in report if r.md_file is not None]
    assert md.startswith("## ") and MARKDOWN_LINE.search(md), md
    assert re.search(r"^-+  -+", text, re.M), f"no table in the log\n{text}"
    assert (ci.workdir / "report.md").read_text(encoding="utf-8") == md
    artifacts = {job: GITLAB_RECIPE.jobs()[job]["artifacts"]["paths"]
                 for job in GITLAB_RECIPE.roles.values()}
    assert artifacts == {"plan": ["plan.md"], "prod_deploy": ["deploy.md"],
                         "invalidation_report": ["report.md"]}


# --- the version the recipes install --------------------------------------------------------

# invalidation-planner==X (PyPI) or ...invalidation-planner@vX (a git tag).
PINNED = re.compile(r"invalidation-planner(?:==|@v)([0-9][0-9A-Za-z.+-]*[0-9A-Za-z])")


def test_every_pin_is_the_version_of_planner_init() -> None:
    """The recipes install the version in planner/__init__.py (so do the docs' examples), from
    PyPI, and show the git-tag install for a fork in a comment; bumping the version makes this
    test name every file to update."""
    assert VERSION == planner.__version__
    stale = {}
    for path in (GITLAB, GITHUB, CI_DOC, README):
        text = path.read_text(encoding="utf-8")
        pins = PINNED.findall(text)
        assert pins, f"{path.name}: no pinned install"
        if set(pins) != {VERSION}:
            stale[path.relative_to(ROOT).as_posix()] = sorted(set(pins) - {VERSION})
        # An unpinned install of the tool (a bare `pip install invalidation-planner`).
        assert not re.search(r"pip install \"?invalidation-planner(?![=\w-])", text), path.name
    assert not stale, f"pins other than {VERSION} (planner/__init__.py): {stale}"
    for recipe in (GITLAB_RECIPE, GITHUB_RECIPE):
        text = recipe.path.read_text(encoding="utf-8")
        fork = f'#   pip install "git+https://github.com/OWNER/invalidation-planner@v{VERSION}"'
        assert fork in text, f"{recipe.path.name}: no comment showing the install from a tag"
        for job in recipe.roles.values():
            assert PIN in [shlex.split(c) for c in recipe.commands(job)], job


# --- the release workflow (examples/release) -------------------------------------------------


def test_release_workflow_publishes_on_version_tags_by_trusted_publishing() -> None:
    """On a pushed version tag only: build, twine check, then pypa/gh-action-pypi-publish in
    the `pypi` environment with the job's OIDC token (id-token: write on that job alone) and
    no stored password or token anywhere."""
    doc = load(RELEASE)
    on = github_on(doc)
    assert set(on) == {"push"} and set(on["push"]) == {"tags"}, on  # no branch, no PR
    assert any(fnmatch.fnmatchcase("v0.1.0", pattern) for pattern in on["push"]["tags"])
    assert doc["permissions"] == {"contents": "read"}
    jobs = doc["jobs"]
    assert set(jobs) == {"build", "publish"}

    build_runs = github_commands(jobs["build"])
    at = {cmd: i for i, cmd in enumerate(build_runs)}
    assert at["python -m build"] < at["python -m twine check --strict dist/*"], build_runs
    [upload] = [s for s in jobs["build"]["steps"]
                if s.get("uses", "").startswith("actions/upload-artifact@")]

    publish = jobs["publish"]
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    steps = publish["steps"]
    [download] = [s for s in steps if s.get("uses", "").startswith("actions/download-artifact@")]
    assert download["with"]["name"] == upload["with"]["name"]
    assert download["with"]["path"].rstrip("/") == "dist"  # the action's default packages-dir
    [pypi] = [s for s in steps if s.get("uses", "").startswith("pypa/gh-action-pypi-publish@")]
    assert not {"password", "user", "username", "token"} & set(pypi.get("with") or {}), pypi
    assert all("run" not in s for s in steps), "the publish job runs nothing of its own"
    for name, job in jobs.items():
        if name != "publish":
            assert "id-token" not in (job.get("permissions") or {}), name
    text = RELEASE.read_text(encoding="utf-8")
    assert "secrets." not in text and "TWINE_PASSWORD" not in text


@pytest.mark.parametrize(("tag", "ok"), [
    pytest.param(f"v{planner.__version__}", True, id="tag-names-the-version"),
    pytest.param("v9.9.9", False, id="tag-names-another-version"),
    pytest.param(planner.__version__, True, id="tag-without-v"),
])
def test_release_workflow_refuses_a_tag_that_does_not_name_the_version_built(
    tag: str, ok: bool, tmp_path: Path
) -> None:
    """The build job's tag check, run as written, against a dist/ as `python -m build`
    leaves it for this version."""
    [step] = [s for s in load(RELEASE)["jobs"]["build"]["steps"]
              if s.get("name") == "Check that the tag names the version built"]
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in (f"invalidation_planner-{planner.__version__}.tar.gz",
                 f"invalidation_planner-{planner.__version__}-py3-none-any.whl"):
        (dist / name).write_bytes(b"")
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]], cwd=tmp_path, capture_output=True,
        text=True, env={"PATH": os.defpath, "GITHUB_REF_NAME": tag}, timeout=TIMEOUT,
        check=False,
    )
    assert (proc.returncode == 0) == ok, (proc.returncode, proc.stdout, proc.stderr)
    if not ok:
        assert f"tag {tag} does not match" in proc.stdout, proc.stdout


def test_the_docs_link_the_tested_recipes_and_quote_them_verbatim() -> None:
    """docs/ci.md links both recipe files, and every excerpt of a recipe it shows is the
    recipe's own text, lines whole (the usual aws-cli job it replaces aside): what people read
    and copy is what is tested here."""
    ci_md = CI_DOC.read_text(encoding="utf-8")
    for recipe in (GITLAB, GITHUB, RELEASE):
        link = recipe.relative_to(ROOT / "examples").as_posix()
        assert f"](../examples/{link})" in ci_md, f"docs/ci.md does not link {link}"
    recipes = {path.name: path.read_text(encoding="utf-8") for path in (GITLAB, GITHUB, RELEASE)}
    blocks = re.findall(r"```yaml\n(.*?)```", ci_md, flags=re.DOTALL)
    excerpts = [b for b in blocks if "aws s3 cp" not in b]  # the usual job, before the tool
    assert excerpts, "docs/ci.md quotes no recipe"
    for block in excerpts:
        assert any("\n" + block in "\n" + text for text in recipes.values()), (
            f"docs/ci.md shows a recipe excerpt that is not in examples/ci:\n{block}"
        )
