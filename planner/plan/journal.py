"""The pending record (journal): written before a deploy's first write, removed when it is
done; what the next run reads to converge after a crash. Pure but for nothing: a value and its
JSON form."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import xxhash

from manifests.errors import CorruptManifest
JOURNAL_NAME = "pending.json"
# The format version of a ledger record (planner.ledger). Kept here, not in the ledger, because
# the pending record carries the record's draft and checks its version: the plan's pure parts
# then load nothing of the ledger's store reads and writes. planner.ledger re-exports it.
RECORD_VERSION = 1


@dataclass(frozen=True)
class Journal:
    """The pending record: written before a deploy's first write, removed when it is done.

    ``touched`` are keys whose objects may no longer match the committed manifest. If the
    manifest named ``deploy_id`` was committed, what is left to do is the invalidation and the
    deletes; if not, the next plan re-uploads (or deletes) every touched key.
    """

    deploy_id: str
    base_deploy_id: str | None
    touched: tuple[str, ...]
    deletes: tuple[str, ...]
    paths: tuple[str, ...]
    distribution_ids: tuple[str, ...]
    caller_reference: str
    record: dict | None = None  # the ledger record's draft (planner.ledger)
    # (distribution, its paths) when the distributions serve the target under different URLs;
    # empty: ``paths`` on each of ``distribution_ids``.
    per_distribution: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Distributions whose batch CloudFront refused for good and that were given a valid one
    # instead (see :func:`planner.apply.finish`): their CallerReference tells the new batch.
    replaced: tuple[str, ...] = ()

    def reference_for(self, distribution_id: str, paths: tuple[str, ...]) -> str:
        """The CallerReference of the batch ``paths`` for ``distribution_id``: the deploy's,
        or for a replaced batch the deploy's with a digest of the new paths (the same on a
        retry; never the refused batch's)."""
        if distribution_id not in self.replaced:
            return self.caller_reference
        return f"{self.caller_reference}-{xxhash.xxh3_64_hexdigest(chr(10).join(paths).encode())[:10]}"

    def replace(self, distribution_id: str, paths: tuple[str, ...]) -> Journal:
        """This record with ``paths`` as the batch of ``distribution_id``."""
        per = self.submissions()
        return dataclasses.replace(
            self,
            per_distribution=tuple((d, paths if d == distribution_id else p) for d, p in per),
            replaced=tuple(sorted({*self.replaced, distribution_id})),
        )

    def submissions(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(distribution, paths) of each invalidation to make, in order."""
        if self.per_distribution:
            return tuple((d, p) for d, p in self.per_distribution if p)
        return tuple((d, self.paths) for d in self.distribution_ids) if self.paths else ()

    @property
    def path_count(self) -> int:
        """Paths over every distribution (what the account is billed for)."""
        return sum(len(p) for _, p in self.submissions())

    def dumps(self) -> bytes:
        doc = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        del doc["per_distribution"]
        if not self.replaced:
            del doc["replaced"]
        if self.per_distribution:
            # No "paths": a version of the tool that knows only one path list refuses this
            # record as malformed rather than finish it without the other distributions'.
            del doc["paths"]
            doc["per_distribution"] = [[d, list(p)] for d, p in self.per_distribution]
        return json.dumps(doc, ensure_ascii=False, indent=1).encode()

    @classmethod
    def loads(cls, data: bytes, where: str = JOURNAL_NAME, target: str = "TARGET") -> "Journal":
        """The record read from ``where``, of ``target`` (both named in the error when it is
        malformed)."""
        def strs(value: object, name: str) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TypeError(f"{name} is not a list of strings")
            return tuple(value)

        def text(value: object, name: str) -> str:
            if not isinstance(value, str) or not value:
                raise TypeError(f"{name} is not a string")
            return value

        try:
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise TypeError("not a JSON object")
            per = tuple(
                (text(d, "per_distribution"), strs(paths, "per_distribution"))
                for d, paths in doc.get("per_distribution") or ()
            )
            base = doc["base_deploy_id"]
            return cls(
                deploy_id=text(doc["deploy_id"], "deploy_id"),
                base_deploy_id=None if base is None else text(base, "base_deploy_id"),
                touched=strs(doc["touched"], "touched"),
                deletes=strs(doc["deletes"], "deletes"),
                paths=() if per else strs(doc["paths"], "paths"),
                distribution_ids=strs(doc["distribution_ids"], "distribution_ids"),
                caller_reference=text(doc["caller_reference"], "caller_reference"),
                record=_record_draft(doc.get("record")),
                per_distribution=per,
                replaced=strs(doc.get("replaced", []), "replaced"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptManifest(
                f"the pending record {where} is malformed ({type(exc).__name__}: {exc}); if no "
                f"deploy is running, remove it with `planner unlock --target {target} "
                f"--pending-record`, then run `planner verify --target {target} --repair BUILD`"
            ) from None


def _record_draft(doc: object) -> dict | None:
    """The ledger draft of a pending record; one this version cannot read is dropped (the
    deploy is still finished, only not recorded)."""
    if (
        isinstance(doc, dict)
        and doc.get("version") == RECORD_VERSION
        and (isinstance(doc.get("each"), dict) or isinstance(doc.get("per_distribution"), dict))
    ):
        return doc
    return None
