"""Errors of the planner package. Only the CLI turns them into click errors and exit codes."""


class PlannerError(Exception):
    """Base class for every error the planner raises on purpose."""

    exit_code = 1


class BadTarget(PlannerError):
    """The --target value cannot be used."""


class BadSite(PlannerError):
    """The build folder cannot be deployed (empty, reserved names...)."""


class TooManyDeletes(PlannerError):
    """The deploy would delete more objects than --max-deletes allows."""


class AwsError(PlannerError):
    """An AWS call failed; the message keeps AWS's error code, also kept in ``code``."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class InvalidationError(PlannerError):
    """The invalidation could not be planned or submitted."""


class OverCostCap(PlannerError):
    """This deploy's AWS charge would be above ``--max-cost``: refused, nothing written."""

    exit_code = 6


class BadPathList(PlannerError):
    """A list of URLs or keys (``planner paths`` input) cannot be read or parsed."""


class TargetLocked(PlannerError):
    """Another deploy holds the target's lock."""

    exit_code = 4


class LockLost(PlannerError):
    """This run's lock was taken over or removed while it worked; it stopped before writing."""

    exit_code = 4


class InvalidationNotFinished(PlannerError):
    """``deploy --wait``: the deploy is complete (site, manifest, ledger, invalidations
    submitted) but CloudFront had not finished invalidating within ``--wait-timeout``."""

    exit_code = 7  # 6 is reserved
