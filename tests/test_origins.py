"""How a distribution serves a bucket's keys (planner.core.origins): pure, from config dicts."""

from __future__ import annotations

import pytest

from planner.core.origins import bucket_of, mapper, served


@pytest.mark.parametrize(
    ("domain", "bucket"),
    [
        ("site.s3.amazonaws.com", "site"),  # REST, global
        ("site.s3.eu-west-1.amazonaws.com", "site"),  # REST, regional
        ("site.s3-eu-west-1.amazonaws.com", "site"),  # REST, old dash form
        ("site.s3-website-us-east-1.amazonaws.com", "site"),  # website endpoint
        ("site.s3-website.eu-central-1.amazonaws.com", "site"),  # website endpoint, dot form
        ("site.s3.dualstack.us-gov-west-1.amazonaws.com", "site"),  # dual-stack, GovCloud
        ("www.example.com.s3.amazonaws.com", "www.example.com"),  # dots in the bucket name
        ("site.s3.cn-north-1.amazonaws.com.cn", "site"),  # China
        ("SITE.S3.AMAZONAWS.COM", "site"),  # domains are case-insensitive
        ("api.example.com", None),  # a custom origin
        ("site.s3.amazonaws.com.evil.net", None),  # not AWS
        ("d111111abcdef8.cloudfront.net", None),  # another distribution
    ],
)
def test_bucket_of_an_origin_domain(domain, bucket):
    assert bucket_of(domain) == bucket


def config(origin_path="", behaviors=(), root="index.html", domain="site.s3.amazonaws.com"):
    origins = [{"Id": "s3", "DomainName": domain, "OriginPath": origin_path},
               {"Id": "api", "DomainName": "api.example.com", "OriginPath": ""}]
    return {
        "Origins": {"Quantity": 2, "Items": origins},
        "DefaultRootObject": root,
        "DefaultCacheBehavior": {"TargetOriginId": "s3"},
        "CacheBehaviors": {
            "Quantity": len(behaviors),
            "Items": [{"PathPattern": p, "TargetOriginId": t} for p, t in behaviors],
        },
    }


@pytest.mark.parametrize(
    ("cfg", "prefix", "key", "urls"),
    [
        # bucket root served at /: keys are URLs, index.html also as its folder
        (config(), "", "css/a.css", ("/css/a.css",)),
        (config(), "", "blog/index.html", ("/blog/", "/blog/index.html")),
        (config(), "", "index.html", ("/", "/index.html")),
        # a target under site/ of a distribution serving the bucket root: /site/...
        (config(), "site/", "css/a.css", ("/site/css/a.css",)),
        # origin path /site: site/css/a.css is /css/a.css
        (config("/site"), "site/", "css/a.css", ("/css/a.css",)),
        (config("/site/"), "site/", "index.html", ("/", "/index.html")),
        # origin path /site, target the bucket root: only keys under site/ are served
        (config("/site"), "", "site/css/a.css", ("/css/a.css",)),
        (config("/site"), "", "other/a.css", ()),
        # origin path /blog, target site/: nothing of it is served
        (config("/blog"), "site/", "css/a.css", ()),
        # a behavior sends /api/* to another origin: the bucket's api/ keys are not served
        (config(behaviors=(("/api/*", "api"),)), "", "api/data.json", ()),
        (config(behaviors=(("api/*", "api"),)), "", "api/data.json", ()),  # no leading /
        (config(behaviors=(("/api/*", "api"),)), "", "apidocs/x.html", ("/apidocs/x.html",)),
        # first matching behavior wins: /api/public/* back to the bucket
        (config(behaviors=(("/api/public/*", "s3"), ("/api/*", "api"))), "", "api/public/a.js",
         ("/api/public/a.js",)),
        # '?' matches one character; patterns are case-sensitive
        (config(behaviors=(("/v?/*", "api"),)), "", "v1/a.js", ()),
        (config(behaviors=(("/V1/*", "api"),)), "", "v1/a.js", ("/v1/a.js",)),
        # the root URL goes to the API: the root object is served only as /home.html
        (config(behaviors=(("/", "api"),), root="home.html"), "", "home.html", ("/home.html",)),
        # a default root object other than index.html also serves /
        (config(root="home.html"), "", "home.html", ("/", "/home.html")),
        # URLs are matched (and returned) encoded
        (config(behaviors=(("/caf%C3%A9/*", "api"),)), "", "café/menu.html", ()),
    ],
)
def test_urls_a_distribution_serves_a_key_under(cfg, prefix, key, urls):
    view = served(cfg, "site")
    assert view is not None
    assert mapper(view, prefix)(key) == urls


def test_a_distribution_without_the_bucket_as_origin_has_no_view():
    assert served(config(domain="other.s3.amazonaws.com"), "site") is None
    assert served({"Origins": {"Quantity": 0}}, "site") is None


def test_views_of_equal_configs_are_equal_and_hashable():
    # deploys compare the views of their distributions to refuse ones that differ
    assert served(config("/site"), "site") == served(config("/site"), "site")
    assert served(config("/site"), "site") != served(config(), "site")
    assert len({served(config(), "site"), served(config(), "site")}) == 1
