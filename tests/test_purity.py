"""The pure core and the plan's computation load nothing of AWS, the CLI or the project's I/O (whole
packages, in a fresh interpreter); the helpers below them, pure or doing I/O only through what
they are handed, load neither boto3 nor click; the local backend never loads boto3."""

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-site"


# The pure core and the plan's computation: decisions on values, no I/O of their own.
PURE = ["planner.core", "planner.plan.compute", "planner.plan.journal"]
# Third-party libraries of the edges, and the project's own modules that do I/O (or load
# what does): none of them may be loaded by the pure parts.
FORBIDDEN = (
    "boto3", "botocore", "click", "tabulate",
    "planner.backends", "planner.lock", "planner.apply", "planner.plan.build",
    "planner.verify", "planner.cli", "planner.report.sources", "planner.movestate",
)
LOADS_ALL = (
    "import importlib, pkgutil, sys\n"
    "import planner.core\n"
    "mods = ['planner.core.' + m.name for m in pkgutil.iter_modules(planner.core.__path__)]\n"
    "for m in mods + {rest!r}: importlib.import_module(m)\n"
    "print(len(mods))\n"
    "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('planner', 'manifests'))))\n"
)


def test_the_pure_packages_load_nothing_of_aws_the_cli_or_the_projects_io():
    code = LOADS_ALL.format(rest=PURE[1:])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, loaded = out.stdout.split("\n")[:2]
    assert int(count) >= 8  # every module of planner.core was imported
    check = "import sys\n" + code.replace("print(len(mods))\n", "") + (
        f"print('FORBIDDEN:' + ','.join(m for m in sys.modules if any(m == f or m.startswith(f + '.') "
        f"for f in {FORBIDDEN!r})))\n"
    )
    bad = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    found = bad.stdout.rsplit("FORBIDDEN:", 1)[1].strip()
    assert found == "", found
    # Of the project, only the core, the plan's value and journal, the errors and manifests
    # (whose package __init__ imports its scanner and stores: loaded, never called here). Not
    # the ledger: it reads and writes the store it is handed.
    own = {m for m in loaded.split(",") if m}
    assert all(m.startswith(("planner.core", "planner.plan.compute", "planner.plan.journal",
                             "planner.errors", "manifests")) or m in ("planner", "planner.plan")
               for m in own), own
    assert "planner.ledger" not in own


# Helpers of the edges, none of them in the pure set above: values and their encodings
# (pure), and modules that do I/O only through what they are handed or are told to read (a
# file name, stdin, a store): none of them talks to AWS or parses a command line.
PURE_HELPERS = [
    "manifests.diff",
    "manifests.model",
    "planner.report.build",
    "planner.report.render",
]
IO_THROUGH_WHAT_THEY_ARE_HANDED = [
    "manifests.etags",  # reads the build files it is asked about
    "planner.pathlist",  # reads the list file or stdin it is given
    "planner.ledger",  # reads and writes records in the store it is handed
    "planner.plan.saved",  # reads the plan file it is given
]


@pytest.mark.parametrize("module", PURE_HELPERS + IO_THROUGH_WHAT_THEY_ARE_HANDED)
def test_helper_imports_no_aws_or_cli(module):
    code = (
        f"import sys, {module}; "
        "bad = [m for m in ('boto3', 'botocore', 'click') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_plan_on_the_local_backend_does_not_load_boto3(tmp_path):
    code = (
        "import sys\n"
        "from planner.cli import cli\n"
        f"try: cli(['plan', {str(SAMPLE)!r}, '--target', {str(tmp_path / 'o')!r}, '--format', 'json'])\n"
        "except SystemExit as e: assert e.code in (0, None), e.code\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "False False"
