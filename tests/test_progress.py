"""Upload progress, --quiet and -v on the local backend."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from e2e_helpers import run
from planner.progress import UploadProgress

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-site"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_ci_logs_get_a_line_per_tenth_of_the_files():
    out, clock = io.StringIO(), Clock()
    with UploadProgress(100, 100_000, stream=out, tty=False, clock=clock) as bar:
        for _ in range(100):
            bar(1000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "uploaded 10/100 files (9.8 KB of 97.7 KB)"
    assert lines[-1] == "uploaded 100/100 files (97.7 KB of 97.7 KB)"


def test_ci_logs_get_a_line_every_ten_seconds_of_a_slow_upload():
    out, clock = io.StringIO(), Clock()
    with UploadProgress(1000, 1000, stream=out, tty=False, clock=clock) as bar:
        bar(1)  # 1/1000: under a tenth, under 10 s: no line
        clock.t = 10.5
        bar(1)  # 10 s since the start: a line
        bar(1)
    assert out.getvalue().splitlines() == ["uploaded 2/1000 files (2 B of 1000 B)"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_clicks_progress_bar():
    out = Terminal()
    with UploadProgress(3, 300, stream=out) as bar:
        for _ in range(3):
            bar(100)
    text = out.getvalue()
    assert "uploading 3 files" in text and "100%" in text
    assert "uploaded 3/3" not in text  # no CI lines on a terminal


def _deployed(tmp_path: Path) -> tuple[Path, Path]:
    site, target = tmp_path / "public", tmp_path / "out"
    shutil.copytree(SAMPLE, site)
    return site, target


def test_quiet_prints_only_the_summary_line(tmp_path):
    site, target = _deployed(tmp_path)
    proc = run(["deploy", str(site), "--target", str(target), "--quiet"], {**_env()})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip().splitlines() == [
        "Uploaded 12 (3.9 KB), deleted 0, skipped 0, no invalidation (100% changed)."
    ]
    (site / "index.html").write_text("<h1>new</h1>\n")
    plan = run(["plan", str(site), "--target", str(target), "-q", "--detailed-exitcode"], _env())
    assert (plan.returncode, plan.stdout, plan.stderr) == (2, "", "")


def test_verbose_logs_each_step_and_the_progress(tmp_path):
    site, target = _deployed(tmp_path)
    run(["deploy", str(site), "--target", str(target), "-q"], _env())
    (site / "index.html").write_text("<h1>new</h1>\n")
    proc = run(["deploy", str(site), "--target", str(target), "-v"], _env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "debug: write the pending record pending.json (1 keys)" in lines
    assert any(x.startswith("debug: upload index.html (changed, 13 bytes, text/html") for x in lines)
    assert any(x.startswith("debug: CreateInvalidation on local: 2 paths") for x in lines)
    assert "uploaded 1/1 files (13 B of 13 B)" in lines


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLANNER_"))}
