"""The package as it ships: ``python -m build`` makes an sdist and a wheel of a copy of this
tree, ``twine check`` accepts both, the wheel holds the packages ``planner`` (every subpackage)
and ``manifests`` with their ``py.typed`` and nothing else, the sdist holds what the tests and
docs need, and each of them installed into a fresh venv (its dependencies from the package
index, through pip's cache; the sdist built into a wheel by pip on the way, as a packager or a
platform without the wheel would) runs ``planner --version`` and plans the sample site.

End to end (network for the build's isolated environment and the dependencies, a venv, about
a minute with a warm pip cache): ``pytest tests/test_packaging.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import planner

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SITE = ROOT / "examples" / "sample-site"
VERSION = planner.__version__
DIST_NAME = "invalidation_planner"
PACKAGES = ("planner", "manifests")
# Not part of the source tree: local state of a checkout (venvs, caches, outputs).
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "__pycache__", "*.pyc", "*.egg-info", "build", "dist",
    ".pytest_cache", ".hypothesis", ".ruff_cache", ".mypy_cache", ".bench", "site-out",
)
BUILD_TIMEOUT = 300  # a cold pip cache downloads setuptools, boto3 and the rest


def _env() -> dict[str, str]:
    """This environment without this venv's marks, so a child python is the one named."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(args: list[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True,
        timeout=BUILD_TIMEOUT, check=False,
    )
    assert proc.returncode == 0, (
        f"{' '.join(map(str, args))}: exit {proc.returncode}\n"
        f"stdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-4000:]}"
    )
    return proc


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """An sdist and a wheel built by ``python -m build`` (isolated build environment, as a
    release builds them) from a copy of the source tree: nothing of this checkout's state (an
    egg-info, a build/ folder) leaks in, and the checkout is left as it was."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    out = tmp / "dist"
    _run([sys.executable, "-m", "build", "--outdir", out, src])
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    assert sdist.name == f"{DIST_NAME}-{VERSION}.tar.gz"
    assert wheel.name == f"{DIST_NAME}-{VERSION}-py3-none-any.whl"
    return Built(sdist, wheel)


def test_twine_check_accepts_the_sdist_and_the_wheel(built: Built) -> None:
    # --strict: warnings (e.g. a readme PyPI cannot render) fail too.
    proc = _run([sys.executable, "-m", "twine", "check", "--strict", built.sdist, built.wheel])
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def _source_files(package: str) -> set[str]:
    """The package's modules and ``py.typed``, as paths relative to the repository."""
    base = ROOT / package
    files = {p for p in base.rglob("*.py") if "__pycache__" not in p.parts}
    return {p.relative_to(ROOT).as_posix() for p in files} | {f"{package}/py.typed"}


def test_the_wheel_holds_every_package_and_nothing_else(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as zf:
        names = set(zf.namelist())
        dist_info = f"{DIST_NAME}-{VERSION}.dist-info"
        metadata = zf.read(f"{dist_info}/METADATA").decode()
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {*PACKAGES, dist_info}, sorted(tops)  # no tests/, examples/, docs/
    shipped = {n for n in names if not n.startswith(dist_info)}
    expected = set().union(*map(_source_files, PACKAGES))
    assert shipped == expected, (
        f"missing from the wheel: {sorted(expected - shipped)}; "
        f"not expected in it: {sorted(shipped - expected)}"
    )
    for sub in ("core", "plan", "backends", "report", "cli"):
        assert f"planner/{sub}/__init__.py" in names, sub
    assert f"{dist_info}/licenses/LICENSE" in names
    assert re.search(r"^planner = planner\.cli:main$", entry_points, re.M), entry_points
    assert f"\nVersion: {VERSION}\n" in metadata
    assert "\nLicense-Expression: Apache-2.0\n" in metadata
    assert "\nDescription-Content-Type: text/markdown\n" in metadata
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for dep in pyproject["project"]["dependencies"]:
        assert f"\nRequires-Dist: {dep}\n" in metadata, dep


def test_the_sdist_holds_the_tests_docs_and_examples(built: Built) -> None:
    """Decided: the sdist is the source a packager runs the tests from, so it carries tests/,
    docs/, examples/ and scripts/ (MANIFEST.in), but no venv, cache or compiled file."""
    prefix = f"{DIST_NAME}-{VERSION}/"
    with tarfile.open(built.sdist) as tf:
        names = {m.name.removeprefix(prefix) for m in tf.getmembers() if m.isfile()}
    for needed in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in",
                   "planner/py.typed", "manifests/py.typed",
                   "tests/conftest.py", "tests/test_ci_recipes.py", "tests/test_docs.py",
                   "docs/ci.md", "docs/commands.md", "scripts/command_reference.py",
                   "examples/ci/github-actions.yml", "examples/ci/gitlab-ci.yml",
                   "examples/sample-site/index.html"):
        assert needed in names, needed
    junk = [n for n in names if re.search(r"(^|/)(\.venv|\.git|__pycache__|\.pytest_cache|"
                                          r"\.hypothesis|\.bench|\.ci)/|\.pyc$", n)]
    assert not junk, junk


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_each_file_installs_into_a_fresh_venv_and_plans_the_sample_site(
    built: Built, tmp_path: Path, kind: str
) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    # Dependencies: the index. The sdist: pip builds its wheel first (in an isolated build
    # environment, from the sdist alone), so whatever the build needs must be in it.
    installed = _run([python, "-m", "pip", "install", "--progress-bar", "off",
                      getattr(built, kind)])
    built_here = re.search(r"Building wheels? for invalidation[-_]planner", installed.stdout,
                           re.I)
    assert bool(built_here) == (kind == "sdist"), installed.stdout  # not a wheel from elsewhere
    files = _run([python, "-m", "pip", "show", "--files", "invalidation-planner"])
    assert f"\nVersion: {VERSION}\n" in files.stdout, files.stdout
    assert "planner/cli/__init__.py" in files.stdout, files.stdout

    # Run from a folder that is not the checkout: what runs is the installed copy.
    work = tmp_path / "work"
    work.mkdir()
    where = _run([python, "-c", "import planner, manifests; "
                  "print(planner.__file__); print(manifests.__file__)"], cwd=work)
    for path in where.stdout.split():
        assert Path(path).is_relative_to(venv), where.stdout

    version = _run([bindir / "planner", "--version"], cwd=work)
    assert version.stdout.strip() == f"planner, version {VERSION}"

    target = tmp_path / "site-out"
    proc = _run([bindir / "planner", "plan", SAMPLE_SITE, "--target", target,
                 "--format", "json"], cwd=work)
    plan = json.loads(proc.stdout)
    site_files = {p.relative_to(SAMPLE_SITE).as_posix()
                  for p in SAMPLE_SITE.rglob("*") if p.is_file()}
    assert plan["summary"]["added"]["files"] == len(site_files)
    assert {u["key"] for u in plan["uploads"]} == site_files
    assert plan["deletes"] == []
    assert not target.exists(), "a plan wrote to its target"
