"""Upload progress, --quiet and -v on the local backend."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from e2e_helpers import run

from planner.cli.progress import UploadProgress

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
    assert out.getvalue().splitlines() == ["uploaded 2/1,000 files (2 B of 1000 B)"]


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


@pytest.mark.e2e
def test_quiet_silences_stderr_and_still_prints_the_plan_and_summary_on_stdout(tmp_path):
    """-q silences only the lines for people on stderr (hashing, uploads, log): stdout holds
    what was asked for, the plan (as a table or markdown) and deploy's summary line, exactly
    as without -q."""
    site, target = _deployed(tmp_path)
    proc = run(["deploy", str(site), "--target", str(target), "--quiet"], {**_env()})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("Plan: ") and "Uploads (12, 3.9 KB)" in lines, proc.stdout
    assert lines[-1] == "Uploaded 12 (3.9 KB), deleted 0, skipped 0, no invalidation (100% changed)."
    (site / "index.html").write_text("<h1>new</h1>\n")
    shown = {}
    for fmt in ("table", "markdown"):
        loud = run(["plan", str(site), "--target", str(target), "--format", fmt], _env())
        quiet = run(["plan", str(site), "--target", str(target), "-q", "--format", fmt,
                     "--detailed-exitcode"], _env())
        assert loud.stderr and quiet.stderr == "", (fmt, loud.stderr, quiet.stderr)
        assert quiet.returncode == 2 and quiet.stdout == loud.stdout, (fmt, quiet.stdout)
        assert "index.html" in quiet.stdout
        shown[fmt] = quiet.stdout
    assert shown["table"].startswith("Plan: ")
    assert shown["markdown"].startswith("## Plan: ")  # `plan -q --format markdown > plan.md`
    dry = run(["deploy", str(site), "--target", str(target), "-q", "--dry-run"], _env())
    assert (dry.returncode, dry.stderr) == (0, "") and dry.stdout == shown["table"]


@pytest.mark.e2e
def test_verbose_logs_each_step_and_the_progress(tmp_path):
    site, target = _deployed(tmp_path)
    run(["deploy", str(site), "--target", str(target), "-q"], _env())
    (site / "index.html").write_text("<h1>new</h1>\n")
    proc = run(["deploy", str(site), "--target", str(target), "-v"], _env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "debug: write the pending record pending.json (1 key)" in lines
    assert any(x.startswith("debug: upload index.html (changed, 13 B, text/html") for x in lines)
    assert any(x.startswith("debug: CreateInvalidation on local: 2 paths") for x in lines)
    assert "uploaded 1/1 file (13 B of 13 B)" in lines


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLANNER_"))}


# --- hashing progress ----------------------------------------------------------------------

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from manifests.scan import scan, scan_meanwhile  # noqa: E402
from planner.cli.progress import HashProgress  # noqa: E402


def _tree(root: Path, n: int) -> int:
    """``n`` files of 0 to 3,000 bytes in 7 folders; their total size."""
    import random

    rng = random.Random(n)
    total = 0
    for i in range(n):
        path = root / f"d{i % 7}" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randrange(0, 3000))
        path.write_bytes(data)
        total += len(data)
    return total


def _check_calls(calls: list, files: int, nbytes: int) -> None:
    """Counts never go down, the total never changes, the last call has the totals."""
    assert calls, "progress was never called"
    assert all(total == files for _, _, total in calls)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(calls, calls[1:])), calls
    assert all(f <= files for f, _, _ in calls)
    assert calls[-1] == (files, nbytes, files)


@pytest.mark.parametrize("workers", [1, 3])
def test_the_in_process_scan_reports_hashing_progress_up_to_the_totals(tmp_path, workers):
    nbytes = _tree(tmp_path, 300)  # under PROCESS_MIN_FILES: threads (or this thread)
    calls: list = []
    entries = scan(str(tmp_path), lambda k: ("t", "c", ""), workers=workers,
                   progress=lambda *a: calls.append(a))
    assert len(entries) == 300
    _check_calls(calls, 300, nbytes)
    assert len(calls) <= 300 // 32 + 3  # per batch of results at most, never per file
    assert calls == sorted(set(calls))  # each report says something new


def test_no_files_no_progress(tmp_path):
    calls: list = []
    assert scan(str(tmp_path), lambda k: ("t", "c", ""), progress=lambda *a: calls.append(a)) == {}
    assert calls == []


def test_forked_helpers_report_hashing_progress_up_to_the_totals(tmp_path):
    # In a fresh interpreter, single-threaded, so that the helpers are forked (as in
    # test_scan.py), with PROCESS_MIN_FILES as shipped and a `meanwhile`, as `planner plan`.
    nbytes = _tree(tmp_path, 2500)
    code = f"""
import json, os
scan_mod = __import__("manifests.scan", fromlist=["scan"])
assert scan_mod.PROCESS_MIN_FILES <= 2500
forks = []
real_fork = os.fork
def counting_fork():
    pid = real_fork()
    if pid:
        forks.append(pid)
    return pid
os.fork = counting_fork
calls, meanwhile = [], []
entries = scan_mod.scan_meanwhile({str(tmp_path)!r}, lambda k: ("t", "c", ""), workers=3,
                                  meanwhile=lambda: meanwhile.append(len(calls)),
                                  progress=lambda *a: calls.append(a))
print(json.dumps({{"forks": len(forks), "entries": len(entries), "calls": calls,
                  "meanwhile": meanwhile}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    assert doc["forks"] >= 1  # the helper path really ran
    assert doc["entries"] == 2500
    # Reports start as the walk ends, before `meanwhile` runs (how many the helpers have sent
    # by then depends on timing).
    assert len(doc["meanwhile"]) == 1 and doc["meanwhile"][0] >= 1
    _check_calls([tuple(c) for c in doc["calls"]], 2500, nbytes)
    assert len(doc["calls"]) <= 2500 // 32 + 3


def test_an_error_in_the_progress_callback_comes_after_hashing(tmp_path):
    _tree(tmp_path, 100)

    def broken(*_):
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        scan(str(tmp_path), lambda k: ("t", "c", ""), workers=3, progress=broken)


def test_without_progress_the_scan_is_the_same(tmp_path):
    _tree(tmp_path, 100)
    headers = lambda k: ("t", "c", "")  # noqa: E731
    assert scan_meanwhile(str(tmp_path), headers, progress=lambda *a: None) == scan(
        str(tmp_path), headers
    )


def test_hashing_in_ci_logs_gets_a_line_per_tenth_of_the_files():
    out, clock = io.StringIO(), Clock()
    with HashProgress(stream=out, tty=False, clock=clock) as bar:
        for done in range(0, 20_001, 200):
            bar(done, done * 25_600, 20_000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "hashed 2,000/20,000 files (48.8 MB)"
    assert lines[-1] == "hashed 20,000/20,000 files (488.3 MB)"


def test_hashing_in_ci_logs_gets_a_line_every_ten_seconds_of_a_slow_scan():
    out, clock = io.StringIO(), Clock()
    with HashProgress(stream=out, tty=False, clock=clock) as bar:
        bar(1, 10, 1000)  # under a tenth, under 10 s: no line
        clock.t = 10.5
        bar(2, 20, 1000)  # 10 s since the start: a line
        bar(3, 30, 1000)
    assert out.getvalue().splitlines() == ["hashed 2/1,000 files (20 B)"]


def test_a_second_scan_starts_a_new_count():
    out = io.StringIO()
    bar = HashProgress(stream=out, tty=False, clock=Clock())
    bar(10, 100, 10)
    bar(5, 50, 20)  # deploy plans again: a new scan, counted from its first tenth
    bar(20, 200, 20)
    assert out.getvalue().splitlines() == [
        "hashed 10/10 files (100 B)", "hashed 5/20 files (50 B)", "hashed 20/20 files (200 B)"
    ]


def test_hashing_on_a_terminal_gets_clicks_progress_bar():
    out = Terminal()
    with HashProgress(stream=out) as bar:
        for done in (0, 1000, 2000, 3000):
            bar(done, done * 100, 3000)
        text = out.getvalue()  # the bar is finished at the total, before the exit
    assert "hashing 3,000 files" in text and "100%" in text
    assert text.endswith("\n")
    assert "hashed" not in text  # no CI lines on a terminal


def test_an_unfinished_bar_ends_its_line_on_exit():
    out = Terminal()
    with pytest.raises(RuntimeError):
        with HashProgress(stream=out) as bar:
            bar(10, 100, 3000)
            raise RuntimeError("scan failed")
    assert out.getvalue().endswith("\n")


@pytest.mark.e2e
def test_plan_shows_hashing_lines_on_stderr_but_not_when_quiet_or_json(tmp_path):
    site, target = _deployed(tmp_path)
    proc = run(["plan", str(site), "--target", str(target)], _env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["hashed 12/12 files (3.9 KB)"]
    assert "hashed" not in proc.stdout
    for quiet in (["-q"], ["--format", "json"], ["--quiet", "--format", "json"]):
        proc = run(["plan", str(site), "--target", str(target), *quiet], _env())
        assert (proc.returncode, proc.stderr) == (0, ""), quiet


@pytest.mark.e2e
def test_deploy_shows_hashing_lines_before_the_uploads(tmp_path):
    site, target = _deployed(tmp_path)
    proc = run(["deploy", str(site), "--target", str(target)], _env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "hashed 12/12 files (3.9 KB)"
    assert lines.index("hashed 12/12 files (3.9 KB)") < lines.index(
        "uploaded 12/12 files (3.9 KB of 3.9 KB)"
    )
    dry = run(["deploy", str(site), "--target", str(target), "--dry-run"], _env())
    assert dry.stderr.splitlines() == ["hashed 12/12 files (3.9 KB)"]
    quiet = run(["deploy", str(site), "--target", str(target), "--format", "json"], _env())
    assert (quiet.returncode, quiet.stderr) == (0, "")


@pytest.mark.e2e
def test_plan_of_a_large_site_shows_a_line_per_tenth(tmp_path):
    # 2,500 files: the CLI in its own process forks hashing helpers.
    site = tmp_path / "public"
    nbytes = _tree(site, 2500)
    proc = run(["plan", str(site), "--target", str(tmp_path / "out")], _env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert 2 <= len(lines) <= 11, lines
    assert all(x.startswith("hashed ") and "/2,500 files (" in x for x in lines), lines
    from planner.plan.render import human_bytes

    assert lines[-1] == f"hashed 2,500/2,500 files ({human_bytes(nbytes)})"


@pytest.mark.e2e
@pytest.mark.parametrize("command", [
    ["plan"],
    ["deploy", "--dry-run"],
    ["deploy"],
])
def test_quiet_json_prints_the_json_on_stdout_and_nothing_on_stderr(tmp_path, command):
    """-q silences people's lines (plan, progress, logs); --format json is for machines and
    is always printed."""
    import json

    site, target = _deployed(tmp_path)
    proc = run([*command, str(site), "--target", str(target), "-q", "--format", "json"], _env())
    assert (proc.returncode, proc.stderr) == (0, "")
    doc = json.loads(proc.stdout)
    assert doc["target"] == f"file://{target}" and len(doc["uploads"]) == 12
    assert ("result" in doc) == (command == ["deploy"])
