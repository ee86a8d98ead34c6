"""The local backend's folder as a web server reads it: a path that changes between a file and
a folder from one build to the next, deploys interrupted at any point of such a change
(then finished by a rerun), links never followed, and file modes that follow the umask.

Every deploy is the real CLI in a subprocess (``python -m planner``), but for the runs made to
stop at the N-th write of the backend (``FailingBackend`` of ``test_apply_faults``); the runs
killed with SIGKILL at the N-th change to the target folder do so through a ``sitecustomize``
that counts those changes in the CLI's own process.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_helpers import one_line_error, run
from test_apply_faults import Counter, Crash, FailingBackend
from test_apply_faults import deploy as deploy_in_process

from manifests import Manifest
from planner.backends import LocalBackend
from planner.backends.targets import LocalTarget

pytestmark = pytest.mark.e2e

# (build 1, build 2): a path that is a file in one and a folder in the other.
FILE_TO_FOLDER = (
    {"index.html": "home", "docs": "docs, a file", "docs.css": "p{}"},
    {"index.html": "home", "docs/index.html": "docs home", "docs/guide/a.html": "a",
     "docs.css": "p{}"},
)
NESTED = (  # a file two folders down becomes a folder with a folder in it
    {"index.html": "home", "a/b": "b, a file", "a/x.css": "x{}"},
    {"index.html": "home", "a/b/c/d.html": "d", "a/x.css": "x{}"},
)
CHANGES = [
    pytest.param(*FILE_TO_FOLDER, id="file-to-folder"),
    pytest.param(*reversed(FILE_TO_FOLDER), id="folder-to-file"),
    pytest.param(*NESTED, id="nested-file-to-folder"),
    pytest.param(*reversed(NESTED), id="nested-folder-to-file"),
]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}


def write_build(site: Path, files: dict[str, str]) -> Path:
    """Make ``site`` hold exactly ``files``."""
    if site.exists():
        for path in sorted(site.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
    for key, text in files.items():
        path = site.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return site


def deploy(site: Path, target: Path, *extra: str, **kw) -> subprocess.CompletedProcess:
    args = ["deploy", str(site), "--target", str(target), "--quiet", *extra]
    return run(args, kw.get("env") or env())


def deployed(site: Path, target: Path, *extra: str) -> None:
    proc = deploy(site, target, *extra)
    assert proc.returncode == 0, proc.stderr


def site_of(target: Path) -> dict[str, str]:
    """What the target serves: every file outside .planner/ (temporary files included)."""
    out = {}
    for here, dirs, names in os.walk(target):
        dirs[:] = [d for d in dirs if d != ".planner"]
        for name in names:
            path = Path(here, name)
            out[path.relative_to(target).as_posix()] = path.read_text(encoding="utf-8")
    return out


def empty_folders(target: Path) -> list[str]:
    return [
        Path(here).relative_to(target).as_posix()
        for here, dirs, names in os.walk(target)
        if not dirs and not names and Path(here) != target and ".planner" not in Path(here).parts
    ]


def assert_converged(target: Path, files: dict[str, str]) -> None:
    """The target is the build, the manifest lists it, no deploy is pending, verify is clean."""
    assert site_of(target) == files
    assert empty_folders(target) == []
    state = target / ".planner"
    assert set(Manifest.loads((state / "manifest.json.gz").read_bytes()).entries) == set(files)
    assert not (state / "pending.json").exists()
    proc = run(["verify", "--target", str(target)], env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no drift" in proc.stdout


# --- a path changes between file and folder -------------------------------------------------


@pytest.mark.parametrize(("first", "second"), CHANGES)
def test_a_path_changes_between_file_and_folder_and_back(tmp_path, first, second):
    site, target = tmp_path / "site", tmp_path / "out"
    deployed(write_build(site, first), target)
    assert_converged(target, first)
    deployed(write_build(site, second), target)
    assert_converged(target, second)
    deployed(write_build(site, first), target)  # and back again
    assert_converged(target, first)


@pytest.mark.parametrize(("first", "second"), CHANGES[:2])  # (nested ones: killed below)
@pytest.mark.parametrize("rerun_with", ["second", "first"])
def test_a_change_stopped_at_any_write_is_finished_by_a_rerun(tmp_path, first, second, rerun_with):
    """The deploy stops at its N-th write (pending record, upload, commit, invalidation,
    delete...), for every N; the CLI run again with the same build ("second"), or with the
    earlier one (the change reverted), converges."""
    steps = Counter(None)
    site, target = tmp_path / "count-site", tmp_path / "count-out"
    deployed(write_build(site, first), target)
    deploy_in_process(str(write_build(site, second)), str(target),
                      FailingBackend(LocalBackend(LocalTarget(str(target))), steps))
    assert steps.n >= 7  # pending record, 2+ uploads, commit, invalidation, deletes, record...
    for n in range(steps.n):
        site, target = tmp_path / f"site{n}", tmp_path / f"out{n}"
        deploy_in_process(str(write_build(site, first)), str(target))  # (quicker than the CLI)
        with pytest.raises(Crash):
            deploy_in_process(str(write_build(site, second)), str(target),
                              FailingBackend(LocalBackend(LocalTarget(str(target))), Counter(n)))
        wanted = second if rerun_with == "second" else first
        deployed(write_build(site, wanted), target)
        assert_converged(target, wanted)


# Loaded by every `python -m planner` whose PYTHONPATH starts with its folder: the process
# kills itself (SIGKILL: no cleanup runs) at the KILL_AT-th change to the target folder
# outside its .planner/ (a folder made or removed, a file created, renamed or removed).
KILLER = '''
import os, signal

target = os.environ["KILL_TARGET"] + os.sep
state = target + ".planner" + os.sep
at = int(os.environ["KILL_AT"])
seen = 0

def counted(call):
    def change(path, *args, **kwargs):
        global seen
        path_text = os.fsdecode(path)
        if path_text.startswith(target) and not (path_text + os.sep).startswith(state):
            if seen == at:
                os.kill(os.getpid(), signal.SIGKILL)
            seen += 1
        return call(path, *args, **kwargs)
    return change

for name in ("mkdir", "rmdir", "unlink", "remove", "replace", "rename", "open"):
    setattr(os, name, counted(getattr(os, name)))
'''


@pytest.mark.parametrize(("first", "second"), CHANGES)
def test_a_change_killed_at_any_point_is_finished_by_a_rerun(tmp_path, first, second):
    """kill -9 at every change the deploy makes to the target folder, one run per point, until
    a run is not killed (it made every change); each killed run is finished by a rerun."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILLER, encoding="utf-8")
    killed = 0
    for n in range(100):
        site, target = tmp_path / f"site{n}", tmp_path / f"out{n}"
        deploy_in_process(str(write_build(site, first)), str(target))  # (quicker than the CLI)
        write_build(site, second)
        killing = dict(env(), PYTHONPATH=os.pathsep.join([str(hook), *sys.path]),
                       KILL_TARGET=str(target), KILL_AT=str(n))
        proc = deploy(site, target, "--workers", "1", env=killing)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        killed += 1
        deployed(site, target)
        assert_converged(target, second)
    else:
        pytest.fail("the deploy was still killed after 100 changes")
    assert killed >= 4  # the hook did stop the deploy, at each of its changes to the folder
    assert_converged(target, second)


# --- what the deploy never removes or goes through ------------------------------------------


def test_a_file_kept_by_no_delete_is_never_replaced_by_a_folder(tmp_path):
    site, target = tmp_path / "site", tmp_path / "out"
    deployed(write_build(site, FILE_TO_FOLDER[0]), target)
    proc = deploy(write_build(site, FILE_TO_FOLDER[1]), target, "--no-delete", "--workers", "1")
    assert one_line_error(proc) == (
        f"Error: cannot write docs/guide/a.html in file://{target}: docs there is a file this "
        "deploy does not delete (kept by --no-delete, or not written by planner), and a path "
        "cannot be a file and a folder at once; remove it, or deploy without --no-delete"
    )
    assert (target / "docs").read_text() == "docs, a file"
    deployed(site, target)  # without --no-delete: the change is made
    assert_converged(target, FILE_TO_FOLDER[1])


def test_a_folder_holding_a_file_the_tool_never_wrote_is_never_removed(tmp_path):
    site, target = tmp_path / "site", tmp_path / "out"
    deployed(write_build(site, FILE_TO_FOLDER[1]), target)
    (target / "docs" / "guide" / "notes.txt").write_text("mine")
    error = one_line_error(deploy(write_build(site, FILE_TO_FOLDER[0]), target))
    assert error == (
        f"Error: cannot write docs in file://{target}: the folder docs/ there holds "
        "docs/guide/notes.txt, which this deploy does not delete (kept by --no-delete, or not "
        "written by planner), and a path cannot be a folder and a file at once; remove it, or "
        "deploy without --no-delete"
    )
    assert (target / "docs" / "guide" / "notes.txt").read_text() == "mine"
    assert (target / "docs" / "index.html").read_text() == "docs home"  # nothing removed
    (target / "docs" / "guide" / "notes.txt").unlink()
    deployed(site, target)  # the rerun finishes the change
    assert_converged(target, FILE_TO_FOLDER[0])


def test_a_folder_holding_another_target_is_never_removed(tmp_path):
    site, target = tmp_path / "site", tmp_path / "out"
    deployed(write_build(site, FILE_TO_FOLDER[1]), target)
    (target / "docs" / "guide" / ".planner").mkdir()
    before = site_of(target)
    # Refused while planning (it would delete docs/guide/a.html there), nothing written...
    error = one_line_error(deploy(write_build(site, FILE_TO_FOLDER[0]), target))
    assert error == (f"Error: file://{target} holds another target at docs/guide/ (marked by "
                     "docs/guide/.planner/), and this deploy would delete docs/guide/a.html "
                     "there; a target may not contain another one: deploy the two to places "
                     "apart")
    assert site_of(target) == before
    assert (target / "docs" / "guide" / ".planner").is_dir()
    # ...and the backend itself never removes such a folder to make room for a file, even
    # when the deploy under way deletes every file in it.
    from planner.errors import BadTarget
    from planner.plan.journal import JOURNAL_NAME, Journal

    backend = LocalBackend(LocalTarget(str(target)))
    gone = ("docs/guide/a.html", "docs/index.html")
    backend.store.write(JOURNAL_NAME, Journal("d", None, gone, gone, (), (), "r").dumps())
    with pytest.raises(BadTarget, match=r"the folder docs/ there holds another target "
                       r"\(docs/guide/\.planner/\), which a deploy never removes"):
        backend.put_bytes("docs", b"docs, a file", "text/plain", "")
    assert site_of(target) == before


def test_a_link_in_a_folders_place_is_replaced_never_followed(tmp_path):
    """``docs`` was deployed as a file and someone made it a link to a folder outside the
    target: the folder the new build wants replaces the link; what it pointed to is kept."""
    site, target, outside = tmp_path / "site", tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    (outside / "index.html").write_text("not the site's")
    deployed(write_build(site, FILE_TO_FOLDER[0]), target)
    (target / "docs").unlink()
    (target / "docs").symlink_to(outside, target_is_directory=True)
    deployed(write_build(site, FILE_TO_FOLDER[1]), target)
    assert_converged(target, FILE_TO_FOLDER[1])
    assert not (target / "docs").is_symlink()
    assert site_of(outside) == {"index.html": "not the site's"}


def test_a_delete_never_goes_through_a_link(tmp_path):
    """``docs/`` was deployed as a folder and someone made it a link to a folder outside the
    target holding files of the same names: deleting docs/* removes none of them."""
    site, target, outside = tmp_path / "site", tmp_path / "out", tmp_path / "outside"
    deployed(write_build(site, FILE_TO_FOLDER[1]), target)
    write_build(outside, {"index.html": "kept", "guide/a.html": "kept too"})
    for path in sorted((target / "docs").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (target / "docs").rmdir()
    (target / "docs").symlink_to(outside, target_is_directory=True)
    deployed(write_build(site, {"index.html": "home", "docs.css": "p{}"}), target)
    assert site_of(outside) == {"index.html": "kept", "guide/a.html": "kept too"}
    assert (target / "docs").is_symlink()  # not the deploy's to remove (no key names it)


def test_keys_outside_the_folder_or_in_its_state_are_refused(tmp_path):
    (tmp_path / "secret").write_text("x")
    backend = LocalBackend(LocalTarget(str(tmp_path / "out")))
    deployed(write_build(tmp_path / "site", {"index.html": "home"}), tmp_path / "out")
    for key in ("../secret", ".planner/manifest.json.gz"):
        with pytest.raises(Exception, match="escapes|state folder"):
            backend.delete([key])
        with pytest.raises(Exception, match="escapes|state folder"):
            backend.put_bytes(key, b"x", "text/plain", "")
    assert (tmp_path / "secret").read_text() == "x"
    assert_converged(tmp_path / "out", {"index.html": "home"})


# --- file modes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "file_mode", "folder_mode"), [
    (0o022, 0o644, 0o755),  # the usual umask: readable by a web server run as another user
    (0o027, 0o640, 0o750),  # a stricter one is honoured too, as open() and mkdir() honour it
])
def test_files_and_folders_get_the_modes_the_umask_gives(tmp_path, umask, file_mode, folder_mode):
    site, target = tmp_path / "site", tmp_path / "out"

    def deploy_with_umask() -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "planner", "deploy", str(site), "--target", str(target)],
            env=env(), capture_output=True, text=True, timeout=60, umask=umask, check=False,
        )
        assert proc.returncode == 0, proc.stderr

    write_build(site, {"index.html": "home", "docs/guide/a.html": "a"})
    deploy_with_umask()
    write_build(site, {"index.html": "home, edited", "docs/guide/a.html": "a",  # one replaced
                       "docs/index.html": "docs home", "docs.css": "p{}"})  # and new ones
    deploy_with_umask()
    modes = {"": stat.S_IMODE(target.stat().st_mode)}
    for here, dirs, names in os.walk(target):
        dirs[:] = [d for d in dirs if d != ".planner"]
        for name in [*dirs, *names]:
            path = Path(here, name)
            modes[path.relative_to(target).as_posix()] = stat.S_IMODE(path.stat().st_mode)
    assert modes == {
        "": folder_mode,
        "index.html": file_mode,
        "docs.css": file_mode,
        "docs": folder_mode,
        "docs/index.html": file_mode,
        "docs/guide": folder_mode,
        "docs/guide/a.html": file_mode,
    }
