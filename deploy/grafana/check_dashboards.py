#!/usr/bin/env python3
"""Checks that every series a dashboard queries exists: a family in metrics/README.md (plus the
histogram suffixes) or a rule recorded in deploy/prometheus/*.yml. Run by CTest (tests/metrics)."""
import glob, json, os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
known = set()
for line in open(os.path.join(root, "metrics", "README.md")):
    m = re.match(r"^\|\s*`((embed|process)_[a-z0-9_]+)`\s*\|\s*([a-z]+)", line)
    if m:
        known.add(m.group(1))
        if m.group(3) == "histogram":
            known.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
for rules in glob.glob(os.path.join(root, "deploy", "prometheus", "*.yml")):
    known.update(re.findall(r"^\s*- record:\s*(\S+)", open(rules).read(), re.M))
known.add("up")

bad = []
for path in sorted(glob.glob(os.path.join(root, "deploy", "grafana", "dashboards", "*.json"))):
    for panel in json.load(open(path))["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\b((?:embed|process)[a-z0-9_:]*|up)\b(?=\s*[{\[)=<> ]|$)", target["expr"]):
                if name not in known:
                    bad.append(f"{os.path.basename(path)}: {panel['title']}: unknown series {name}")
print("\n".join(bad) or "dashboards reference only known series")
sys.exit(1 if bad else 0)
