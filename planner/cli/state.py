"""`planner unlock` and `planner move-state`: the target's lock, pending record and state place by hand."""

from __future__ import annotations

from typing import Any

import click

from planner.cli.common import (
    clients_of,
    make_target_backend,
    named_target,
    state_option,
    with_aws_options,
)
from planner.cli.common import errors as _errors
from planner.lock import unlock as remove_lock
from planner.movestate import move_state as move
from planner.plan.build import check_surroundings
from planner.plan.journal import JOURNAL_NAME


@click.command()
@click.option("--target", "-t", required=True, metavar="TARGET",
              help="s3://bucket[/prefix], file:///abs/dir or a folder path.")
@click.option("--pending-record", is_flag=True,
              help="Also remove the pending record an interrupted deploy left (one that cannot "
                   "be read); then run `planner verify --repair`.")
@state_option()
@with_aws_options
@named_target
@_errors
def unlock(target: str, state: str | None, pending_record: bool, **aws: Any) -> None:
    """Remove the target's deploy lock by hand (when the deploy that held it is gone).

    \b
    Example:
      planner unlock --target s3://my-bucket
    """

    backend = make_target_backend(target, state, clients_of(aws))
    held = remove_lock(backend.store)
    if held is None:
        click.echo(f"{backend.target.uri} was not locked")
    else:
        click.echo(f"removed the lock of {held.describe()} from {backend.target.uri}")
    if pending_record:
        if backend.store.read(JOURNAL_NAME)[0] is None:
            click.echo(f"{backend.target.uri} has no pending record")
        else:
            backend.store.remove(JOURNAL_NAME)
            click.echo(f"removed the pending record of {backend.target.uri}: run `planner "
                       f"verify --target {backend.target.uri} --repair BUILD` to put right "
                       "what the interrupted deploy left")


@click.command("move-state")
@click.option("--target", "-t", required=True, metavar="TARGET",
              help="s3://bucket[/prefix], file:///abs/dir or a folder path.")
@click.option("--state", required=True, metavar="PLACE",
              help="Where the state goes: s3://bucket/prefix (a folder for a local target).")
@click.option("--from", "source", default=None, metavar="PLACE",
              help="Where the state is now  [default: <target>/.planner/]")
@with_aws_options
@named_target
@_errors
def move_state(target: str, state: str, source: str | None, **aws: Any) -> None:
    """Move the target's manifest, ledger and other state to a place of its own.

    Afterwards, give the same --state to every command (or `state = ...` in the target's
    table of planner.toml).

    \b
    Example:
      planner move-state --target s3://www-example-com --state s3://example-ops/planner/www
    """

    clients = clients_of(aws)
    old = make_target_backend(target, source, clients)
    new = make_target_backend(target, state, clients)
    check_surroundings(new)  # the new place: apart from every site, empty or this one's
    moved = move(old.store, new.store, new.target.uri, fence=new.fence)
    click.echo(f"moved {len(moved)} state objects of {new.target.uri} from {old.store.location} "
               f"to {new.store.location}; from now on, pass --state {state}")
