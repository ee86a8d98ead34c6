"""`planner paths`: list parsing (pure), the command through CliRunner, and the real CLI in a
subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.cli.paths import paths
from planner.core.cost import CostModel
from planner.core.minimizer import evaluate, minimize
from planner.core.urls import covers, urls_of
from planner.errors import BadPathList
from planner.pathlist import (
    encode_url,
    folder_urls,
    load_text,
    make_problem,
    read_lines,
    to_urls,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample-site"

# A small site: a home page, a blog of 12 posts, docs with odd names, assets.
KEYS = (
    ["index.html", "about/index.html", "blog/index.html"]
    + [f"blog/post-{i}/index.html" for i in range(12)]
    + ["docs/café menu.html", "docs/100%.html", "docs/a*b.html", "docs/what?.html"]
    + ["css/site.3f2a.css", "js/app.js", "img/logo.svg"]
)
POSTS = [f"blog/post-{i}/index.html" for i in range(12)]


def invoke(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(paths, list(args), input=input, catch_exceptions=False)


def write(path: Path, lines) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def universe(tmp_path) -> str:
    return write(tmp_path / "universe.txt", KEYS)


@pytest.fixture
def build(tmp_path) -> Path:
    """A build folder holding the files of KEYS."""
    root = tmp_path / "public"
    for key in KEYS:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(key)
    return root


# --- parsing (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, entries",
    [
        ("a.html\nb.html\n", ["a.html", "b.html"]),  # one entry a line
        ("a.html\n\n   \n# a comment\nb.html", ["a.html", "b.html"]),  # blanks, comments, no final newline
        ("  /x/ \t\r\n\t/y\r\n", ["/x/", "/y"]),  # spaces, tabs, CRLF around entries dropped
        ("/docs/café menu.html\n", ["/docs/café menu.html"]),  # inner space kept
        ("#/not/this\n /and/#this\n", ["/and/#this"]),  # '#' only starts a comment at line start
        ("", []),  # empty list
    ],
)
def test_read_lines(text, entries):
    assert read_lines(text) == entries


@pytest.mark.parametrize(
    "text, message",
    [
        ("a.html\nb\x00.html\n", "changed list, line 2: NUL byte"),  # NUL, with its line
        ("https://example.com/a\n", "line 1: a full URL"),  # a URL, not a path
    ],
)
def test_read_lines_refuses(text, message):
    with pytest.raises(BadPathList, match=message):
        read_lines(text, "changed list")


@pytest.mark.parametrize(
    "line, url",
    [
        ("/a/b.css", "/a/b.css"),  # nothing to encode
        ("/docs/café menu.html", "/docs/caf%C3%A9%20menu.html"),  # non-ASCII as UTF-8, space
        ("/docs/caf%C3%A9%20menu.html", "/docs/caf%C3%A9%20menu.html"),  # escapes kept
        ("/docs/caf%c3%a9", "/docs/caf%c3%a9"),  # kept as written, lower case too
        ("/100%.html", "/100%25.html"),  # a '%' that starts no escape
        ("/100%2", "/100%252"),  # nor does a '%' with one hex digit
        ("/a%zz", "/a%25zz"),  # nor with non-hex digits
        ("/a%41%", "/a%41%25"),  # a valid escape, then a lone '%'
        ("/a*b.js", "/a%2Ab.js"),  # a star is a literal star, never a wildcard
        ("/blog/*", "/blog/%2A"),  # even at the end
        ("/what?.html", "/what%3F.html"),  # '?' would start a query string
        ("/x#y", "/x%23y"),  # '#' would start a fragment
        ("/a b\tc", "/a%20b%09c"),  # control characters too
        ("/it's,ok;=@+$!", "/it's,ok;=@+$!"),  # reserved but not unsafe: untouched
    ],
)
def test_url_lines_are_encoded_once(line, url):
    assert encode_url(line) == url
    assert encode_url(url) == url  # encoding an encoded path changes nothing


@pytest.mark.parametrize(
    "entries, prefix, urls",
    [
        # a page key gives both forms of its URL
        (["blog/index.html"], "/", ["/blog/", "/blog/index.html"]),
        # the root page
        (["index.html"], "/", ["/", "/index.html"]),
        # an asset: one URL
        (["css/site.css"], "/", ["/css/site.css"]),
        # a key is a raw name: every '%' is encoded, '*' and '?' too
        (["100%.html", "a*b.js", "what?.html"], "/", ["/100%25.html", "/a%2Ab.js", "/what%3F.html"]),
        (["%41.html"], "/", ["/%2541.html"]),  # a key's '%41' is not an escape
        # a URL line is a URL: '/blog/' alone, not its index.html
        (["/blog/"], "/", ["/blog/"]),
        # './' as `find .` prints it is dropped
        (["./blog/index.html"], "/", ["/blog/", "/blog/index.html"]),
        # --url-prefix applies to keys, not to URL lines
        (["a.css", "/b.css"], "docs", ["/b.css", "/docs/a.css"]),
        # a key and the URL it maps to are one URL
        (["css/site.css", "/css/site.css"], "/", ["/css/site.css"]),
    ],
)
def test_to_urls(entries, prefix, urls):
    assert to_urls(entries, prefix) == urls


def test_load_text_errors_name_the_list(tmp_path):
    with pytest.raises(BadPathList, match="cannot read changed list .*missing.txt: No such file"):
        load_text(str(tmp_path / "missing.txt"), "changed")
    with pytest.raises(BadPathList, match="cannot read universe list .*: Is a directory"):
        load_text(str(tmp_path), "universe")
    (tmp_path / "latin1.txt").write_bytes(b"a.html\ncaf\xe9.html\n")
    with pytest.raises(BadPathList, match="latin1.txt, line 2: not UTF-8"):
        load_text(str(tmp_path / "latin1.txt"), "changed")


def test_load_text_reads_stdin_and_drops_a_byte_order_mark():
    assert load_text("-", "changed", io.BytesIO("\ufeffa.html\n".encode())) == "a.html\n"


def test_deleted_urls_join_the_universe():
    problem = make_problem(["/a"], ["/gone/1", "/gone/2"])
    assert problem.universe == {"/a", "/gone/1", "/gone/2"}


def test_folder_urls_are_the_keys_urls_without_state_files(build):
    (build / ".planner").mkdir()
    (build / ".planner" / "manifest.json.gz").write_bytes(b"x")
    assert folder_urls(str(build)) == urls_of(KEYS)
    assert folder_urls(str(build), "/site/") == urls_of(KEYS, "/site/")


def test_pure_parsing_module_imports_no_cli_or_aws():
    code = (
        "import sys, planner.pathlist; "
        "print(','.join(m for m in ('boto3', 'botocore', 'click', 'tabulate') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- the command (CliRunner) ------------------------------------------------------------------


def test_text_output_is_one_path_a_line(universe, tmp_path):
    changed = write(tmp_path / "changed.txt", ["about/index.html", "js/app.js", "index.html"])
    r = invoke("--universe", universe, "--changed", changed)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "/\n/about/*\n/index.html\n/js/app.js\n"
    assert r.stderr == ""


def test_json_shape_and_values(universe, tmp_path):
    changed = write(tmp_path / "changed.txt", POSTS + ["css/site.3f2a.css"])
    r = invoke("-u", universe, "-c", changed, "--format", "json", "--free", "0",
               "--miss-cost", "0.001")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    # 25 URLs; '/blog/post-*' (no needless miss) and the CSS: 2 paid paths ('/*' would cost
    # one paid path and 12 needless misses at $0.001)
    assert doc == {
        "paths": ["/blog/post-*", "/css/site.3f2a.css"],
        "changed_urls": 25,
        "universe_urls": len(urls_of(KEYS)),
        "collateral_urls": 0,
        "paid_paths": 2,
        "charge_usd": 0.01,
        "miss_cost_usd": 0.0,
        "free_paths_used": 0,
        "paced_paths": 0,
        "shadow_usd": 0.0,
        "cost_usd": 0.01,
        "cost_lower_bound_usd": 0.01,
        "exact": True,
        "wildcards": 1,
        "free_paths": 0,
        "wildcard_cover": [{"path": "/blog/post-*", "changed": 24, "collateral": 0}],
        "usage_source": None,
    }


def test_json_matches_the_minimizer(universe, tmp_path):
    keys = ["index.html", "about/index.html", "docs/café menu.html", "img/logo.svg"] + POSTS[:5]
    changed = write(tmp_path / "changed.txt", keys)
    args = ["-u", universe, "-c", changed, "--free", "3", "--miss-cost", "0.0001",
            "--price-per-path", "0.01", "--distributions", "2", "--max-wildcards", "2"]
    doc = json.loads(invoke(*args, "--format", "json").stdout)
    model = CostModel(free_paths=3, price=0.01, miss_cost=0.0001, distributions=2)
    sol = minimize(make_problem(urls_of(KEYS), urls_of(keys), model, max_wildcards=2))
    assert doc["paths"] == list(sol.paths) and doc["wildcards"] <= 2
    assert doc["cost_usd"] == round(sol.cost_usd, 6)
    assert doc["paid_paths"] == max(0, len(sol.paths) * 2 - 3)  # two distributions, 3 free
    assert doc["collateral_urls"] == sol.collateral_urls and doc["exact"] is sol.exact


def test_empty_changed_list_prints_nothing(universe, tmp_path):
    changed = write(tmp_path / "changed.txt", ["# nothing changed", ""])
    r = invoke("-u", universe, "-c", changed)
    assert r.exit_code == 0 and r.stdout == ""
    doc = json.loads(invoke("-u", universe, "-c", changed, "--format", "json").stdout)
    assert doc["paths"] == [] and doc["cost_usd"] == 0 and doc["changed_urls"] == 0
    assert invoke("-u", universe, "-c", changed, "--format", "table").stdout == "nothing to invalidate\n"


def test_changed_from_stdin(universe):
    r = invoke("-u", universe, "-c", "-", input="blog/post-3/index.html\n")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "/blog/post-3/*\n"


def test_universe_from_stdin(tmp_path):
    changed = write(tmp_path / "changed.txt", ["/a/1", "/a/2"])
    r = invoke("-u", "-", "-c", changed, input="/a/1\n/a/2\n/a/3\n")
    assert r.stdout == "/a/1\n/a/2\n"  # '/a/*' would hit /a/3


def test_universe_from_a_build_folder(build, tmp_path):
    # a deleted post (not in the folder any more) and an edited one
    changed = write(tmp_path / "changed.txt", ["blog/post-old/index.html", "blog/post-3/index.html"])
    r = invoke("-u", str(build), "-c", changed)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "/blog/post-3/*\n/blog/post-old/*\n"


def test_keys_and_url_lines_give_the_same_plan(universe, tmp_path):
    keys = write(tmp_path / "keys.txt", ["blog/index.html", "docs/café menu.html"])
    urls = write(tmp_path / "urls.txt", ["/blog/", "/blog/index.html", "/docs/café menu.html"])
    by_key = invoke("-u", universe, "-c", keys).stdout
    assert by_key == invoke("-u", universe, "-c", urls).stdout
    assert by_key == "/blog/\n/blog/index.html\n/docs/caf%C3%A9%20menu.html\n"


def test_odd_names_are_encoded_and_a_star_stays_literal(universe, tmp_path):
    # URL lines, as a person would type them, for files of the universe's keys
    changed = write(tmp_path / "changed.txt", ["/docs/café menu.html", "/docs/100%.html",
                                               "/docs/a*b.html", "/docs/what?.html"])
    r = invoke("-u", universe, "-c", changed, "--max-wildcards", "0")
    assert r.stdout.split() == [
        "/docs/100%25.html", "/docs/a%2Ab.html", "/docs/caf%C3%A9%20menu.html", "/docs/what%3F.html"
    ]
    # with wildcards allowed, all four (and nothing else) are under /docs/
    assert invoke("-u", universe, "-c", changed).stdout == "/docs/*\n"


def test_url_prefix_applies_to_keys(tmp_path):
    universe = write(tmp_path / "u.txt", ["index.html", "a.css", "b.css"])
    changed = write(tmp_path / "c.txt", ["a.css"])
    r = invoke("-u", universe, "-c", changed, "--url-prefix", "/docs/")
    assert r.stdout == "/docs/a.css\n"


def test_table_lists_what_each_path_covers(universe, tmp_path):
    changed = write(tmp_path / "changed.txt", POSTS[:11] + ["js/app.js"])
    r = invoke("-u", universe, "-c", changed, "--format", "table", "--free", "0",
               "--miss-cost", "0.001")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["path", "changed", "needless"]
    # '/blog/post-*' covers the 22 changed URLs and post-11's two ($0.002): cheaper than 10
    # more paid paths
    assert lines[2].split() == ["/blog/post-*", "22", "2"]
    assert lines[3].split() == ["/js/app.js", "1", "0"]
    # the two figures apart: what AWS bills, and what the model prices the misses at
    assert lines[-3:] == [
        "2 paths (1 wildcard) for 23 changed URLs, 2 needless misses",
        "AWS charge: $0.01 (2 paid paths)",
        "miss estimate: $0.002 (cost model, --miss-cost)",
    ]


# --- errors -----------------------------------------------------------------------------------


def one_line_error(r, *fragments: str) -> None:
    assert r.exit_code == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_changed_file_is_a_one_line_error(universe, tmp_path):
    r = invoke("-u", universe, "-c", str(tmp_path / "nope.txt"))
    one_line_error(r, "cannot read changed list", "nope.txt", "No such file or directory")


def test_missing_universe_is_a_one_line_error(tmp_path):
    changed = write(tmp_path / "changed.txt", ["a.html"])
    r = invoke("-u", str(tmp_path / "nope"), "-c", changed)
    one_line_error(r, "cannot read universe list", "nope")


def test_unreadable_changed_file_is_a_one_line_error(universe, tmp_path):
    r = invoke("-u", universe, "-c", str(tmp_path))  # a folder cannot be read as a list
    one_line_error(r, "cannot read changed list", "Is a directory")


def test_nul_byte_is_a_one_line_error(universe, tmp_path):
    (tmp_path / "changed.txt").write_bytes(b"a.html\nb\x00.html\n")
    r = invoke("-u", universe, "-c", str(tmp_path / "changed.txt"))
    one_line_error(r, "changed.txt, line 2: NUL byte")


def test_nul_byte_on_stdin_names_standard_input(universe):
    r = invoke("-u", universe, "-c", "-", input=b"\x00\n")
    one_line_error(r, "changed list standard input, line 1")


def test_build_folder_with_an_escaping_link_is_a_one_line_error(build, tmp_path):
    (build / "out").symlink_to(tmp_path)
    changed = write(tmp_path / "changed.txt", ["index.html"])
    r = invoke("-u", str(build), "-c", changed)
    one_line_error(r, "points outside the build folder")


def test_too_many_changed_urls_without_wildcards_is_an_error(universe, tmp_path):
    changed = write(tmp_path / "changed.txt", POSTS[:3])  # 6 URLs
    r = invoke("-u", universe, "-c", changed, "--max-wildcards", "0", "--max-paths", "5")
    one_line_error(r, "6 changed URLs need more than the 5 paths and 0 wildcards")
    # one wildcard allowed: a plan exists
    r = invoke("-u", universe, "-c", changed, "--max-wildcards", "1", "--max-paths", "5")
    assert r.exit_code == 0, r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["-u", "-", "-c", "-"],  # stdin cannot be both lists
        ["-c", "x.txt"],  # --universe is required: without it every wildcard looks free
        ["-u", "u.txt", "-c", "x.txt", "--max-wildcards", "16"],  # beyond CloudFront's limit
        ["-u", "u.txt", "-c", "x.txt", "--free", "-1"],
        ["-u", "u.txt", "-c", "x.txt", "--format", "yaml"],
    ],
)
def test_bad_usage_exits_2(args):
    r = invoke(*args)
    assert r.exit_code == 2 and "Usage:" in r.stderr


# --- end to end -------------------------------------------------------------------------------


def run_cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """``python -m planner paths ...``, the real CLI."""
    return subprocess.run([sys.executable, "-m", "planner", "paths", *args], input=input,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.e2e
def test_printed_paths_cover_every_changed_url_and_a_changed_section_collapses(tmp_path):
    # 40 news posts under slugs, a shop of 3,000 items; every post changed (the news index
    # did not), two items and a deleted page
    slugs = [f"{w}-{v}" for w in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
                                   "golf", "hotel", "india", "juliet", "kilo", "lima", "mike",
                                   "november", "oscar", "papa", "quebec", "romeo", "sierra",
                                   "tango") for v in ("notes", "recap")]
    news = [f"news/{s}/index.html" for s in slugs]
    keys = ["index.html", "news/index.html", "shop/index.html"] + news
    keys += [f"shop/item-{i}/index.html" for i in range(3000)]
    universe = write(tmp_path / "u.txt", keys)
    changed_keys = news + ["shop/item-7/index.html", "shop/item-500/index.html", "gone.html"]
    changed = write(tmp_path / "c.txt", changed_keys)
    want = set(urls_of(changed_keys))
    printed = {}
    for free in ("1000", "0"):
        r = run_cli("-u", universe, "-c", changed, "--free", free)
        assert r.returncode == 0, r.stderr
        printed[free] = r.stdout.splitlines()
        assert all(any(covers(p, url) for p in printed[free]) for url in want)
        assert sum(p.endswith("*") for p in printed[free]) <= 15
    # free paths left: no needless miss, so the unchanged news index is never hit
    assert not any(covers(p, "/news/") for p in printed["1000"])
    # none left: the section collapses into one wildcard (2 needless misses beat 36 paid
    # paths), while '/*' (6,000 needless misses) stays dearer than 4 paid paths
    assert printed["0"] == ["/gone.html", "/news/*", "/shop/item-500/*", "/shop/item-7/*"]


def test_the_command_loads_no_aws_library(tmp_path):
    universe = write(tmp_path / "u.txt", KEYS)
    code = (
        "import sys\n"
        "from planner.cli.paths import paths\n"
        f"try: paths(['-u', {universe!r}, '-c', '-'])\n"
        "except SystemExit as e: assert e.code in (0, None), e.code\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input="index.html\n", capture_output=True,
                         text=True, check=True)
    assert out.stdout == "/\n/index.html\n"
    assert out.stderr.strip().splitlines()[-1] == "False False"


@pytest.mark.e2e
def test_registered_in_the_planner_command():
    from planner.cli import cli

    assert "paths" in cli.commands
    r = subprocess.run([sys.executable, "-m", "planner", "paths", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "--universe" in r.stdout


@pytest.mark.parametrize("variable", ["PLANNER_FREE", "PLANNER_PATHS_FREE"])
def test_options_from_the_environment(tmp_path, variable):
    universe = write(tmp_path / "u.txt", [f"s/{i}.html" for i in range(10)])
    changed = write(tmp_path / "c.txt", [f"s/{i}.html" for i in range(6)])
    import planner.cli  # noqa: F401 - registering the command gives its options their variables

    r = CliRunner().invoke(paths, ["-u", universe, "-c", changed], env={variable: "0"})
    assert r.stdout == "/s/*\n"  # 4 needless misses cost less than 6 paid paths


# --- property ---------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "ab", "é", "x y", "100%", "s*", "q?", "%41", "index.html"])
KEY = st.lists(NAMES, min_size=1, max_size=3).map("/".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.lists(KEY, min_size=1, max_size=25, unique=True),
    data=st.data(),
    free=st.sampled_from([0, 2, 1000]),
    wild=st.integers(0, 3),
)
def test_property_plan_covers_changes_and_costs_what_it_says(keys, data, free, wild):
    changed_keys = data.draw(st.lists(st.sampled_from(keys), unique=True))
    as_urls = data.draw(st.booleans())  # the changed list as URL lines instead of keys
    lines = [u for u in urls_of(changed_keys)] if as_urls else changed_keys
    problem = make_problem(to_urls(keys), to_urls(lines), CostModel(free_paths=free),
                           max_wildcards=wild)
    assert problem.changed == frozenset(urls_of(changed_keys))
    sol = minimize(problem)
    assert all(any(covers(p, u) for p in sol.paths) for u in problem.changed)
    assert sol.wildcards <= wild
    check = evaluate(problem, sol.paths)
    assert check.collateral_urls == sol.collateral_urls
    assert check.cost_usd == pytest.approx(sol.cost_usd)
