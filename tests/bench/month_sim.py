"""The month simulator behind ``tests/bench/bench_month.py`` (issue 16): generate months of
deploys, run the real planning code on each under a pacing policy with the clock and the
month's usage fed in, score the month's bill, and compute the hindsight optimum.

Pieces, each usable on its own (``tests/test_month_sim.py`` tests them):

- :func:`generate`: seeded months of deploys of one of three sites (:data:`SITES`). A deploy
  is its time, the site's keys before it, and the keys it modifies, deletes and adds.
- :func:`run_policy`: every deploy of a month planned by ``compute_plan`` under one policy
  ("none", "even", "price", or "/*", which is not planned: one path, every cached URL but the
  changed ones a needless miss), the paths used so far this month passed as ``paths_used``.
- :func:`frontier`: a deploy's options, (paths, needless misses) pairs, from the minimizer
  at a grid of prices per path (free paths none), plus the exact paths and "/*".
- :func:`hindsight`: the cheapest month choosing one option per deploy, knowing them all
  (a dynamic programme over the paths used so far).
- :func:`bill`: the month's bill, ``price x max(0, paths - free) + miss_cost x misses``.

Only the planning is the tool's; the rest (sites, frontiers, the programme) is the bench's.
"""

from __future__ import annotations

import calendar
import datetime as dt
import inspect
import random
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from manifests import Entry, Manifest
from planner.core import pacing
from planner.core.cost import FREE_PATHS_PER_MONTH, MAX_PATHS_IN_PROGRESS, PRICE_PER_PATH, CostModel
from planner.core.headers import headers_for
from planner.core.minimizer import Problem, minimize
from planner.core.urls import urls_of
from planner.plan.compute import Options, TargetState, compute_plan

MISS_COST = PRICE_PER_PATH / 1000  # the cost model's default: a path is worth 1,000 misses
POLICIES = ("none", "even", "/*", "price")
HISTORY_DAYS = 31  # the price policy is handed the target's deploys of the last 31 days
UTC = dt.timezone.utc


# --- the month's bill ---------------------------------------------------------------------------


def bill(paths: int, misses: int, free: int = FREE_PATHS_PER_MONTH, price: float = PRICE_PER_PATH,
         miss_cost: float = MISS_COST) -> float:
    """The month's bill: paid paths at ``price`` plus every needless miss at ``miss_cost``."""
    return price * max(0, paths - free) + miss_cost * misses


# --- months of deploys --------------------------------------------------------------------------


@dataclass(frozen=True)
class Deploy:
    when: dt.datetime  # UTC
    before: frozenset[str]  # the site's keys before the deploy
    changed: tuple[str, ...]  # keys whose content changes (invalidated)
    deleted: tuple[str, ...] = ()  # keys removed (invalidated)
    added: tuple[str, ...] = ()  # new keys (not invalidated: never cached under their name)
    kind: str = ""  # what happened: "typo", "layout", "tag rename", "new post", ...

    @property
    def after(self) -> frozenset[str]:
        return (self.before - frozenset(self.deleted)) | frozenset(self.added)


@dataclass(frozen=True)
class Month:
    site: str
    month: str  # YYYY-MM
    seed: int
    deploys: tuple[Deploy, ...]
    # Paths the account's other distributions submit this month: they count against the
    # same free paths. Spread evenly over the month (another site deploying every day), or,
    # with ``other_upfront``, all of them before the first deploy.
    other_paths: int = 0
    other_upfront: bool = False

    def others_by(self, when: dt.datetime) -> int:
        """The other distributions' paths submitted by ``when``."""
        if self.other_upfront or not self.other_paths:
            return self.other_paths
        year, mon = (int(x) for x in self.month.split("-"))
        start = dt.datetime(year, mon, 1, tzinfo=when.tzinfo)
        days = calendar.monthrange(year, mon)[1]
        return round(self.other_paths * min(1.0, (when - start) / dt.timedelta(days=days)))

    def others_daily(self, when: dt.datetime) -> list[int]:
        """The other distributions' paths on each day of the month up to ``when``."""
        start = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        ends = [min(when, start + dt.timedelta(days=i + 1)) for i in range(when.day)]
        totals = [0, *(self.others_by(e) for e in ends)]
        return [b - a for a, b in zip(totals, totals[1:])]


WORDS = (
    "api auth backup billing build cache cli cluster config deploy docker domain edge events "
    "export filter gateway hooks import index install keys limits logging metrics migrate "
    "monitor network nodes oauth plugins policy proxy queue quotas regions release replicas "
    "roles routing rules scaling schema search secrets setup sharding sso storage streams "
    "tokens tracing triggers upgrade users vault volumes webhooks workers zones"
).split()


class _Site:
    """A site's keys as they change, and the deploys that change them (seeded)."""

    def __init__(self, name: str, seed: int):
        self.rng = random.Random(f"{name}:{seed}")  # a str seed is hashed stably (sha512)
        self.keys: set[str] = set()
        self._frozen: frozenset[str] | None = None
        self._slugs: set[str] = set()
        self.deploys: list[Deploy] = []

    def slug(self, words: int = 2) -> str:
        rng = self.rng
        while True:
            s = "-".join(rng.choice(WORDS) for _ in range(words))
            if s not in self._slugs:
                self._slugs.add(s)
                return s
            words += rng.random() < 0.3  # a crowded vocabulary: longer names

    def deploy(self, when: dt.datetime, kind: str, changed: Iterable[str] = (),
               deleted: Iterable[str] = (), added: Iterable[str] = ()) -> None:
        deleted_t = tuple(sorted(set(deleted)))
        added_t = tuple(sorted(set(added)))
        changed_t = tuple(sorted(set(changed) - set(deleted_t) - set(added_t)))
        if self._frozen is None:
            self._frozen = frozenset(self.keys)
        before = self._frozen
        assert before.issuperset(changed_t) and before.issuperset(deleted_t), kind
        assert before.isdisjoint(added_t), kind
        self.deploys.append(Deploy(when, before, changed_t, deleted_t, added_t, kind))
        if deleted_t or added_t:
            self.keys.difference_update(deleted_t)
            self.keys.update(added_t)
            self._frozen = None


def _days(year: int, month: int) -> int:
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return (nxt - dt.date(year, month, 1)).days


def _at(rng: random.Random, year: int, month: int, day: int, hour: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, rng.randrange(60), rng.randrange(60), tzinfo=UTC)


def _page(path: str) -> str:
    return f"{path}/index.html"


class _Docs(_Site):
    """A busy documentation site: ~2,000 pages in three versions (copies of one tree of eight
    sections, the older ones with fewer pages), tag pages over the latest version, a search
    index and a sitemap. Four deploys a day: fixes to a few pages (in the latest version,
    often backported to the older ones), new pages and deletions (the section's navigation
    changes on each of its pages), three tag renames a month (every page of the tag, the tag
    pages) and two layout changes a month (the stylesheet and every page)."""

    SECTIONS = ("getting-started", "guides", "reference", "api", "tutorials", "operations",
                "security", "integrations")
    VERSIONS = ("2.0", "2.1", "3.0")  # the last is the latest
    KEEP = {"2.0": 0.75, "2.1": 0.9, "3.0": 1.0}  # share of the latest's pages a version has

    def __init__(self, seed: int, scale: float = 1.0):
        super().__init__("docs", seed)
        rng = self.rng
        self.groups = {s: [self.slug(1) for _ in range(rng.randint(2, 5))] for s in self.SECTIONS}
        self.has: dict[str, list[str]] = {v: [] for v in self.VERSIONS}  # version -> pages
        self.tags: dict[str, list[str]] = {}  # tag -> pages of the latest version carrying it
        self.tags_of: dict[str, list[str]] = {}
        self.keys.update(["index.html", "404.html", "css/site.css", "js/app.js",
                          "js/search.js", "search/index.json", "sitemap.xml", "favicon.ico",
                          "img/logo.svg", "tags/index.html"])
        for v in self.VERSIONS:
            self.keys.add(_page(f"docs/{v}"))
            self.keys.update(_page(f"docs/{v}/{s}") for s in self.SECTIONS)
        for section in self.SECTIONS:
            for _ in range(max(3, int(rng.randint(60, 130) * scale))):
                rel = f"{section}/{rng.choice(self.groups[section])}/{self.slug()}"
                diagram = rng.random() < 0.15
                for v in self.VERSIONS:
                    if rng.random() < self.KEEP[v]:
                        self.keys.update(self._page_keys(v, rel, diagram))
                        self.has[v].append(rel)
        for _ in range(max(5, int(60 * scale))):
            self.tags[self.slug(1)] = []
        names = sorted(self.tags)
        for rel in self.has[self.VERSIONS[-1]]:
            self.tags_of[rel] = rng.sample(names, rng.randint(1, 3))
            for t in self.tags_of[rel]:
                self.tags[t].append(rel)
        self.keys.update(_page(f"tags/{t}") for t in names)

    def _page_keys(self, version: str, rel: str, diagram: bool = False) -> list[str]:
        key = _page(f"docs/{version}/{rel}")
        return [key, key.replace("index.html", "diagram.png")] if diagram else [key]

    def _key(self, version: str, rel: str) -> str:
        return _page(f"docs/{version}/{rel}")

    def _section_nav(self, version: str, section: str) -> list[str]:
        """The pages whose navigation lists the section's pages: the section's own."""
        return [_page(f"docs/{version}/{section}"),
                *(self._key(version, r) for r in self.has[version] if r.startswith(section + "/"))]

    def month(self, year: int, month: int) -> None:
        rng = self.rng
        n = 4 * _days(year, month)
        special = rng.sample(range(n), 5)
        layouts, renames = set(special[:2]), set(special[2:])
        latest = self.VERSIONS[-1]
        always = ("search/index.json", "sitemap.xml")
        for i in range(n):
            when = _at(rng, year, month, i // 4 + 1, (9, 12, 15, 18)[i % 4])
            r = rng.random()
            if i in layouts:
                every = sorted(k for k in self.keys if k.endswith(".html"))
                self.deploy(when, "layout", ["css/site.css", *every, *always])
            elif i in renames:
                self._rename_tag(when)
            elif r < 0.08:  # a new page in the latest version
                section = rng.choice(self.SECTIONS)
                rel = f"{section}/{rng.choice(self.groups[section])}/{self.slug()}"
                nav = self._section_nav(latest, section)
                self.has[latest].append(rel)
                tags = rng.sample(sorted(self.tags), rng.randint(1, 2))
                self.tags_of[rel] = tags
                for t in tags:
                    self.tags[t].append(rel)
                self.deploy(when, "new page", [*nav, *always, *(_page(f"tags/{t}") for t in tags)],
                            added=self._page_keys(latest, rel, rng.random() < 0.15))
            elif r < 0.13:  # a page deleted, from one version or from all
                rel = rng.choice(self.has[latest])
                versions = [v for v in self.VERSIONS if rel in self.has[v]]
                if rng.random() < 0.6:
                    versions = versions[-1:]
                changed: list[str] = []
                gone: list[str] = []
                for v in versions:
                    self.has[v].remove(rel)
                    key = self._key(v, rel)
                    gone += [k for k in (key, key.replace("index.html", "diagram.png"))
                             if k in self.keys]
                    changed += self._section_nav(v, rel.split("/")[0])
                if latest in versions:
                    for t in self.tags_of.pop(rel, ()):
                        self.tags[t].remove(rel)
                        changed.append(_page(f"tags/{t}"))
                self.deploy(when, "delete", [*changed, *always], deleted=gone)
            else:  # fixes to a few pages; some backported to the older versions
                changed = []
                for _ in range(rng.randint(1, 6)):
                    rel = rng.choice(self.has[latest])
                    changed.append(self._key(latest, rel))
                    for v in self.VERSIONS[:-1]:
                        if rel in self.has[v] and rng.random() < 0.4:
                            changed.append(self._key(v, rel))
                self.deploy(when, "fix", [*changed, *always])

    def _rename_tag(self, when: dt.datetime) -> None:
        rng = self.rng
        old = rng.choice(sorted(t for t, ps in self.tags.items() if ps))
        new = self.slug(1)
        pages = self.tags.pop(old)
        self.tags[new] = pages
        for rel in pages:
            self.tags_of[rel] = [new if t == old else t for t in self.tags_of[rel]]
        latest = self.VERSIONS[-1]
        self.deploy(when, "tag rename", [*(self._key(latest, r) for r in pages), "tags/index.html",
                                         "sitemap.xml", "search/index.json"],
                    deleted=[_page(f"tags/{old}")], added=[_page(f"tags/{new}")])


class _Release(_Site):
    """A product site with release spikes: ~1,200 pages (product, docs, blog, changelog),
    two small deploys a day, and three storm days of five deploys, each changing hundreds
    of pages across the site (and adding release notes)."""

    AREAS = (("product", 60), ("docs", 700), ("blog", 250), ("changelog", 120),
             ("solutions", 70))

    def __init__(self, seed: int, scale: float = 1.0):
        super().__init__("release", seed)
        rng = self.rng
        self.pages: list[str] = []
        self.release = 40
        self.keys.update(["index.html", "404.html", "pricing/index.html", "css/main.css",
                          "js/main.js", "sitemap.xml", "feed.xml", "img/hero.webp"])
        for area, n in self.AREAS:
            self.keys.add(_page(area))
            groups = [self.slug(1) for _ in range(rng.randint(3, 8))]
            for _ in range(max(3, int(n * scale))):
                if area == "changelog":
                    key = _page(f"changelog/v{self.release // 10}.{self.release % 10}")
                    self.release += 1
                else:
                    key = _page(f"{area}/{rng.choice(groups)}/{self.slug()}")
                self.keys.add(key)
                self.pages.append(key)

    def month(self, year: int, month: int) -> None:
        rng = self.rng
        days = _days(year, month)
        storms = set(rng.sample(range(2, days + 1), 3))
        for day in range(1, days + 1):
            if day in storms:
                for hour in (10, 12, 14, 16, 18):
                    n = rng.randint(100, 500)
                    pages = rng.sample(self.pages, min(n, len(self.pages)))
                    notes = _page(f"changelog/v{self.release // 10}.{self.release % 10}")
                    self.release += 1
                    self.pages.append(notes)
                    self.deploy(_at(rng, year, month, day, hour), "storm",
                                [*pages, "changelog/index.html", "index.html", "sitemap.xml",
                                 "feed.xml"], added=[notes])
            else:
                for hour in (11, 17):
                    pages = rng.sample(self.pages, rng.randint(1, 5))
                    self.deploy(_at(rng, year, month, day, hour), "small",
                                [*pages, "sitemap.xml"])


class _Blog(_Site):
    """A blog, one new post a day: the post (and its cover image) added; the home page and
    every page of its pagination (posts shift by one), the tag pages of the post's tags (and
    their pagination and feeds), the previous post (its "next" link), a few older posts of
    the same tags (their "related posts"), the feeds and the sitemap changed. Its account's
    other distributions use 700 of the month's free paths, evenly over the month (or all
    before its first deploy: ``Month.other_upfront``)."""

    PER_PAGE = 10
    OTHER_PATHS = 700

    def __init__(self, seed: int, scale: float = 1.0):
        super().__init__("blog", seed)
        rng = self.rng
        self.posts: list[str] = []  # newest last
        self.tagged: dict[str, list[str]] = {
            self.slug(1): [] for _ in range(max(4, int(40 * scale)))}
        self.keys.update(["404.html", "css/blog.css", "js/blog.js", "index.xml", "feed.xml",
                          "sitemap.xml", "about/index.html", "tags/index.html"])
        for _ in range(max(10, int(400 * scale))):
            self.keys.update(self._post(rng.sample(sorted(self.tagged), rng.randint(1, 3))))
        self.keys.update(self._lists(None))
        for t in self.tagged:
            self.keys.update(self._lists(t))

    def _post(self, tags: list[str]) -> list[str]:
        key = _page(f"posts/{self.slug(3)}")
        self.posts.append(key)
        for t in tags:
            self.tagged[t].append(key)
        return [key, key.replace("index.html", "cover.jpg")]

    def _lists(self, tag: str | None) -> list[str]:
        """The list pages (with pagination) and feed of the home page or of a tag."""
        n = len(self.posts) if tag is None else len(self.tagged[tag])
        base = "" if tag is None else f"tags/{tag}/"
        pages = max(1, -(-n // self.PER_PAGE))
        return [f"{base}index.html", f"{base}index.xml",
                *(f"{base}page/{i}/index.html" for i in range(2, pages + 1))]

    def month(self, year: int, month: int) -> None:
        rng = self.rng
        for day in range(1, _days(year, month) + 1):
            tags = rng.sample(sorted(self.tagged), rng.randint(1, 3))
            previous = self.posts[-1]
            related = sorted({p for t in tags for p in self.tagged[t]})
            related = rng.sample(related, min(len(related), rng.randint(3, 8)))
            added = self._post(tags)
            lists = set(self._lists(None))
            for t in tags:
                lists.update(self._lists(t))
            new_lists = lists - self.keys  # a page of pagination more
            self.deploy(_at(rng, year, month, day, 7), "new post",
                        [*(lists - new_lists), previous, *related, "feed.xml", "sitemap.xml"],
                        added=[*added, *new_lists])


SITES = {"docs": _Docs, "release": _Release, "blog": _Blog}
FIRST_MONTH = {"docs": (2025, 6), "release": (2025, 7), "blog": (2025, 9)}


def generate(site: str, seed: int, months: int = 1, scale: float = 1.0,
             start: tuple[int, int] | None = None) -> list[Month]:
    """``months`` consecutive months of deploys of ``site`` (a key of :data:`SITES`), from
    ``start`` (year, month); the same arguments give the same months."""
    builder = SITES[site](seed, scale)
    year, mon = start or FIRST_MONTH[site]
    out = []
    for _ in range(months):
        builder.deploys = []
        builder.month(year, mon)
        out.append(Month(site, f"{year:04d}-{mon:02d}", seed, tuple(builder.deploys),
                         getattr(builder, "OTHER_PATHS", 0)))
        year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return out


# --- the real planning code, deploy by deploy ---------------------------------------------------

_HEADERS = headers_for()
_OLD, _NEW = "0" * 32, "1" * 32
_ENTRIES: dict[tuple[str, str, str, str], Entry] = {}


def _entry(key: str, digest: str) -> Entry:
    ctype, cc, enc = _HEADERS(key)
    e = _ENTRIES.get((digest, ctype, cc, enc))
    if e is None:
        e = _ENTRIES[(digest, ctype, cc, enc)] = Entry(digest, 1000, ctype, cc, enc)
    return e


def manifests_of(d: Deploy) -> tuple[Manifest, dict[str, Entry]]:
    """The previous manifest and the build of ``d``: synthetic hashes, one for what was there
    and one for what the deploy writes; headers as the scanner would set them."""
    previous = {k: _entry(k, _OLD) for k in d.before}
    new = {k: v for k, v in previous.items()}
    for k in d.deleted:
        del new[k]
    for k in (*d.changed, *d.added):
        new[k] = _entry(k, _NEW)
    return Manifest(previous, target="bench", deploy_id="prev"), new


def problem_of(d: Deploy) -> tuple[frozenset[str], frozenset[str]]:
    """(every URL that may be cached, the URLs that must be invalidated): what the plan's
    minimizer is handed (``compute_plan``: the old and new keys; modified and deleted ones)."""
    universe = frozenset(urls_of(d.before | d.after))
    changed = frozenset(urls_of((*d.changed, *d.deleted)))
    return universe, changed


def price_available() -> str | None:
    """None when the planning code has the price pace (``PastDeploy`` and ``compute_plan``'s
    ``pace_history``); else why not."""
    if not hasattr(pacing, "PastDeploy"):
        return "planner.core.pacing has no PastDeploy"
    if "pace_history" not in inspect.signature(compute_plan).parameters:
        return "compute_plan takes no pace_history"
    return None


def plan_deploy(d: Deploy, pace: str, paths_used: int, history: Sequence = (),
                daily: Sequence[int] | None = None):
    """The real plan of ``d`` under ``pace`` with ``paths_used`` paths used this month, on one
    distribution; ``history`` (price pace): the target's earlier deploys (``PastDeploy``);
    ``daily``: the account's paths on each day of the month so far, read as CloudFront's
    usage (else ``paths_used`` is passed as ``--paths-used``)."""
    previous, entries = manifests_of(d)
    extra: dict = {"pace_history": tuple(history)} if pace == "price" else {}
    used: int | None = paths_used
    if daily is not None:
        extra["usage"] = pacing.Usage(pacing.month_of(d.when), paths_used, "bench",
                                      daily=tuple(daily))
        used = None
    return compute_plan(
        site="/bench", target="bench",
        state=TargetState(previous, "v", None),
        entries=entries,
        options=Options(now=d.when, paths_used=used, pace=pace, distribution_ids=("E1",),
                        max_deletes=1_000_000),
        tool_version="bench",
        **extra,
    )


@dataclass
class Outcome:
    """A policy's month: the paths it submitted and the needless misses it caused."""

    policy: str
    free: int = FREE_PATHS_PER_MONTH  # free paths the month had for this site
    per_deploy: list[tuple[int, int]] = field(default_factory=list)  # (paths, misses)
    skipped: str | None = None  # why the policy could not run
    history: list = field(default_factory=list)  # price: the PastDeploy records, in order

    @property
    def paths(self) -> int:
        return sum(p for p, _ in self.per_deploy)

    @property
    def misses(self) -> int:
        return sum(m for _, m in self.per_deploy)

    @property
    def bill(self) -> float:
        return bill(self.paths, self.misses, self.free)

    @property
    def paid(self) -> int:
        return max(0, self.paths - self.free)


def free_paths(month: Month) -> int:
    """The month's free paths left for the site after the account's other distributions."""
    return max(0, FREE_PATHS_PER_MONTH - month.other_paths)


def run_policy(month: Month, policy: str,
               problems: Sequence[tuple[frozenset[str], frozenset[str]]] | None = None,
               history: Sequence = ()) -> Outcome:
    """Every deploy of ``month`` planned under ``policy``, the month's usage so far (the
    account's other paths included) fed in as ``paths_used``. "/*" is not planned: one path
    for a deploy that changes anything, every other cached URL a needless miss (from
    ``problems``, as :func:`problem_of` gives them, computed when None). ``history``: earlier
    ``PastDeploy`` records (the previous month's) for the price pace, which appends one per
    deploy (``Outcome.history``); skipped, saying why, when the planning code has no price
    pace."""
    out = Outcome(policy, free_paths(month))
    if policy == "/*":
        for i, d in enumerate(month.deploys):
            universe, changed = problems[i] if problems is not None else problem_of(d)
            out.per_deploy.append((1, len(universe) - len(changed)) if changed else (0, 0))
        return out
    if policy == "price":
        out.skipped = price_available()
        if out.skipped:
            return out
    past = list(history)
    mine = 0
    mine_daily = [0] * 31
    window = dt.timedelta(days=HISTORY_DAYS)
    for d in month.deploys:
        recent = [p for p in past if d.when - p.when <= window] if policy == "price" else ()
        daily = [o + m for o, m in zip(month.others_daily(d.when), mine_daily)]
        inv = plan_deploy(d, policy, month.others_by(d.when) + mine, recent,
                          daily).invalidations[0]
        out.per_deploy.append((len(inv.paths), inv.solution.collateral_urls))
        mine += len(inv.paths)
        mine_daily[d.when.day - 1] += len(inv.paths)
        if policy == "price":
            past.append(pacing.PastDeploy(d.when, len(inv.paths), inv.frontier))  # type: ignore[attr-defined]
    out.history = past
    return out


# --- the hindsight optimum ----------------------------------------------------------------------

# Prices per path (dollars) at which each deploy is planned for its frontier: 0, the price of
# a path and 14 halvings of it, and two above it (a path dearer than a paid one).
LAMBDAS = (0.0, *(PRICE_PER_PATH * 2.0 ** -i for i in range(14, -1, -1)), 2 * PRICE_PER_PATH,
           4 * PRICE_PER_PATH)


def pareto(points: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The Pareto-efficient (paths, misses) points, fewest paths first (misses falling)."""
    out: list[tuple[int, int]] = []
    for p, m in sorted(set(points)):
        if not out or m < out[-1][1]:
            out.append((p, m))
    return out


def frontier(universe: frozenset[str], changed: frozenset[str],
             lambdas: Sequence[float] = LAMBDAS, miss_cost: float = MISS_COST,
             hull: bool = False) -> list[tuple[int, int]]:
    """A deploy's options as (paths, needless misses): what the minimizer plans with no free
    paths at each price per path of ``lambdas`` (ascending), the exact paths (when CloudFront
    takes that many) and "/*"; the Pareto-efficient ones.

    The plan at a price minimises ``price x paths + miss_cost x misses``, so it is a vertex
    of the lower convex hull of every plan's (paths, misses), and as the price rises it moves
    along the hull towards fewer paths. When the same point is optimal at two prices it is
    optimal between them: the prices between are not planned (bisection on the grid).

    ``hull``: every vertex of that hull instead of the grid's (slower): between two vertices
    A and B, plan at the price that makes them cost the same; a plan cheaper than both there
    is a vertex between them, else there is none."""
    if not changed:
        return [(0, 0)]
    points = {(1, len(universe) - len(changed))}  # "/*"
    if len(changed) <= MAX_PATHS_IN_PROGRESS:
        points.add((len(changed), 0))

    def plan(lam: float) -> tuple[int, int]:
        sol = minimize(Problem(universe, changed,
                               CostModel(free_paths=0, price=lam, miss_cost=miss_cost)))
        return len(sol.paths), sol.collateral_urls

    if hull:
        def vertices(a: tuple[int, int], b: tuple[int, int]) -> None:
            if a[0] <= b[0] or a[1] >= b[1]:
                return
            lam = (b[1] - a[1]) * miss_cost / (a[0] - b[0])
            c = plan(lam)
            if lam * c[0] + miss_cost * c[1] < lam * a[0] + miss_cost * a[1] - 1e-12:
                points.add(c)
                vertices(a, c)
                vertices(c, b)

        most = plan(0.0)  # no needless miss, fewest paths
        points.add(most)
        vertices(most, min(points))
        return pareto(points)

    solved: dict[int, tuple[int, int]] = {}

    def at(i: int) -> tuple[int, int]:
        if i not in solved:
            solved[i] = plan(lambdas[i])
        return solved[i]

    def between(lo: int, hi: int) -> None:
        if hi - lo > 1 and at(lo) != at(hi):
            mid = (lo + hi) // 2
            at(mid)
            between(lo, mid)
            between(mid, hi)

    between(0, len(lambdas) - 1)
    points.update(solved.values())
    return pareto(points)


@dataclass(frozen=True)
class Hindsight:
    bill: float
    paths: int
    misses: int
    choices: tuple[int, ...]  # the option taken, per deploy (index into its frontier)
    free: int = FREE_PATHS_PER_MONTH

    @property
    def paid(self) -> int:
        return max(0, self.paths - self.free)


def hindsight(frontiers: Sequence[Sequence[tuple[int, int]]], free: int = FREE_PATHS_PER_MONTH,
              price: float = PRICE_PER_PATH, miss_cost: float = MISS_COST) -> Hindsight:
    """The cheapest month choosing one option (paths, misses) per deploy, knowing every
    deploy: minimises ``price x max(0, total paths - free) + miss_cost x total misses``.

    A dynamic programme over the deploys whose state is the paths used so far, capped at
    ``free``. The cap is exact: the month's bill is the sum over deploys of
    ``miss_cost x m_i + price x (max(0, P_i - free) - max(0, P_{i-1} - free))`` (P_i the
    paths used after deploy i), and for P_{i-1} >= free that increment is ``miss_cost x m_i +
    price x p_i`` whatever P_{i-1} is. So two histories that both reached ``free`` have the
    same cost for every continuation: only the cheaper one needs keeping, under state
    ``free``, and its value carries the paths already paid. At most ``free + 1`` states."""
    # cost[s]: the least cost so far (dollars) reaching state s; back[i][s]: (previous
    # state, option) of that least cost after deploy i.
    cost: dict[int, float] = {0: 0.0}
    back: list[dict[int, tuple[int, int]]] = []
    for options in frontiers:
        nxt: dict[int, float] = {}
        how: dict[int, tuple[int, int]] = {}
        get = nxt.get
        for s, c in cost.items():
            for j, (p, m) in enumerate(options):
                q = s + p
                over = q - free
                if over > 0:
                    value = c + miss_cost * m + price * over
                    q = free
                else:
                    value = c + miss_cost * m
                old = get(q)
                if old is None or value < old:
                    nxt[q] = value
                    how[q] = (s, j)
        cost = nxt
        back.append(how)
    state = min(cost, key=lambda s: (cost[s], s))
    best = cost[state]
    choices: list[int] = []
    for how in reversed(back):
        state, j = how[state]
        choices.append(j)
    choices.reverse()
    paths = sum(f[j][0] for f, j in zip(frontiers, choices))
    misses = sum(f[j][1] for f, j in zip(frontiers, choices))
    total = bill(paths, misses, free, price, miss_cost)
    assert abs(total - best) <= 1e-9 * max(1.0, total), (total, best)
    return Hindsight(total, paths, misses, tuple(choices), free)
