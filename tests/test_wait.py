"""``deploy --wait``: polling GetInvalidation until every invalidation of the deploy has
completed, with an injected clock (no test sleeps), on strict fakes of CloudFront's answers
(``InProgress`` then ``Completed``, AWS's spelling; moto's ``COMPLETED`` is accepted too), and
the command through CliRunner on the local backend. The real CLI against moto, and through a
proxy answering AWS's spelling, is in ``test_e2e_wait.py``."""

from __future__ import annotations

import functools
import importlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.apply import Result, Waiting, check_finished, deploy_site, wait_for_invalidations
from planner.backends import LocalBackend
from planner.backends.targets import LocalTarget
from planner.cli import cli
from planner.errors import AwsError, InvalidationNotFinished
from planner.lock import LOCK_NAME
from planner.plan.compute import Options
from planner.plan.journal import JOURNAL_NAME

SITE = {"index.html": "<h1>home</h1>\n", "css/site.css": "body{}\n", "about.html": "<p>a</p>\n"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def waiting(fake: FakeClock, timeout: float = 600.0) -> Waiting:
    return Waiting(timeout, sleep=fake.sleep, clock=fake.clock, for_completion=True)


class Scripted(LocalBackend):
    """A strict fake of GetInvalidation: each invalidation id answers its script in order
    (an AwsError instance is raised), then its last answer for ever; ids without a script
    answer ``InProgress`` for ever. Every call is logged."""

    scripts: dict[str, list[str | AwsError]]
    polls: list[str]

    def __init__(self, target: LocalTarget, scripts=None) -> None:
        super().__init__(target)
        self.scripts = dict(scripts or {})
        self.polls = []

    def invalidation_status(self, distribution_id: str, invalidation_id: str) -> str:
        self.polls.append(invalidation_id)
        script = self.scripts.get(invalidation_id, ["InProgress"])
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, AwsError):
            raise answer
        return answer


def scripted(tmp_path: Path, scripts=None) -> Scripted:
    return Scripted(LocalTarget(str(tmp_path / "target")), scripts)


# --- polling ---------------------------------------------------------------------------------


def test_polls_with_backoff_until_every_invalidation_has_completed(tmp_path):
    backend = scripted(tmp_path, {
        "I1": ["InProgress", "Completed"],
        "I2": ["InProgress"] * 4 + ["Completed"],
    })
    fake, said = FakeClock(), []
    got = wait_for_invalidations(backend, [("E1", "I1"), ("E2", "I2")], waiting(fake), said.append)
    assert got.completed and got.seconds == 55
    assert got.statuses == (("E1", "I1", "Completed"), ("E2", "I2", "Completed"))
    assert fake.sleeps == [5, 10, 20, 20]  # doubling from 5 s, at most 20 s
    assert backend.polls == ["I1", "I2", "I1", "I2", "I2", "I2", "I2"]  # a completed one: never again
    assert said == [
        "waiting for CloudFront: 0 of 2 invalidations completed (0 s)",
        "waiting for CloudFront: 1 of 2 invalidations completed (5 s)",
        "waiting for CloudFront: 1 of 2 invalidations completed (15 s)",
        "waiting for CloudFront: 1 of 2 invalidations completed (35 s)",
        "CloudFront completed 2 invalidations (55 s)",
    ]


def test_one_invalidation_is_counted_in_the_singular(tmp_path):
    backend = scripted(tmp_path, {"I1": ["InProgress", "Completed"]})
    fake, said = FakeClock(), []
    got = wait_for_invalidations(backend, [("E1", "I1")], waiting(fake), said.append)
    assert got.completed
    assert said == [
        "waiting for CloudFront: 0 of 1 invalidation completed (0 s)",
        "CloudFront completed 1 invalidation (5 s)",
    ]


@pytest.mark.parametrize("status", [
    "Completed",  # AWS
    "COMPLETED",  # moto
    "completed",  # any case
])
def test_completed_is_recognised_in_any_case(tmp_path, status):
    backend = scripted(tmp_path, {"I1": [status]})
    fake = FakeClock()
    got = wait_for_invalidations(backend, [("E1", "I1")], waiting(fake))
    assert got.completed and fake.sleeps == [] and got.statuses == (("E1", "I1", status),)


@pytest.mark.parametrize("status", [
    "InProgress",  # AWS
    "IN_PROGRESS",  # an unknown spelling is not taken for done
    "",  # nothing
    "Complete",  # close, but not the word
])
def test_anything_else_is_waited_for(tmp_path, status):
    backend = scripted(tmp_path, {"I1": [status]})
    fake = FakeClock()
    got = wait_for_invalidations(backend, [("E1", "I1")], waiting(fake, timeout=10))
    assert not got.completed


def test_throttling_is_asked_again_at_the_next_poll(tmp_path):
    throttled = AwsError("GetInvalidation I1 on E1: Throttling: Rate exceeded", code="Throttling")
    backend = scripted(tmp_path, {"I1": [throttled, throttled, "Completed"]})
    fake, said = FakeClock(), []
    got = wait_for_invalidations(backend, [("E1", "I1")], waiting(fake), said.append)
    assert got.completed and fake.sleeps == [5, 10]
    assert said[0] == "Throttling on GetInvalidation I1: asking again at the next poll"


def test_throttled_until_the_timeout_is_reported_with_no_status(tmp_path):
    throttled = AwsError("Throttling", code="Throttling")
    backend = scripted(tmp_path, {"I1": [throttled]})
    fake = FakeClock()
    got = wait_for_invalidations(backend, [("E1", "I1")], waiting(fake, timeout=12))
    assert not got.completed and got.statuses == (("E1", "I1", ""),)
    result = Result(wait=got)
    with pytest.raises(InvalidationNotFinished, match="E1:I1 unknown"):
        check_finished(result)


def test_another_error_while_waiting_says_the_deploy_is_complete(tmp_path):
    denied = AwsError("GetInvalidation I1 on E1: AccessDenied: not allowed", code="AccessDenied")
    backend = scripted(tmp_path, {"I1": [denied]})
    with pytest.raises(AwsError) as err:
        wait_for_invalidations(backend, [("E1", "I1")], waiting(FakeClock()))
    assert err.value.code == "AccessDenied"
    assert str(err.value).startswith("the deploy is complete (invalidations submitted: E1:I1), "
                                     "but waiting for them failed: GetInvalidation I1 on E1: "
                                     "AccessDenied")
    assert err.value.exit_code == 1


def test_the_timeout_bounds_the_wait_then_says_what_is_still_in_progress(tmp_path):
    backend = scripted(tmp_path, {"I1": ["InProgress", "Completed"]})  # I2: InProgress for ever
    fake, said = FakeClock(), []
    got = wait_for_invalidations(backend, [("E1", "I1"), ("E2", "I2")], waiting(fake, 30),
                                 said.append)
    assert not got.completed
    assert fake.sleeps == [5, 10, 15]  # the last sleep ends at the deadline
    assert got.seconds == 30 and sum(fake.sleeps) == 30
    with pytest.raises(InvalidationNotFinished) as err:
        check_finished(Result(wait=got))
    assert err.value.exit_code == 7
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        "the deploy is complete (site, manifest and ledger written; invalidations submitted: "
        "E1:I1, E2:I2), but CloudFront had not finished invalidating after 30 s "
        "(--wait-timeout): 1 of 2 completed; still E2:I2 InProgress"
    )


def test_a_zero_timeout_polls_once_and_never_sleeps(tmp_path):
    fake = FakeClock()
    got = wait_for_invalidations(scripted(tmp_path), [("E1", "I1")], waiting(fake, timeout=0))
    assert not got.completed and fake.sleeps == []


def test_nothing_submitted_is_nothing_to_wait_for(tmp_path):
    fake, said = FakeClock(), []
    got = wait_for_invalidations(scripted(tmp_path), [], waiting(fake), said.append)
    assert got.completed and got.statuses == () and fake.sleeps == [] and said == []
    check_finished(Result(wait=got))  # no error


def test_not_waiting_is_never_an_error():
    check_finished(Result())  # wait is None: --wait not given


def test_the_same_invalidation_twice_is_polled_once(tmp_path):
    backend = scripted(tmp_path, {"I1": ["Completed"]})
    got = wait_for_invalidations(backend, [("E1", "I1"), ("E1", "I1")], waiting(FakeClock()))
    assert got.statuses == (("E1", "I1", "Completed"),) and backend.polls == ["I1"]


def test_the_local_backend_completes_its_invalidations_at_once(tmp_path):
    backend = LocalBackend(LocalTarget(str(tmp_path / "t")))
    assert backend.invalidation_status("local", "LANY") == "Completed"


# --- the deploy --------------------------------------------------------------------------------


def write_build(root: Path, files: dict[str, str]) -> Path:
    for key, text in files.items():
        path = root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def deploy(build: Path, backend, w: Waiting):
    return deploy_site(str(build), backend, Options(), "test", workers=2, waiting=w)


def ledger_names(backend) -> list[str]:
    return backend.store.list("ledger/")


def test_deploy_waits_after_the_lock_is_released_and_reports_the_statuses(tmp_path):
    target = LocalTarget(str(tmp_path / "target"))
    deploy(write_build(tmp_path / "v1", SITE), LocalBackend(target), Waiting())

    class LockChecked(LocalBackend):
        def invalidation_status(self, distribution_id, invalidation_id):
            assert self.store.read(LOCK_NAME) == (None, None), "polled under the lock"
            assert self.store.read(JOURNAL_NAME) == (None, None), "polled before the end"
            return "Completed"

    v2 = write_build(tmp_path / "v2", v2_files())
    _, result = deploy(v2, LockChecked(target), waiting(FakeClock()))
    (inv_id,) = result.invalidations.values()
    assert result.wait is not None and result.wait.completed
    assert result.wait.statuses == (("local", inv_id, "Completed"),)


def test_deploy_keeps_polling_then_finishes(tmp_path):
    target = LocalTarget(str(tmp_path / "target"))
    deploy(write_build(tmp_path / "v1", SITE), LocalBackend(target), Waiting())

    class ThirdTimeDone(LocalBackend):
        polls = 0

        def invalidation_status(self, distribution_id, invalidation_id):
            type(self).polls += 1
            return "Completed" if self.polls >= 3 else "InProgress"

    backend = ThirdTimeDone(target)
    v2 = write_build(tmp_path / "v2", v2_files())
    fake = FakeClock()
    _, result = deploy(v2, backend, waiting(fake))
    assert result.wait is not None and result.wait.completed
    assert ThirdTimeDone.polls == 3 and fake.sleeps == [5, 10]
    check_finished(result)


def test_deploy_past_the_timeout_leaves_nothing_pending(tmp_path):
    """Exit 7's promise: everything but CloudFront's own work is done, so a rerun has
    nothing to deploy and submits nothing."""
    target = LocalTarget(str(tmp_path / "target"))
    deploy(write_build(tmp_path / "v1", SITE), LocalBackend(target), Waiting())
    backend = scripted(tmp_path)  # InProgress for ever
    v2 = write_build(tmp_path / "v2", v2_files())
    fake = FakeClock()
    plan, result = deploy(v2, backend, waiting(fake, timeout=30))
    with pytest.raises(InvalidationNotFinished, match="the deploy is complete"):
        check_finished(result)
    assert backend.store.read(JOURNAL_NAME) == (None, None)  # no pending record
    assert backend.store.read(LOCK_NAME) == (None, None)
    assert any(plan.deploy_id in name for name in ledger_names(backend))  # its ledger record
    submitted = len(backend.invalidation_log())
    again, rerun = deploy(v2, backend, Waiting())
    assert not again.has_work and again.resume is None
    assert rerun.submitted == [] and len(backend.invalidation_log()) == submitted


def test_deploy_waits_for_an_interrupted_deploys_invalidation_too(tmp_path):
    """A run that finishes an interrupted deploy waits for that deploy's invalidation as well
    as its own, though both are on one distribution."""
    target = LocalTarget(str(tmp_path / "target"))
    deploy(write_build(tmp_path / "v1", SITE), LocalBackend(target), Waiting())

    class Down(LocalBackend):
        def invalidate(self, distribution_id, paths, reference):
            raise AwsError("CreateInvalidation: ServiceUnavailable", code="ServiceUnavailable")

    v2 = write_build(tmp_path / "v2", v2_files())
    with pytest.raises(AwsError):
        deploy(v2, Down(target), Waiting())
    assert LocalBackend(target).store.read(JOURNAL_NAME)[0] is not None  # pending

    backend = scripted(tmp_path)
    v3 = write_build(tmp_path / "v3", {**v2_files(), "about.html": "<p>b</p>\n"})
    fake = FakeClock()
    plan, result = deploy(v3, backend, waiting(fake, timeout=0))
    assert result.resumed is not None
    assert len(result.submitted) == 2 and len({i for _, i in result.submitted}) == 2
    assert result.wait is not None
    assert [i for _, i, _ in result.wait.statuses] == [i for _, i in result.submitted]
    assert len(result.invalidations) == 1  # one per distribution: not what --wait follows


def v2_files() -> dict[str, str]:
    return {**SITE, "index.html": "<h1>home 2</h1>\n"}


def test_deploy_with_nothing_to_do_waits_for_nothing(tmp_path):
    target = LocalTarget(str(tmp_path / "target"))
    v1 = write_build(tmp_path / "v1", SITE)
    deploy(v1, LocalBackend(target), Waiting())
    backend = scripted(tmp_path)
    fake = FakeClock()
    plan, result = deploy(v1, backend, waiting(fake))
    assert not plan.has_work
    assert result.wait is not None and result.wait.completed and result.wait.statuses == ()
    assert backend.polls == []


# --- the command (CliRunner, local backend) -------------------------------------------------


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    """An empty working folder (no planner.toml of the caller's), no PLANNER_* variables."""
    for name in list(os.environ):
        if name.startswith("PLANNER_"):
            monkeypatch.delenv(name)
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def deployed_twice(tmp_path: Path, *args: str, env=None):
    """v1 deployed, then v2 (one page changed) with ``args``: the second run's result."""
    target = str(tmp_path / "target")
    first = invoke("deploy", str(write_build(tmp_path / "v1", SITE)), "--target", target, "-q")
    assert first.exit_code == 0, first.output
    v2 = write_build(tmp_path / "v2", v2_files())
    return invoke("deploy", str(v2), "--target", target, *args, env=env)


def result_of(run) -> dict:
    assert run.exit_code == 0, (run.stdout, run.stderr)
    return json.loads(run.stdout)["result"]


def test_deploy_wait_on_the_local_backend_completes_at_once(cwd, tmp_path):
    doc = result_of(deployed_twice(tmp_path, "--wait", "--format", "json"))
    (inv,) = doc["invalidations"]
    assert doc["wait"] == {
        "completed": True,
        "seconds": 0.0,
        "invalidations": [{"distribution_id": "local", "id": inv["id"], "status": "Completed",
                           "completed": True}],
    }


def test_without_wait_the_result_says_so(cwd, tmp_path):
    assert result_of(deployed_twice(tmp_path, "--format", "json"))["wait"] is None


def test_wait_for_people_says_the_invalidation_completed(cwd, tmp_path):
    run = deployed_twice(tmp_path, "--wait")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.rstrip().endswith("CloudFront completed the invalidation in 0 s.")
    assert "CloudFront completed 1 invalidation (0 s)" in run.stderr


@pytest.mark.parametrize("config", [
    "wait = true\n",  # the top level
    '[targets.prod]\ntarget = "../target"\nwait = true\n',  # a named target
])
def test_wait_from_the_configuration_file(cwd, tmp_path, config):
    (cwd / "planner.toml").write_text(config)
    target = "prod" if "targets" in config else str(tmp_path / "target")
    first = invoke("deploy", str(write_build(tmp_path / "v1", SITE)), "--target", target, "-q",
                   "--format", "json")
    assert result_of(first)["wait"] == {"completed": True, "seconds": 0.0, "invalidations": []}
    run = invoke("deploy", str(write_build(tmp_path / "v2", v2_files())), "--target", target,
                 "--format", "json")
    assert result_of(run)["wait"]["completed"] is True


def test_wait_false_in_the_file_is_not_waiting(cwd, tmp_path):
    (cwd / "planner.toml").write_text("wait = false\n")
    assert result_of(deployed_twice(tmp_path, "--format", "json"))["wait"] is None


@pytest.mark.parametrize("name", ["PLANNER_WAIT", "PLANNER_DEPLOY_WAIT"])
def test_wait_from_the_environment(cwd, tmp_path, name):
    doc = result_of(deployed_twice(tmp_path, "--format", "json", env={name: "1"}))
    assert doc["wait"]["completed"] is True


def test_timeout_exits_7_with_one_line_and_the_json_result(cwd, tmp_path, monkeypatch):
    monkeypatch.setattr(LocalBackend, "invalidation_status", lambda self, d, i: "InProgress")
    run = deployed_twice(tmp_path, "--wait", "--wait-timeout", "0", "--format", "json")
    assert run.exit_code == 7
    doc = json.loads(run.stdout)["result"]
    (inv,) = doc["invalidations"]
    assert doc["wait"]["completed"] is False
    assert doc["wait"]["invalidations"] == [{"distribution_id": "local", "id": inv["id"],
                                             "status": "InProgress", "completed": False}]
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("Error: the deploy is complete (site, manifest and ledger written; "
                           f"invalidations submitted: local:{inv['id']}), but CloudFront had not "
                           "finished invalidating after 0 s (--wait-timeout)")
    # nothing pending: a rerun has nothing to do
    again = invoke("deploy", str(tmp_path / "v2"), "--target", str(tmp_path / "target"),
                   "--format", "json")
    assert again.exit_code == 0
    doc = json.loads(again.stdout)
    assert doc["resume"] is None and doc["result"]["invalidations"] == []
    assert doc["uploads"] == [] and doc["deletes"] == []


def test_quiet_shows_no_waiting_lines(cwd, tmp_path, monkeypatch):
    answers = iter(["InProgress", "Completed"])
    monkeypatch.setattr(LocalBackend, "invalidation_status", lambda self, d, i: next(answers))
    # The command's Waiting with the fake clock injected (its sleep is bound when the class is
    # defined: patching time.sleep would leave the poll really sleeping 5 s).
    fake = FakeClock()
    command = importlib.import_module("planner.cli.deploy")  # the module: the package's
    # attribute of that name is the command
    monkeypatch.setattr(command, "Waiting",
                        functools.partial(Waiting, sleep=fake.sleep, clock=fake.clock))
    run = deployed_twice(tmp_path, "--wait", "-q")
    assert run.exit_code == 0 and run.stderr == ""
    assert fake.sleeps == [5.0]  # it did poll once, in silence


@pytest.mark.parametrize("args, env, fragment", [
    # A negative timeout: click's range.
    (["--wait", "--wait-timeout", "-1"], None, "'--wait-timeout': -1.0 is not in the range x>=0"),
    # Not a number.
    (["--wait", "--wait-timeout", "soon"], None, "'--wait-timeout': 'soon' is not a valid float"),
    # --wait takes no value.
    (["--wait=yes"], None, "Option '--wait' does not take a value"),
    # A variable that is not a boolean: the shared name, and the command's own.
    ([], {"PLANNER_WAIT": "maybe"},
     "'--wait' (from PLANNER_WAIT): 'maybe' is not a valid boolean"),
    ([], {"PLANNER_DEPLOY_WAIT": "maybe"},
     "'--wait' (from PLANNER_DEPLOY_WAIT): 'maybe' is not a valid boolean"),
])
def test_bad_wait_input_is_a_usage_error(cwd, tmp_path, args, env, fragment):
    run = deployed_twice(tmp_path, *args, env=env)
    assert run.exit_code == 2, (run.stdout, run.stderr)
    assert fragment in run.stderr
    assert not (tmp_path / "target" / ".planner" / JOURNAL_NAME).exists()


@pytest.mark.parametrize("config", [
    'wait = "maybe"\n',  # a word that is not a boolean
    "wait = 2\n",  # a number other than 0 or 1
    '[targets.prod]\ntarget = "../target"\nwait = "maybe"\n',  # in a named target's table
    '[targets.prod]\ntarget = "../target"\nwait = 1\n',  # a number there
])
def test_a_wait_in_the_file_that_is_not_a_boolean_is_refused(cwd, tmp_path, config):
    v1 = str(write_build(tmp_path / "v1", SITE))
    (cwd / "planner.toml").write_text(config)
    target = "prod" if "targets" in config else str(tmp_path / "target")
    run = invoke("deploy", v1, "--target", target)
    assert run.exit_code == 2, (run.stdout, run.stderr)
    assert "Invalid value for '--wait'" in run.stderr and "is not a valid boolean" in run.stderr
    assert not (tmp_path / "target").exists()  # nothing written


def test_plan_has_no_wait(cwd, tmp_path):
    run = invoke("plan", str(write_build(tmp_path / "v1", SITE)), "--target",
                 str(tmp_path / "t"), "--wait")
    assert run.exit_code == 2 and "No such option '--wait'" in run.stderr


def test_any_flag_in_the_file_that_is_a_number_is_refused_not_a_crash(cwd, tmp_path):
    """click reads a number as a boolean by calling .strip() on it: the file's value is
    checked first (the same check as for ``wait``, for every flag)."""
    (cwd / "planner.toml").write_text("no-delete = 1\n")
    run = invoke("plan", str(write_build(tmp_path / "v1", SITE)), "--target", str(tmp_path / "t"))
    assert run.exit_code == 2, (run.stdout, run.stderr)
    assert "Invalid value for '--no-delete': 1 in the configuration file is not a valid " \
        "boolean" in run.stderr
