"""End to end: the configuration file (``planner.toml``, ``[tool.planner]`` in
``pyproject.toml``, ``--config`` / ``PLANNER_CONFIG``) and named targets (``--target NAME``).

The real CLI runs in a subprocess *in a working directory* (the file is found there), mostly on
the local folder backend. Plans write nothing, so one module-wide "world" holds the builds and
two deployed targets; each test writes its own config file in its own working directory.

Which option value a run used is read from what it does:

* ``--max-deletes N``: the ``small`` build deletes 11 of the 12 deployed files, so the plan is
  refused with "more than --max-deletes N" for every N below 11, and succeeds with the default.
* ``--cache-control``: the targets were deployed with ``max-age=120``; any other value makes
  every kept file an upload with reason "headers".
* ``--exclude``: the ``public`` build holds two files (``*.map``, ``*.psd``) the targets lack.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import (
    create_distribution,
    inv_paths,
    invalidations,
    one_line_error,
    run,
    write_site,
)

pytestmark = pytest.mark.e2e

DEPLOYED_CACHE = "max-age=120"
BASE = {
    "index.html": "<h1>home</h1>\n",
    "about/index.html": "<h1>about</h1>\n",
    "css/site.css": "body{}\n",
    "js/app.js": "console.log(1)\n",
    **{f"docs/p{i}.html": f"<p>page {i}</p>\n" for i in range(1, 9)},
}  # 12 files
# Two pages removed, two files the targets never had.
PUBLIC = {
    **{k: v for k, v in BASE.items() if k not in ("docs/p7.html", "docs/p8.html")},
    "js/app.js.map": "{}\n",
    "img/logo.psd": "psd\n",
}
KEPT = sorted(k for k in BASE if k in PUBLIC)
SMALL = {"index.html": BASE["index.html"]}  # deletes 11 of the 12


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without PLANNER_* or AWS_* settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("PLANNER_", "AWS_", "BOTO_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def planner(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run(list(args), env if env is not None else clean_env(), str(cwd))


def ok_json(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (the tool's state included) -> its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.public = write_site(root / "public", PUBLIC)
        self.small = write_site(root / "small", SMALL)
        self.base = write_site(root / "base", BASE)
        self.prod = root / "out-prod"
        self.staging = root / "out-staging"

    def config(self, extra_top: str = "", extra_prod: str = "") -> str:
        """Top-level options and two named targets; prod overrides three of them."""
        return f"""
max_deletes = 7
cache_control = "{DEPLOYED_CACHE}"
{extra_top}

[targets.prod]
target = "{self.prod}"
max-deletes = 3
exclude = ["*.map", "*.psd"]
cache-control = "max-age=600"
distribution = ["E1PROD", "E2PROD"]
{extra_prod}

[targets.staging]
target = "{self.staging}"
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("world"))
    for target in (w.prod, w.staging):
        proc = planner(w.root, "deploy", str(w.base), "--target", str(target),
                       "--cache-control", DEPLOYED_CACHE)
        assert proc.returncode == 0, proc.stderr
    return w


@pytest.fixture
def cwd(tmp_path: Path, world: World) -> Path:
    """A working directory holding ``planner.toml`` (the world's config)."""
    d = tmp_path / "cwd"
    d.mkdir()
    (d / "planner.toml").write_text(world.config())
    return d


def max_deletes_used(proc: subprocess.CompletedProcess) -> int | None:
    """N of "more than --max-deletes N" (the small build's 11 deletes were refused), or None
    when the plan went through (N >= 11: the default 256 in these tests)."""
    if proc.returncode == 0:
        assert len(json.loads(proc.stdout)["deletes"]) == 11
        return None
    line = one_line_error(proc)
    assert proc.returncode == 1 and "would delete 11 objects, more than --max-deletes" in line, line
    return int(line.split("--max-deletes ")[1].split(";")[0])


def plan_small(world: World, cwd: Path, *args: str, env: dict[str, str] | None = None):
    return planner(cwd, "plan", str(world.small), *args, "--format", "json", env=env)


def reasons(doc: dict[str, Any]) -> dict[str, str]:
    return {u["key"]: u["reason"] for u in doc["uploads"]}


# --- named targets and their options ---------------------------------------------------------


def test_named_target_uses_its_target_and_its_options(world, cwd):
    doc = ok_json(planner(cwd, "plan", str(world.public), "--target", "prod", "--format", "json"))
    assert doc["target"] == f"file://{world.prod}"
    # prod's exclude: neither the .map nor the .psd; prod's cache-control: every kept file
    # is re-sent for its header; prod's distribution list
    assert reasons(doc) == {k: "headers" for k in KEPT}
    assert [d["key"] for d in doc["deletes"]] == ["docs/p7.html", "docs/p8.html"]
    assert doc["invalidation"]["distribution_ids"] == ["E1PROD", "E2PROD"]
    # prod's max-deletes (3, not the top level's 7)
    assert max_deletes_used(plan_small(world, cwd, "--target", "prod")) == 3


def test_other_named_target_gets_the_top_level_options(world, cwd):
    doc = ok_json(planner(cwd, "plan", str(world.public), "--target", "staging", "--format", "json"))
    assert doc["target"] == f"file://{world.staging}"
    # top-level cache_control (spelled with "_") matches the deployed header: only new files
    assert reasons(doc) == {"img/logo.psd": "new", "js/app.js.map": "new"}
    assert doc["invalidation"]["distribution_ids"] == ["local"]
    assert max_deletes_used(plan_small(world, cwd, "--target", "staging")) == 7


@pytest.mark.parametrize(
    "args, env, expected",
    [
        pytest.param(["--target", "prod", "--max-deletes", "2"], {}, 2, id="flag-beats-table"),
        pytest.param(["--target", "prod"], {"PLANNER_PLAN_MAX_DELETES": "5"}, 5,
                     id="env-beats-table"),
        pytest.param(["--target", "staging"], {"PLANNER_PLAN_MAX_DELETES": "5"}, 5,
                     id="env-beats-top-level"),
        pytest.param(["--target", "prod", "--max-deletes", "2"], {"PLANNER_PLAN_MAX_DELETES": "5"},
                     2, id="flag-beats-env"),
        pytest.param(["--target", "prod"], {"PLANNER_DEPLOY_MAX_DELETES": "5"}, 3,
                     id="other-commands-env-is-ignored"),
        pytest.param(["--target", "prod"], {}, 3, id="table-beats-top-level"),
        pytest.param(["--target", "staging"], {}, 7, id="top-level-beats-default"),
        pytest.param(["--target", "{staging}"], {}, 7, id="top-level-applies-to-a-path-target"),
    ],
)
def test_max_deletes_precedence(world, cwd, args, env, expected):
    args = [a.format(staging=world.staging) for a in args]
    proc = plan_small(world, cwd, *args, env=clean_env(**env))
    assert max_deletes_used(proc) == expected


def test_default_applies_without_a_config_file(world, tmp_path):
    assert max_deletes_used(plan_small(world, tmp_path, "--target", str(world.staging))) is None


def test_flags_beat_the_table_for_strings_and_lists(world, cwd):
    doc = ok_json(planner(
        cwd, "plan", str(world.public), "--target", "prod", "--format", "json",
        "--cache-control", DEPLOYED_CACHE, "--exclude", "*.psd", "--distribution", "E9",
    ))
    assert doc["target"] == f"file://{world.prod}"
    # the flag's list replaces the table's (the .map is back), the flag's header matches
    assert reasons(doc) == {"js/app.js.map": "new"}
    assert doc["invalidation"]["distribution_ids"] == ["E9"]


def test_env_var_beats_the_table_for_a_string(world, cwd):
    env = clean_env(PLANNER_PLAN_CACHE_CONTROL=DEPLOYED_CACHE)
    doc = ok_json(planner(cwd, "plan", str(world.public), "--target", "prod", "--format", "json",
                          env=env))
    assert reasons(doc) == {}  # prod's exclude still applies; the header is the env var's


def test_list_options_at_the_top_level(world, tmp_path):
    (tmp_path / "planner.toml").write_text(
        'distribution = ["E1", "E2"]\nexclude = ["*.map", "*.psd"]\n'
        'free-paths-per-month = 500\n'
    )
    doc = ok_json(planner(tmp_path, "plan", str(world.public), "--target", str(world.staging),
                          "--format", "json"))
    assert doc["invalidation"]["distribution_ids"] == ["E1", "E2"]
    assert {u["key"] for u in doc["uploads"]} == set(KEPT)  # excluded; default header differs
    assert doc["invalidation"]["budget"]["free_paths_per_month"] == 500


# --- where the file comes from ---------------------------------------------------------------


PYPROJECT = """
[project]
name = "my-site"

[tool.planner]
max-deletes = 4

[tool.planner.targets.prod]
target = "{prod}"
max-deletes = 2
"""


def test_pyproject_tool_planner_is_read_without_planner_toml(world, tmp_path):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(prod=world.prod))
    assert max_deletes_used(plan_small(world, tmp_path, "--target", str(world.staging))) == 4
    proc = plan_small(world, tmp_path, "--target", "prod")
    assert max_deletes_used(proc) == 2
    assert f"file://{world.prod}" in planner(tmp_path, "plan", str(world.small), "--target",
                                              "prod", "--max-deletes", "20").stdout


def test_planner_toml_wins_over_pyproject(world, cwd):
    (cwd / "pyproject.toml").write_text(PYPROJECT.format(prod=world.staging))
    assert max_deletes_used(plan_small(world, cwd, "--target", str(world.staging))) == 7
    assert max_deletes_used(plan_small(world, cwd, "--target", "prod")) == 3


def test_pyproject_without_tool_planner_is_ignored(world, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.black]\nline-length = 99\n')
    assert max_deletes_used(plan_small(world, tmp_path, "--target", str(world.staging))) is None


def test_config_flag_and_env_pick_another_file(world, cwd, tmp_path):
    other = tmp_path / "elsewhere" / "ci.toml"
    other.parent.mkdir()
    other.write_text(f'max-deletes = 6\n[targets.prod]\ntarget = "{world.staging}"\n')
    third = tmp_path / "third.toml"
    third.write_text("max-deletes = 5\n")
    staging = str(world.staging)

    def used(*pre: str, env: dict[str, str] | None = None) -> int | None:
        proc = planner(cwd, *pre, "plan", str(world.small), "--target", staging, "--format",
                       "json", env=env)
        return max_deletes_used(proc)

    assert used() == 7  # ./planner.toml
    assert used("--config", str(other)) == 6
    assert used("--config", "../elsewhere/ci.toml") == 6  # relative to the working directory
    assert used(env=clean_env(PLANNER_CONFIG=str(other))) == 6
    assert used("--config", str(third), env=clean_env(PLANNER_CONFIG=str(other))) == 5
    # the other file's named targets, not planner.toml's
    doc = ok_json(planner(cwd, "--config", str(other), "plan", str(world.public), "--target",
                          "prod", "--format", "json"))
    assert doc["target"] == f"file://{world.staging}"


# --- bad files: one line, exit 2, nothing written --------------------------------------------


@pytest.mark.parametrize(
    "files, pre, env, expected",
    [
        pytest.param({}, ["--config", "missing.toml"], {}, "Error: --config missing.toml: no such file",
                     id="config-flag-missing-file"),
        pytest.param({}, [], {"PLANNER_CONFIG": "missing.toml"},
                     "Error: --config missing.toml: no such file", id="config-env-missing-file"),
        pytest.param({"planner.toml": "max-deletes = \n"}, [], {}, "is not valid TOML",
                     id="bad-toml"),
        pytest.param({"ci.toml": "[targets.prod\n"}, ["--config", "ci.toml"], {},
                     "ci.toml is not valid TOML", id="bad-toml-via-config"),
        pytest.param({"planner.toml": '[targets.x]\nmax-deletes = 3\n'}, [], {},
                     "[targets.x] needs a target", id="target-table-without-target"),
        pytest.param({"planner.toml": 'targets = "prod"\n'}, [], {},
                     "[targets] must hold tables", id="targets-not-tables"),
        pytest.param({"planner.toml": "max-delets = 3\n"}, [], {},
                     "unknown key 'max-delets'; did you mean 'max-deletes'?", id="top-level-typo"),
        pytest.param({"planner.toml": "max_delets = 3\n"}, [], {},
                     "unknown key 'max-delets'; did you mean 'max-deletes'?",
                     id="top-level-typo-underscore"),
        pytest.param({"planner.toml": '[targets.prod]\ntarget = "out"\nmax-delets = 3\n'}, [], {},
                     "unknown key [targets.prod] 'max-delets'; did you mean 'max-deletes'?",
                     id="table-typo"),
        pytest.param({"planner.toml": 'excludes = ["*.map"]\n'}, [], {},
                     "unknown key 'excludes'; did you mean 'exclude'?", id="plural-of-a-flag"),
        pytest.param({"planner.toml": 'colour = "blue"\n'}, [], {}, "unknown key 'colour'",
                     id="top-level-no-close-match"),
        pytest.param({"planner.toml": '[targets.prod]\ntarget = "out"\nzzz = 1\n'}, [], {},
                     "unknown key [targets.prod] 'zzz'", id="table-no-close-match"),
        pytest.param({"pyproject.toml": "[tool.planner]\nmax-delets = 3\n"}, [], {},
                     "pyproject.toml [tool.planner]: unknown key 'max-delets'; did you mean "
                     "'max-deletes'?", id="pyproject-typo"),
    ],
)
def test_bad_config_is_one_line_exit_2_and_writes_nothing(world, tmp_path, files, pre, env,
                                                          expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    before = tree(tmp_path)
    target = tmp_path / "out"
    proc = planner(tmp_path, *pre, "deploy", str(world.public), "--target", str(target),
                   env=clean_env(**env))
    line = one_line_error(proc)
    assert proc.returncode == 2, proc.stderr
    assert expected in line
    if "did you mean" not in expected:
        assert "did you mean" not in line
    assert not target.exists()
    assert tree(tmp_path) == before


# --- keys of other commands, report, names vs folders ----------------------------------------


def test_keys_of_other_commands_are_accepted_and_ignored_by_plan(world, tmp_path):
    (tmp_path / "planner.toml").write_text(world.config(
        extra_top='month = "2024-01"\nwarn-over = 5.0',
        extra_prod="fail-over = 1000.0\nlock-timeout = 3",
    ))
    doc = ok_json(planner(tmp_path, "plan", str(world.public), "--target", "prod", "--format",
                          "json"))
    assert doc["target"] == f"file://{world.prod}"
    # ... and the command they belong to uses them
    rep = ok_json(planner(tmp_path, "report", "--target", "prod", "--format", "json"))
    assert rep["month"] == "2024-01"
    assert rep["tool"]["target"] == f"file://{world.prod}" and rep["tool"]["deploys"] == 0


def test_report_with_a_named_target_uses_its_target_and_options(world, tmp_path):
    (tmp_path / "planner.toml").write_text(
        world.config(extra_prod="free-paths-per-month = 123")
    )
    rep = ok_json(planner(tmp_path, "report", "--target", "prod", "--format", "json"))
    assert rep["tool"]["target"] == f"file://{world.prod}"
    assert rep["tool"]["deploys"] == 1
    assert rep["free_paths_per_month"] == 123
    rep = ok_json(planner(tmp_path, "report", "--target", "staging", "--format", "json"))
    assert rep["tool"]["target"] == f"file://{world.staging}"
    assert rep["free_paths_per_month"] == 1000


@pytest.mark.parametrize("command", ["plan", "deploy", "verify", "report", "unlock"])
def test_a_mistyped_target_name_is_refused_with_the_closest_one(world, tmp_path, command):
    (tmp_path / "planner.toml").write_text(world.config())
    site = [str(world.public)] if command in ("plan", "deploy") else []
    proc = planner(tmp_path, command, *site, "--target", "prd")
    line = one_line_error(proc)
    assert proc.returncode == 2
    assert line == (f"Error: 'prd' is not a target in {tmp_path / 'planner.toml'}; did you "
                    "mean 'prod'? A local folder is written ./prd")
    assert not (tmp_path / "prd").exists()
    if command == "plan":  # 2 means "changes" there: bad usage is 1
        proc = planner(tmp_path, "plan", *site, "--target", "prd", "--detailed-exitcode")
        assert proc.returncode == 1 and "did you mean 'prod'?" in proc.stderr


def test_a_folder_named_like_a_target_is_a_path_only_without_that_named_target(world, tmp_path):
    (tmp_path / "prod").mkdir()
    (tmp_path / "planner.toml").write_text(world.config())
    doc = ok_json(planner(tmp_path, "plan", str(world.public), "--target", "prod", "--format",
                          "json"))
    assert doc["target"] == f"file://{world.prod}"
    (tmp_path / "planner.toml").write_text(f'[targets.staging]\ntarget = "{world.staging}"\n')
    # Once the file has targets, a bare word names one: "prod" is none of them now.
    proc = planner(tmp_path, "plan", str(world.public), "--target", "prod")
    line = one_line_error(proc)
    assert proc.returncode == 2
    assert line == (f"Error: 'prod' is not a target in {tmp_path / 'planner.toml'} (targets: "
                    "staging). A local folder is written ./prod")
    doc = ok_json(planner(tmp_path, "plan", str(world.public), "--target", "./prod", "--format",
                          "json"))
    assert doc["target"] == f"file://{tmp_path / 'prod'}"
    assert {u["reason"] for u in doc["uploads"]} == {"new"}


# --- deploy with everything from the file ----------------------------------------------------


def test_deploy_with_site_and_target_from_the_file_only(tmp_path):
    write_site(tmp_path / "public", PUBLIC)
    (tmp_path / "planner.toml").write_text(
        'site = "public"\ntarget = "./out"\nexclude = ["*.map"]\n\n'
        '[targets.prod]\ntarget = "out-prod"\nsite = "public"\nexclude = ["*.psd"]\n'
    )
    proc = planner(tmp_path, "deploy")
    assert proc.returncode == 0, proc.stderr
    expected = {k: v.encode() for k, v in PUBLIC.items() if not k.endswith(".map")}
    assert {k: v for k, v in tree(tmp_path / "out").items() if not k.startswith(".planner/")} \
        == expected
    proc = planner(tmp_path, "plan", "--detailed-exitcode")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # a named target whose table names the site too
    proc = planner(tmp_path, "deploy", "--target", "prod")
    assert proc.returncode == 0, proc.stderr
    expected = {k: v.encode() for k, v in PUBLIC.items() if not k.endswith(".psd")}
    assert {k: v for k, v in tree(tmp_path / "out-prod").items()
            if not k.startswith(".planner/")} == expected


# --- S3 (moto server) ------------------------------------------------------------------------


def test_named_s3_target_with_distribution_list_on_moto(moto, site, tmp_path):
    cwd = Path(moto.cwd)
    public = write_site(tmp_path / "public", BASE)
    second = create_distribution(moto.cloudfront, site.bucket)
    (cwd / "planner.toml").write_text(
        'max-deletes = 0\n\n'
        f'[targets.prod]\ntarget = "{site.target()}"\n'
        f'distribution = ["{site.distribution_id}", "{second}"]\n'
        'cache-control = "max-age=600"\n'
    )
    proc = run(["deploy", str(public), "--target", "prod"], moto.env, str(cwd))
    assert proc.returncode == 0, proc.stderr
    head = moto.s3.head_object(Bucket=site.bucket, Key="docs/p1.html")
    assert head["CacheControl"] == "max-age=600"
    (public / "docs" / "p1.html").write_text("<p>new</p>\n")
    proc = run(["deploy", str(public), "--target", "prod", "--format", "json"], moto.env, str(cwd))
    doc = ok_json(proc)
    assert doc["invalidation"]["paths"] == ["/docs/p1.html"]
    for dist in (site.distribution_id, second):
        (inv,) = invalidations(moto.cloudfront, dist)
        assert inv_paths(inv) == ["/docs/p1.html"]
    # the top level's max-deletes 0 applies to the named target too
    (public / "docs" / "p2.html").unlink()
    proc = run(["deploy", str(public), "--target", "prod"], moto.env, str(cwd))
    assert proc.returncode == 1 and "more than --max-deletes 0" in one_line_error(proc)
