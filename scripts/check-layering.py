#!/usr/bin/env python3
"""Fails on an #include that crosses a forbidden edge between the project's layers.

The layers, lowest first: common (errors, hashing, units, host) <- engine <- evals; reports sits
beside the engine and never sees it, and reports/schema (each suite's metric names, shared by the
suite that writes them and the view that reads them) includes nothing. Inside evals, a suite never includes another suite (what two
suites share lives in evals/metrics), the backends and runner know no suite and no CLI, and only
the CLI sees everything. Usage: check-layering.py [SOURCE_ROOT]; prints each offending line.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')

# Layer of a file or an included path: the first rule whose prefix matches.
LAYERS = [
    ("common/", "common"),
    ("engine/", "engine"),
    ("reports/schema/", "schema"),
    ("reports/", "reports"),
    ("evals/backends/", "backends"),
    ("evals/metrics/", "metrics"),
    ("evals/runner/", "runner"),
    ("evals/serve/", "serve"),
    ("evals/suites/", "suites"),
    ("evals/cli/", "cli"),
]
# What each layer may include besides itself.
ALLOWED = {
    "common": set(),
    "engine": {"common"},
    "schema": set(),  # metric names only: what a suite writes and its view reads
    "reports": {"common", "schema"},
    "metrics": {"common", "reports", "schema"},  # reports/stats: the statistics both share
    "backends": {"common", "engine", "metrics"},
    "runner": {"common", "reports", "backends", "suites"},
    "serve": {"common", "engine", "backends"},
    "suites": {"common", "engine", "reports", "schema", "backends", "metrics"},
    "cli": {"common", "engine", "reports", "schema", "backends", "metrics", "runner", "serve", "suites"},
}


def layer(path):
    for prefix, name in LAYERS:
        if path.startswith(prefix):
            return name
    return None


def suite_of(path):
    """evals/suites/<name>/... -> name; files directly under evals/suites/ are the suite framework."""
    parts = path.split("/")
    return parts[2] if len(parts) > 3 and parts[:2] == ["evals", "suites"] else None


def problems():
    for prefix, name in LAYERS:
        for f in sorted((ROOT / prefix).rglob("*")):
            if f.suffix not in (".h", ".cpp"):
                continue
            rel = f.relative_to(ROOT).as_posix()
            src = layer(rel)
            if src != name:
                continue  # a nested layer's file (reports/schema under reports/): read under its own prefix
            for no, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                inc = m.group(1)
                dst = layer(inc)
                if dst is None:
                    continue  # generated headers (v4b/build_info.h, driver_py.h) and third-party ones
                if dst != src and dst not in ALLOWED[src]:
                    yield f"{rel}:{no}: {src} may not include {dst}: {inc}"
                elif src == dst == "suites" and suite_of(rel) and suite_of(inc) and suite_of(rel) != suite_of(inc):
                    yield f"{rel}:{no}: suite {suite_of(rel)} includes suite {suite_of(inc)} (shared code goes to evals/metrics): {inc}"


def main():
    bad = list(problems())
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} include(s) cross a forbidden layer edge (scripts/check-layering.py says which edges exist)")
        return 1
    print("layering: every include follows the allowed edges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
