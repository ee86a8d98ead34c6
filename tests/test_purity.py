"""Pure modules import neither boto3 nor click, and the local backend never loads boto3."""

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-site"


@pytest.mark.parametrize(
    "module",
    [
        "manifests.diff",
        "manifests.etags",
        "manifests.model",
        "manifests.scan",
        "planner.core.minimizer",
        "planner.core.cost",
        "planner.core.urls",
        "planner.core.headers",
        "planner.plan.compute",
        "planner.core.pacing",
        "planner.pathlist",
        "planner.ledger",
        "planner.report.build",
        "planner.plan.saved",
        "planner.verify",
        "planner.lock",
        "planner.core.origins",
        "planner.core.adopt",
    ],
)
def test_pure_module_imports_no_aws_or_cli(module):
    code = (
        f"import sys, {module}; "
        "bad = [m for m in ('boto3', 'botocore', 'click', 'tabulate') if m in sys.modules]; "
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
