#!/usr/bin/env python3
"""Checks Sluice's message definitions against Apache Kafka's message JSON (DESIGN.md section 6).

For every API we define and every version in our range, the request and the response are
compared field by field: name, type, order, nullability, tagged-ness (tag id) and default, at that
exact version, together with the api key and whether the version is flexible.

Input: defs.json written by protocol/codegen/gen.py, and the reference folder. Exits 77 (a
skipped ctest test) when the reference folder is absent, 1 on any difference.
"""

import argparse
import json
import os
import re
import sys

SKIP = 77


def parse_range(text):
    if text is None or text == "none":
        return None
    if text.endswith("+"):
        return (int(text[:-1]), None)
    if "-" in text:
        a, b = text.split("-")
        return (int(a), int(b))
    return (int(text), int(text))


def in_range(rng, v):
    return rng is not None and rng[0] <= v and (rng[1] is None or v <= rng[1])


def strip_comments(text):
    """Removes // comments outside string literals (the reference files use them freely)."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def load_reference(path):
    with open(path, encoding="utf-8") as f:
        return json.loads(strip_comments(f.read()))


def norm_default(field):
    d = field.get("default")
    if d is None:
        return None
    if isinstance(d, bool):
        return "true" if d else "false"
    d = str(d)
    if re.fullmatch(r"-?0x[0-9a-fA-F]+", d) or re.fullmatch(r"-?\d+", d):
        return str(int(d, 0))
    return d


def struct_index(message):
    """Every named struct of a reference message: common structs and inline ones."""
    index = {}

    def walk(fields):
        for f in fields:
            if "fields" in f:
                index[f["type"].replace("[]", "")] = f["fields"]
                walk(f["fields"])

    for c in message.get("commonStructs", []):
        index[c["name"]] = c["fields"]
        walk(c["fields"])
    walk(message.get("fields", []))
    return index


SCALAR = {"int8", "int16", "int32", "int64", "uint16", "uint32", "float64", "bool", "string",
          "bytes", "records", "uuid"}


def flatten(fields, version, index, path=""):
    """The fields present at `version`, as comparable tuples, depth first."""
    out = []
    for f in fields:
        if not in_range(parse_range(f["versions"]), version):
            continue
        tagged = in_range(parse_range(f.get("taggedVersions")), version)
        tag = f.get("tag") if tagged else None
        nullable = in_range(parse_range(f.get("nullableVersions")), version)
        name = path + f["name"]
        out.append((name, f["type"], "nullable" if nullable else "-",
                    f"tag {tag}" if tag is not None else "-", norm_default(f)))
        elem = f["type"].replace("[]", "")
        if elem not in SCALAR:
            sub = f.get("fields")
            if sub is None:
                sub = index.get(elem)
            if sub is None:
                out.append((name, "unresolved struct " + elem, "-", "-", None))
                continue
            out.extend(flatten(sub, version, index, name + "."))
    return out


def compare_message(api, kind, ours, ref, errors):
    ref_index = struct_index(ref)
    ref_valid = parse_range(ref["validVersions"])
    ref_flex = parse_range(ref.get("flexibleVersions", "none"))
    our_flex = parse_range(api["flexibleVersions"])
    label = f"{api['name']} {kind}"
    if ref["apiKey"] != api["apiKey"]:
        errors.append(f"{label}: api key {api['apiKey']}, reference {ref['apiKey']}")
    for v in range(api["minVersion"], api["maxVersion"] + 1):
        if not in_range(ref_valid, v):
            errors.append(f"{label} v{v}: not a valid version in the reference")
            continue
        if in_range(our_flex, v) != in_range(ref_flex, v):
            errors.append(f"{label} v{v}: flexible mismatch")
        mine = flatten(ours, v, {})
        theirs = flatten(ref["fields"], v, ref_index)
        if mine != theirs:
            for i in range(max(len(mine), len(theirs))):
                a = mine[i] if i < len(mine) else None
                b = theirs[i] if i < len(theirs) else None
                if a != b:
                    errors.append(f"{label} v{v}: field #{i}: ours {a}, reference {b}")
                    break


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--defs-json", required=True)
    ap.add_argument("--reference", required=True)
    args = ap.parse_args()
    if not os.path.isdir(args.reference):
        print(f"SKIPPED: reference folder {args.reference} is absent; nothing to check against")
        return SKIP
    with open(args.defs_json, encoding="utf-8") as f:
        apis = json.load(f)
    errors = []
    checked = 0
    for api in apis:
        for kind in ("request", "response"):
            path = os.path.join(args.reference, api["name"] + kind.capitalize() + ".json")
            if not os.path.exists(path):
                errors.append(f"{api['name']} {kind}: no reference file {path}")
                continue
            compare_message(api, kind, api[kind], load_reference(path), errors)
            checked += api["maxVersion"] - api["minVersion"] + 1
    for e in errors:
        print("MISMATCH " + e)
    print(f"checked {len(apis)} APIs, {checked} message versions, {len(errors)} mismatches")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
