"""Options from environment variables: ``PLANNER_<OPTION>`` for every command that has the
option, ``PLANNER_<COMMAND>_<OPTION>`` (read first) for one command, and the options that take
only the latter. Precedence: a flag, a variable, the configuration file (a named target's
table, then the top level), the default.

The CLI runs in process (click's CliRunner) on the local folder backend, in a working
directory of its own (the configuration file is found there). Which value a plan used is read
from its JSON: ``--free-paths-per-month`` is ``invalidation.budget.free_paths_per_month``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from e2e_helpers import run

from planner.cli import cli
from planner.cli.common import OWN_VARIABLE_ONLY, option_key, variables_of

SITE = {"index.html": "<h1>home</h1>\n", "app.js.map": "{}\n", "drafts/a.html": "<p>a</p>\n"}


def without_planner_variables(**extra: str) -> dict[str, str | None]:
    """CliRunner's env: this process's PLANNER_* and AWS_* variables unset, plus ``extra``."""
    env: dict[str, str | None] = {
        k: None for k in os.environ if k.upper().startswith(("PLANNER_", "AWS_"))
    }
    env.update(extra)
    return env


def planner(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="planner",
                              env=without_planner_variables(**env))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the build in ./public and a planner.toml: a top level and two
    named targets, prod (its own free paths) and staging (none)."""
    for key, text in SITE.items():
        (tmp_path / "public" / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "public" / key).write_text(text)
    (tmp_path / "planner.toml").write_text(
        "free-paths-per-month = 300\n"
        "[targets.prod]\n"
        f'target = "{tmp_path / "out-prod"}"\n'
        "free-paths-per-month = 400\n"
        "[targets.staging]\n"
        f'target = "{tmp_path / "out-staging"}"\n'
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def plan_json(*args: str, **env: str) -> dict[str, Any]:
    return json.loads(ok(planner("plan", "public", "--format", "json", *args, **env)).stdout)


def free_paths(*args: str, **env: str) -> int:
    return plan_json(*args, **env)["invalidation"]["budget"]["free_paths_per_month"]


# --- precedence ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, env, expected",
    [
        # a flag beats the variable
        (["-t", "prod", "--free-paths-per-month", "100"],
         {"PLANNER_FREE_PATHS_PER_MONTH": "200"}, 100),
        # the variable beats the named target's table
        (["-t", "prod"], {"PLANNER_FREE_PATHS_PER_MONTH": "200"}, 200),
        # the variable beats the file's top level
        (["-t", "staging"], {"PLANNER_FREE_PATHS_PER_MONTH": "200"}, 200),
        # the table beats the top level
        (["-t", "prod"], {}, 400),
        # the top level beats the default
        (["-t", "staging"], {}, 300),
        # the command's own variable is read before the shared one (the narrower setting)
        (["-t", "prod"], {"PLANNER_PLAN_FREE_PATHS_PER_MONTH": "250",
                          "PLANNER_FREE_PATHS_PER_MONTH": "200"}, 250),
        # another command's own variable is not this command's
        (["-t", "prod"], {"PLANNER_DEPLOY_FREE_PATHS_PER_MONTH": "250"}, 400),
        # an empty variable is no value (click's rule)
        (["-t", "prod"], {"PLANNER_FREE_PATHS_PER_MONTH": ""}, 400),
    ],
)
def test_flag_then_variable_then_file_then_default(cwd, args, env, expected):
    assert free_paths(*args, **env) == expected


def test_the_default_applies_without_file_or_variable(cwd):
    (cwd / "planner.toml").unlink()
    assert free_paths("-t", str(cwd / "out")) == 1000
    assert free_paths("-t", str(cwd / "out"), PLANNER_FREE_PATHS_PER_MONTH="200") == 200


def test_site_argument_from_its_variable(cwd):
    doc = json.loads(ok(planner("plan", "-t", "staging", "--format", "json",
                                PLANNER_SITE=str(cwd / "public"))).stdout)
    assert doc["site"] == str(cwd / "public")


def test_target_variable_names_a_target_of_the_file(cwd):
    doc = plan_json(PLANNER_TARGET="prod")
    assert doc["target"] == f"file://{cwd / 'out-prod'}"
    assert doc["invalidation"]["budget"]["free_paths_per_month"] == 400


def test_planner_target_works_for_every_command_that_has_a_target(cwd):
    target = str(cwd / "out")
    env = {"PLANNER_TARGET": target}
    ok(planner("deploy", "public", "-q", **env))
    assert (cwd / "out" / "index.html").is_file()
    assert plan_json(**env)["target"] == f"file://{target}"
    assert json.loads(ok(planner("verify", "--format", "json", **env)).stdout)["clean"] is True
    report = json.loads(ok(planner("report", "--format", "json", **env)).stdout)
    assert report["tool"]["target"] == f"file://{target}" and report["tool"]["deploys"] == 1
    assert "was not locked" in ok(planner("unlock", **env)).stdout


def test_the_older_per_command_names_still_work(cwd):
    target = str(cwd / "out")
    ok(planner("deploy", "public", "-q", PLANNER_DEPLOY_TARGET=target))
    assert (cwd / "out" / "index.html").is_file()
    # click's spelling after the Python name (PLANNER_PLAN_FMT), and the one after the flag
    for env in ({"PLANNER_PLAN_FMT": "json"}, {"PLANNER_PLAN_FORMAT": "json"}):
        out = ok(planner("plan", "public", "-t", target, **env)).stdout
        assert json.loads(out)["target"] == f"file://{target}", env
    doc = json.loads(ok(planner("plan", "public", "-t", target, "--format", "json",
                                PLANNER_PLAN_DISTRIBUTIONS="E1 E2")).stdout)
    assert doc["invalidation"]["distribution_ids"] == ["E1", "E2"]


def test_a_target_variable_of_another_command_is_not_read(cwd):
    result = planner("plan", "public", PLANNER_DEPLOY_TARGET=str(cwd / "out"))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "Error: Missing option '--target' / '-t'."


# --- multiple values -------------------------------------------------------------------------


def test_multiple_values_are_separated_by_white_space(cwd):
    doc = plan_json("-t", "staging", PLANNER_DISTRIBUTION="E1  E2\tE3",
                    PLANNER_EXCLUDE="*.map drafts/*")
    assert doc["invalidation"]["distribution_ids"] == ["E1", "E2", "E3"]
    assert [u["key"] for u in doc["uploads"]] == ["index.html"]


def test_a_flag_replaces_the_variables_list(cwd):
    doc = plan_json("-t", "staging", "-d", "E9", PLANNER_DISTRIBUTION="E1 E2")
    assert doc["invalidation"]["distribution_ids"] == ["E9"]


# --- options with their command's variable only ----------------------------------------------


def test_format_has_no_shared_variable(cwd):
    # PLANNER_FORMAT=csv would break plan (no csv), and json would change every command's
    # stdout: it is not read; each command's own is.
    out = ok(planner("plan", "public", "-t", "staging", PLANNER_FORMAT="csv")).stdout
    assert out.startswith("Plan: ")
    report = ok(planner("report", "-t", "staging", PLANNER_FORMAT="json",
                        PLANNER_REPORT_FORMAT="csv")).stdout
    assert report.splitlines()[0].startswith("date,invalidations,")


def test_dry_run_out_and_detailed_exitcode_have_no_shared_variable(cwd):
    env = {"PLANNER_DRY_RUN": "1", "PLANNER_OUT": str(cwd / "plan.json"),
           "PLANNER_DETAILED_EXITCODE": "1"}
    ok(planner("plan", "public", "-t", "staging", "-q", **env))  # exit 0, not 2
    assert not (cwd / "plan.json").exists()
    ok(planner("deploy", "public", "-t", "staging", "-q", **env))
    assert (cwd / "out-staging" / "index.html").is_file()  # deployed, not a dry run
    ok(planner("plan", "public", "-t", "staging", "-q", PLANNER_PLAN_OUT=str(cwd / "plan.json")))
    assert (cwd / "plan.json").is_file()


def test_every_option_of_every_command_has_its_variables():
    for name, command in cli.commands.items():
        for param in command.params:
            shared, own = variables_of(name, param)
            key = option_key(param)
            assert own and own[0] == f"PLANNER_{name}_{key}".upper().replace("-", "_")
            assert list(param.envvar) == own + ([shared] if shared else []), (name, key)
            if shared:
                assert shared == f"PLANNER_{key}".upper().replace("-", "_")


def test_every_option_without_a_shared_variable_exists():
    """The list of options without a shared variable names options the CLI has."""
    keys = {option_key(p) for c in cli.commands.values() for p in c.params}
    for entry in OWN_VARIABLE_ONLY:
        command, _, flag = entry.rpartition(" --")
        if command:
            assert flag in {option_key(p) for p in cli.commands[command].params}, entry
        else:
            assert entry in keys, entry


def test_a_shared_variable_means_the_same_option_in_every_command():
    """Where two commands share PLANNER_<OPTION>, the option takes the same kind of value."""
    kinds: dict[str, set[str]] = {}
    for name, command in cli.commands.items():
        for param in command.params:
            shared, _ = variables_of(name, param)
            if shared:
                kind = type(param.type).__name__ + ("*" if getattr(param, "multiple", 0) else "")
                if isinstance(param.type, click.Choice):
                    kind += repr(sorted(param.type.choices))
                kinds.setdefault(shared, set()).add(kind)
    assert {k: v for k, v in kinds.items() if len(v) > 1} == {}


# --- bad values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PLANNER_MAX_DELETES": "many"},
         "Error: Invalid value for '--max-deletes' (from PLANNER_MAX_DELETES): 'many' is not a "
         "valid integer range."),
        ({"PLANNER_PLAN_MAX_DELETES": "-1", "PLANNER_MAX_DELETES": "5"},
         "Error: Invalid value for '--max-deletes' (from PLANNER_PLAN_MAX_DELETES): -1 is not in "
         "the range x>=0."),
        ({"PLANNER_PACE": "fast"},
         "Error: Invalid value for '--pace' (from PLANNER_PACE): 'fast' is not one of 'price', "
         "'even', 'none'."),
        ({"PLANNER_PLAN_FORMAT": "csv"},
         "Error: Invalid value for '--format' (from PLANNER_PLAN_FORMAT): 'csv' is not one of "
         "'table', 'json', 'markdown'."),
    ],
)
def test_a_bad_value_in_a_variable_is_a_usage_error_naming_it(cwd, env, message):
    result = planner("plan", "public", "-t", str(cwd / "out"), **env)
    assert result.exit_code == 2
    assert [x for x in result.stderr.splitlines() if x.startswith("Error")] == [message]
    assert result.stderr.splitlines()[-1] == message
    assert result.stdout == "" and not (cwd / "out").exists()


def test_a_bad_flag_variable_is_a_usage_error_naming_it(cwd):
    result = planner("deploy", "public", "-t", str(cwd / "out"), PLANNER_NO_DELETE="maybe")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith(
        "Error: Invalid value for '--no-delete' (from PLANNER_NO_DELETE): 'maybe' is not a valid "
        "boolean."
    )
    assert not (cwd / "out").exists()


def test_a_bad_value_on_the_command_line_names_no_variable(cwd):
    result = planner("plan", "public", "-t", "x", "--max-deletes", "many",
                     PLANNER_MAX_DELETES="3")
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--max-deletes': 'many' is not a valid integer range."
    )


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("PLANNER_", "AWS_", "BOTO_"))}
    return {**env, **extra}


@pytest.mark.e2e
def test_detailed_exitcode_from_its_variable_keeps_bad_usage_apart(cwd):
    """`plan --detailed-exitcode` exits 2 for "something would change", so bad usage exits 1:
    also when the flag comes from PLANNER_PLAN_DETAILED_EXITCODE."""
    out = str(cwd / "out")
    env = _clean_env(PLANNER_PLAN_DETAILED_EXITCODE="1")
    changes = run(["plan", "public", "-t", out, "-q"], env, str(cwd))
    assert (changes.returncode, changes.stderr) == (2, "")  # -q: the plan on stdout only
    assert changes.stdout.startswith("Plan: ")
    bad: subprocess.CompletedProcess = run(["plan", "public", "-t", out],
                                           {**env, "PLANNER_MAX_DELETES": "many"}, str(cwd))
    assert bad.returncode == 1
    assert bad.stderr.splitlines()[-1].startswith(
        "Error: Invalid value for '--max-deletes' (from PLANNER_MAX_DELETES)"
    )
    # another command's bad usage still exits 2
    assert run(["deploy", "public", "-t", out, "--workers", "0"], env, str(cwd)).returncode == 2
