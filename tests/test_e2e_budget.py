"""End to end: the free-path budget read from CloudFront decides the invalidation.

``python -m planner`` runs in a subprocess against the moto server (see ``conftest.py``). The
site has a section of 40 pages, so a deploy can be asked to invalidate a few scattered pages
(exact paths, or wildcards that hit nothing else), most of the section (``/section/*``) or
most of the site (``/*``). Invalidations made with boto3 directly stand for other tools and
people: CloudFront's count of the month, all distributions of the account, is what the tool
must read. Every deploy's invalidation is checked in moto against the JSON's paths.

moto completes invalidations at once and never enforces the in-progress limits; those paths
are covered with a strict fake in ``test_budget.py``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import (
    create_distribution,
    inv_paths,
    invalidations,
    run,
    run_json,
    write_site,
)

from planner.core.pacing import days_left_in_month, pace_allowance
from planner.core.words import plural

pytestmark = pytest.mark.e2e

PRICE = 0.005
MISS = PRICE / 1000  # the default --miss-cost
SECTION = 40  # pages under /section/

FILES: dict[str, str] = {
    "index.html": "<h1>Home</h1>\n",
    "about/index.html": "<h1>About</h1>\n",
    "css/site.css": "body { color: #222 }\n",
    "js/app.js": "console.log(1);\n",
    "section/index.html": "<h1>Section</h1>\n",
    **{f"section/p{i}/index.html": f"<h1>Page {i}</h1>\n" for i in range(SECTION)},
    "blog/index.html": "<h1>Blog</h1>\n",
    **{f"blog/post{j}/index.html": f"<h1>Post {j}</h1>\n" for j in range(10)},
}
PAGES = [k for k in FILES if k.endswith("index.html")]
# Each page is cached as /dir/ and /dir/index.html; assets under one URL each.
ALL_URLS = 2 * len(PAGES) + 2


@pytest.fixture
def public(tmp_path: Path) -> Path:
    return write_site(tmp_path / "public", FILES)


def edit(root: Path, keys: list[str], tag: str = "edited") -> None:
    for key in keys:
        path = root.joinpath(*key.split("/"))
        path.write_text(path.read_text(encoding="utf-8") + f"<!-- {tag} -->\n", encoding="utf-8")


def args(command: str, root: Path, site, *extra: str, dists: tuple[str, ...] | None = None):
    out = [command, str(root), "--target", site.target()]
    for d in dists if dists is not None else (site.distribution_id,):
        out += ["--distribution", d]
    return [*out, *extra]


def deploy(moto, root: Path, site, *extra: str, dists=None) -> dict[str, Any]:
    doc = run_json(args("deploy", root, site, *extra, dists=dists), moto.env, moto.cwd)
    assert "result" in doc
    return doc


def plan(moto, root: Path, site, *extra: str, dists=None) -> dict[str, Any]:
    return run_json(args("plan", root, site, *extra, dists=dists), moto.env, moto.cwd)


def plan_text(moto, root: Path, site, *extra: str) -> str:
    proc: subprocess.CompletedProcess = run(args("plan", root, site, *extra), moto.env, moto.cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def other_tool(cf, dist: str, n_paths: int, per_batch: int = 250, tag: str = "other") -> None:
    """Invalidations made with boto3 directly, as another tool would: ``n_paths`` in all,
    one wildcard in each batch."""
    done = 0
    while done < n_paths:
        k = min(per_batch, n_paths - done)
        paths = [f"/{tag}/b{done}/*"] + [f"/{tag}/f{done + i}.html" for i in range(1, k)]
        cf.create_invalidation(
            DistributionId=dist,
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": f"{tag}-{dist}-{done}",
            },
        )
        done += k


def submitted(moto, doc: dict[str, Any]) -> dict[str, list[str]]:
    """distribution -> paths of the invalidation the deploy reports, as moto holds it."""
    out = {}
    for made in doc["result"]["invalidations"]:
        held = invalidations(moto.cloudfront, made["distribution_id"])
        [inv] = [i for i in held if i["Id"] == made["id"]]
        out[made["distribution_id"]] = inv_paths(inv)
    return out


def check_alternatives(inv: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The three alternatives are there and valid, and the chosen one is no dearer."""
    alts = {a["name"]: a for a in inv["alternatives"]}
    assert [a["name"] for a in inv["alternatives"]] == ["exact paths", "/*", "chosen"]
    assert all(a["valid"] for a in inv["alternatives"])
    exact, star, chosen = alts["exact paths"], alts["/*"], alts["chosen"]
    assert exact["paths"] == inv["changed_urls"] and exact["collateral_urls"] == 0
    assert star["paths"] == 1
    assert chosen["cost_usd"] <= exact["cost_usd"]
    assert chosen["cost_usd"] <= star["cost_usd"]
    assert chosen["paths"] == len(inv["paths"])
    assert chosen["collateral_urls"] == inv["collateral_urls"]
    assert chosen["cost_usd"] == inv["cost_usd"]
    return alts


def section_keys(*pages: int, index: bool = False) -> list[str]:
    return (["section/index.html"] if index else []) + [f"section/p{i}/index.html" for i in pages]


# Most of the section: its index and 36 of its 40 pages (74 URLs); 4 pages stay (8 URLs).
KEPT = (5, 15, 25, 35)
MOST_OF_SECTION = section_keys(*(i for i in range(SECTION) if i not in KEPT), index=True)


# --- within budget ---------------------------------------------------------------------------


def test_scattered_edits_within_budget_invalidate_nothing_needlessly(moto, site, public):
    deploy(moto, public, site)
    edit(public, [*section_keys(3, 17), "about/index.html", "css/site.css"])

    doc = deploy(moto, public, site)

    inv = doc["invalidation"]
    # One zero-collateral wildcard per page (it covers /dir/ and /dir/index.html only), the
    # stylesheet exactly: /section/p3/* leaves /section/p30/ .. /section/p39/ alone.
    assert inv["paths"] == ["/about/*", "/css/site.css", "/section/p17/*", "/section/p3/*"]
    assert inv["changed_urls"] == 7
    assert inv["collateral_urls"] == 0
    assert all(c["collateral"] == 0 for c in inv["coverage"])
    assert (inv["paid_paths"], inv["cost_usd"]) == (0, 0)
    assert inv["budget"]["source"] == "cloudfront"
    assert inv["budget"]["paths_used"] == 0
    assert submitted(moto, doc) == {site.distribution_id: sorted(inv["paths"])}
    alts = check_alternatives(inv)
    assert alts["/*"]["collateral_urls"] == ALL_URLS - 7
    assert alts["/*"]["cost_usd"] > 0  # free, but 103 needless misses


# --- beyond budget ---------------------------------------------------------------------------


def test_most_of_a_section_beyond_budget_collapses_into_one_wildcard(moto, site, public):
    deploy(moto, public, site)
    # Another tool spent the month's 1,000 free paths on another distribution of the account.
    other = create_distribution(moto.cloudfront, "another-site")
    other_tool(moto.cloudfront, other, 1000)
    edit(public, MOST_OF_SECTION)

    # Were the paths free, no wildcard would hit an unchanged page.
    free = plan(moto, public, site, "--paths-used", "0", "--pace", "none")
    assert free["invalidation"]["collateral_urls"] == 0
    assert free["invalidation"]["paid_paths"] == 0

    doc = deploy(moto, public, site)

    inv = doc["invalidation"]
    b = inv["budget"]
    assert (b["source"], b["paths_used"], b["free_paths_left"], b["pace_allowance"]) == (
        "cloudfront", 1000, 0, 0
    )
    # One paid path; the 4 unchanged pages (8 URLs) are needless misses worth much less than
    # the 73 paths the wildcard saves.
    assert inv["paths"] == ["/section/*"]
    assert (inv["changed_urls"], inv["collateral_urls"], inv["paid_paths"]) == (74, 8, 1)
    assert inv["cost_usd"] == pytest.approx(PRICE + 8 * MISS)
    assert submitted(moto, doc) == {site.distribution_id: ["/section/*"]}
    alts = check_alternatives(inv)
    assert alts["exact paths"]["paid_paths"] == 74
    assert alts["/*"]["collateral_urls"] == ALL_URLS - 74


def test_most_of_the_site_changed_beyond_budget_becomes_slash_star(moto, site, public):
    deploy(moto, public, site)
    # Everything but the stylesheet: a zero-collateral plan needs at least 6 paths
    # (/, /about/*, /blog/*, /index.html, /js/app.js, /section/*), 3 more than are free.
    edit(public, [k for k in FILES if k != "css/site.css"])

    doc = deploy(moto, public, site, "--pace", "none", "--free-paths-per-month", "3")

    inv = doc["invalidation"]
    assert inv["budget"]["free_paths_per_month"] == 3
    assert inv["budget"]["pace_allowance"] == inv["free_paths"] == 3
    assert inv["paths"] == ["/*"]
    assert (inv["changed_urls"], inv["collateral_urls"], inv["paid_paths"]) == (ALL_URLS - 1, 1, 0)
    assert submitted(moto, doc) == {site.distribution_id: ["/*"]}
    check_alternatives(inv)


def test_each_distribution_spends_the_shared_free_paths(moto, site, public):
    second = create_distribution(moto.cloudfront, site.bucket)
    both = (site.distribution_id, second)
    deploy(moto, public, site, dists=both)
    edit(public, section_keys(3, 17))
    budget = ("--pace", "none", "--free-paths-per-month", "3")

    # One distribution: the two zero-collateral wildcards fit the 3 free paths.
    one = plan(moto, public, site, *budget)
    assert one["invalidation"]["paths"] == ["/section/p17/*", "/section/p3/*"]
    assert one["invalidation"]["paid_paths"] == 0

    # Two: the same paths would be 4 submitted paths, one of them paid; a single wildcard
    # sent twice stays free, and its 76 needless misses (twice) cost less than a paid path.
    doc = deploy(moto, public, site, *budget, dists=both)
    inv = doc["invalidation"]
    assert inv["paths"] == ["/section/p*"]
    assert (inv["collateral_urls"], inv["paid_paths"]) == (76, 0)
    assert inv["cost_usd"] == pytest.approx(2 * 76 * MISS)
    assert submitted(moto, doc) == {d: ["/section/p*"] for d in both}

    # Both invalidations count against the account's month.
    edit(public, section_keys(4), tag="again")
    after = plan(moto, public, site, dists=both)
    assert after["invalidation"]["budget"]["paths_used"] == 2


# --- the budget read from CloudFront ---------------------------------------------------------


def test_budget_counts_other_tools_and_earlier_deploys_on_every_distribution(moto, site, public):
    deploy(moto, public, site)
    edit(public, section_keys(1))
    earlier = deploy(moto, public, site)
    ours = len(earlier["invalidation"]["paths"])
    assert ours >= 1 and earlier["result"]["invalidations"]
    other = create_distribution(moto.cloudfront, "another-site")
    other_tool(moto.cloudfront, site.distribution_id, 7, tag="same")  # same distribution
    other_tool(moto.cloudfront, other, 5, tag="elsewhere")  # another one of the account
    edit(public, section_keys(2))

    before = dt.datetime.now(dt.timezone.utc)
    doc = plan(moto, public, site, "--pace", "even")  # (the default prices free paths instead)
    after = dt.datetime.now(dt.timezone.utc)

    b = doc["invalidation"]["budget"]
    assert b["source"] == "cloudfront"
    assert b["paths_used"] == ours + 12
    assert b["free_paths_per_month"] == 1000
    assert b["free_paths_left"] == 1000 - ours - 12
    assert b["pace"] == "even"
    assert b["days_left"] in {days_left_in_month(before), days_left_in_month(after)}
    assert b["pace_allowance"] == pace_allowance(b["free_paths_left"], b["days_left"])
    assert doc["invalidation"]["free_paths"] == b["pace_allowance"]
    # moto completes invalidations at once: the limits are whole
    assert (b["max_wildcards_now"], b["max_paths_now"]) == (15, 3000)
    assert b["note"] == ""


def test_paths_used_option_overrides_what_cloudfront_says(moto, site, public):
    deploy(moto, public, site)
    other_tool(moto.cloudfront, site.distribution_id, 30)
    edit(public, MOST_OF_SECTION)

    # (--pace none: a free path is free, whatever the month's deploys to come may need)
    read = plan(moto, public, site, "--pace", "none")["invalidation"]
    assert (read["budget"]["source"], read["budget"]["paths_used"]) == ("cloudfront", 30)
    assert read["collateral_urls"] == 0  # 970 free paths: nothing needless

    spent = plan(moto, public, site, "--paths-used", "1000")["invalidation"]
    assert spent["budget"]["source"] == "--paths-used"
    assert spent["budget"]["paths_used"] == 1000
    assert spent["budget"]["free_paths_left"] == 0
    assert spent["paths"] == ["/section/*"]

    some = plan(moto, public, site, "--paths-used", "990", "--pace", "none")["invalidation"]
    assert (some["budget"]["free_paths_left"], some["budget"]["pace_allowance"]) == (10, 10)
    assert some["budget"]["source"] == "--paths-used"


# --- alternatives and the text output --------------------------------------------------------


@pytest.mark.parametrize(
    "budget",
    [
        ("--paths-used", "0", "--pace", "none"),  # all free
        ("--paths-used", "995", "--pace", "none"),  # 5 free
        ("--paths-used", "1000"),  # none free
    ],
    ids=["all-free", "5-free", "none-free"],
)
def test_alternatives_show_exact_paths_and_slash_star_beside_a_choice_no_dearer(
    moto, site, public, budget
):
    # Plans only: one first deploy, then the same edit planned under each budget.
    deploy(moto, public, site)
    edit(public, [*section_keys(*range(0, 40, 3)), "blog/post2/index.html", "js/app.js"])
    inv = plan(moto, public, site, *budget)["invalidation"]
    alts = check_alternatives(inv)
    assert alts["exact paths"]["paths"] == inv["changed_urls"] == 2 * 14 + 2 + 1
    assert alts["/*"]["collateral_urls"] == ALL_URLS - inv["changed_urls"]


def test_plan_table_shows_the_free_paths_line_and_the_alternatives(moto, site, public):
    deploy(moto, public, site)
    edit(public, section_keys(7))

    before = dt.datetime.now(dt.timezone.utc)
    text = plan_text(moto, public, site, "--pace", "even")
    after = dt.datetime.now(dt.timezone.utc)
    assert "free paths: 1,000 of 1,000 left this month (0 used, from cloudfront); pace even: " in text
    assert any(
        f"at most {pace_allowance(1000, days):,} this deploy (1,000 left / {plural(days, 'day')} x 3)" in text
        for days in {days_left_in_month(before), days_left_in_month(after)}
    )
    lines = text.splitlines()
    start = lines.index("Alternatives")
    names = [line.split()[0] for line in lines[start + 3 : start + 6]]  # title, header, rule
    assert names == ["exact", "/*", "chosen"]

    text = plan_text(moto, public, site, "--paths-used", "40", "--pace", "none")
    assert "free paths: 960 of 1,000 left this month (40 used, from --paths-used); pace none" in text
