#!/usr/bin/env python3
"""Generates the Kafka message codec from protocol/defs/*.def.

Usage: gen.py --defs DIR --out DIR

Writes into OUT (normally ${PROJECT_BINARY_DIR}/gen/protocol/generated):
  messages.h      one struct per request/response (nested structs inside), API traits, X-macro list
  <api>.cc        read/write code for one API's request and response
  api_table.cc    the registry behind protocol/api.h and decode_request()
  sample.h/.cc    fill_sample() for every message (tests only: populates every field of a version)
  defs.json       a machine-readable copy of the definitions, for the reference check

The .def format is described in protocol/README.md. Python 3 standard library only.
"""

import argparse
import json
import os
import re
import sys

SCALARS = {
    # type: (C++ type, fixed wire size or None, reader suffix)
    "int8": ("int8_t", 1, "int8"),
    "int16": ("int16_t", 2, "int16"),
    "int32": ("int32_t", 4, "int32"),
    "int64": ("int64_t", 8, "int64"),
    "uint16": ("uint16_t", 2, "uint16"),
    "uint32": ("uint32_t", 4, "uint32"),
    "float64": ("double", 8, "float64"),
    "bool": ("bool", 1, "bool"),
    "uuid": ("protocol::uuid", 16, "uuid"),
}
VARIABLE = {"string", "bytes", "records"}
CXX_KEYWORDS = {
    "default", "operator", "class", "struct", "public", "private", "template", "delete", "new",
    "this", "union", "register", "namespace", "using", "auto", "const", "static", "return",
}

NO_FLEX = 32767  # "never flexible" as a version number


class DefError(Exception):
    pass


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", s)
    return s.lower()


def parse_range(text, where):
    """'3+' -> (3, None); '0-4' -> (0, 4); '2' -> (2, 2); 'none' -> None."""
    if text == "none":
        return None
    m = re.fullmatch(r"(\d+)\+", text)
    if m:
        return (int(m.group(1)), None)
    m = re.fullmatch(r"(\d+)-(\d+)", text)
    if m:
        return (int(m.group(1)), int(m.group(2)))
    m = re.fullmatch(r"\d+", text)
    if m:
        return (int(text), int(text))
    raise DefError(f"{where}: bad version range '{text}'")


def in_range(rng, v):
    return rng is not None and rng[0] <= v and (rng[1] is None or v <= rng[1])


def range_text(rng):
    if rng is None:
        return "none"
    if rng[1] is None:
        return f"{rng[0]}+"
    return f"{rng[0]}-{rng[1]}"


class Field:
    def __init__(self, name, type_, versions, where):
        self.name = name
        self.type = type_
        self.versions = versions
        self.nullable = None
        self.tag = None
        self.tagged = None
        self.default = None
        self.children = []  # inline struct fields
        self.where = where

    @property
    def is_array(self):
        return self.type.startswith("[]")

    @property
    def elem(self):
        return self.type[2:] if self.is_array else self.type

    @property
    def is_struct(self):
        e = self.elem
        return e not in SCALARS and e not in VARIABLE

    @property
    def cxx(self):
        n = snake(self.name)
        return n + "_" if n in CXX_KEYWORDS else n


class Struct:
    def __init__(self, name, versions):
        self.name = name
        self.versions = versions
        self.fields = []
        self.cxx = snake(name)


class Message:
    def __init__(self, api, kind):
        self.api = api
        self.kind = kind  # "request" or "response"
        self.name = api.name + kind.capitalize()
        self.cxx = snake(api.name) + "_" + kind
        self.root = Struct(self.name, (0, None))
        self.root.cxx = self.cxx
        self.structs = {}  # name -> Struct, all nested structs


class Api:
    def __init__(self, name, key, versions, flexible, source):
        self.name = name
        self.key = key
        self.lo, self.hi = versions
        self.flex = flexible[0] if flexible else NO_FLEX
        self.flex_text = range_text(flexible)
        self.cxx = snake(name)
        self.source = source
        self.request = Message(self, "request")
        self.response = Message(self, "response")

    def versions(self):
        return range(self.lo, self.hi + 1)


def parse_def(path):
    """Parses one .def file into an Api."""
    api = None
    msg = None
    stack = []  # (indent, container fields list)
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for lineno, raw in enumerate(lines, 1):
        where = f"{path}:{lineno}"
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        toks = line.split()
        if indent == 0:
            if toks[0] == "api":
                if len(toks) != 8 or toks[2] != "key" or toks[4] != "versions" or toks[6] != "flexible":
                    raise DefError(f"{where}: expected 'api NAME key N versions A-B flexible F+'")
                vr = parse_range(toks[5], where)
                if vr is None or vr[1] is None:
                    raise DefError(f"{where}: api versions must be a closed range")
                api = Api(toks[1], int(toks[3]), vr, parse_range(toks[7], where), path)
            elif toks[0] in ("request", "response"):
                if api is None:
                    raise DefError(f"{where}: '{toks[0]}' before 'api'")
                msg = api.request if toks[0] == "request" else api.response
                stack = [(0, msg.root.fields)]
            else:
                raise DefError(f"{where}: unknown directive '{toks[0]}'")
            continue
        if msg is None:
            raise DefError(f"{where}: field outside request/response")
        if indent % 2:
            raise DefError(f"{where}: indentation must be a multiple of two spaces")
        level = indent // 2
        while stack and stack[-1][0] >= level:
            stack.pop()
        if not stack or stack[-1][0] != level - 1:
            raise DefError(f"{where}: unexpected indentation")
        if toks[0] == "struct":
            if level != 1 or len(toks) != 3:
                raise DefError(f"{where}: 'struct NAME VERSIONS' belongs at the message level")
            s = Struct(toks[1], parse_range(toks[2], where))
            if s.name in msg.structs:
                raise DefError(f"{where}: struct {s.name} defined twice")
            msg.structs[s.name] = s
            stack.append((level, s.fields))
            continue
        if len(toks) < 3:
            raise DefError(f"{where}: expected 'Name type versions [attributes]'")
        fld = Field(toks[0], toks[1], parse_range(toks[2], where), where)
        if fld.versions is None:
            raise DefError(f"{where}: a field needs versions")
        attrs = toks[3:]
        i = 0
        while i < len(attrs):
            key = attrs[i]
            if i + 1 >= len(attrs):
                raise DefError(f"{where}: attribute '{key}' needs a value")
            val = attrs[i + 1]
            if key == "nullable":
                fld.nullable = parse_range(val, where)
            elif key == "tag":
                fld.tag = int(val)
            elif key == "tagged":
                fld.tagged = parse_range(val, where)
            elif key == "default":
                fld.default = "" if val == '""' else val
            else:
                raise DefError(f"{where}: unknown attribute '{key}'")
            i += 2
        if (fld.tag is None) != (fld.tagged is None):
            raise DefError(f"{where}: 'tag' and 'tagged' go together")
        stack[-1][1].append(fld)
        stack.append((level, fld.children))
    if api is None:
        raise DefError(f"{path}: no 'api' line")
    for m in (api.request, api.response):
        collect_structs(m, m.root.fields)
        check_message(m)
    return api


def collect_structs(msg, fields):
    for fld in fields:
        if fld.children:
            if not fld.is_struct:
                raise DefError(f"{fld.where}: only struct types have nested fields")
            if fld.elem in msg.structs:
                raise DefError(f"{fld.where}: struct {fld.elem} defined twice")
            s = Struct(fld.elem, fld.versions)
            s.fields = fld.children
            if s.cxx == fld.cxx or any(c.cxx == s.cxx for c in fld.children):
                # Kafka names some arrays after their element type (ElectLeaders'
                # TopicPartitions), and some structs after one of their own fields
                # (ListTransactions' TransactionState); C++ cannot have a member and a nested
                # type of one name.
                s.cxx += "_entry"
            msg.structs[s.name] = s
            collect_structs(msg, fld.children)


def check_message(msg):
    # Common structs' own nested structs.
    for s in list(msg.structs.values()):
        for fld in s.fields:
            if fld.children and fld.elem not in msg.structs:
                collect_structs(msg, [fld])

    def walk(fields):
        for fld in fields:
            if fld.is_struct and fld.elem not in msg.structs:
                raise DefError(f"{fld.where}: unknown type '{fld.type}'")
            if fld.elem == "records" and fld.is_array:
                raise DefError(f"{fld.where}: arrays of records are not supported")
            if fld.tag is not None and fld.elem == "records":
                raise DefError(f"{fld.where}: records fields cannot be tagged")
            if fld.nullable and not (fld.is_array or fld.elem in VARIABLE):
                raise DefError(f"{fld.where}: only strings, bytes, records and arrays are nullable")

    walk(msg.root.fields)
    for s in msg.structs.values():
        walk(s.fields)
    root_names = {f.cxx for f in msg.root.fields}
    for s in msg.structs.values():
        if s.cxx in root_names or s.cxx == msg.cxx:
            s.cxx += "_entry"


# ----------------------------------------------------------------------------------------------
# C++ emission helpers


def version_cond(rng, api, var="version"):
    """C++ condition for `version in rng` within the API's range, or None when always true,
    or 'false' when never."""
    lo, hi = rng
    if hi is not None and hi < api.lo or lo > api.hi:
        return "false"
    parts = []
    if lo > api.lo:
        parts.append(f"{var} >= {lo}")
    if hi is not None and hi < api.hi:
        parts.append(f"{var} <= {hi}")
    return " && ".join(parts) if parts else None


def nullable_cond(fld, api):
    if fld.nullable is None:
        return "false"
    c = version_cond(fld.nullable, api)
    return "true" if c is None else f"({c})"


def active(fld, api):
    """Whether the field exists in any version of the API's range."""
    rng = fld.tagged if fld.tag is not None else fld.versions
    return version_cond(rng, api) != "false" and version_cond(fld.versions, api) != "false"


def elem_cxx(msg, elem):
    if elem in SCALARS:
        return SCALARS[elem][0]
    if elem == "string":
        return "std::string"
    if elem == "bytes":
        return "std::vector<std::byte>"
    if elem == "records":
        return "protocol::records"
    return f"{msg.cxx}::{msg.structs[elem].cxx}"


def field_cxx(msg, fld):
    if fld.elem == "records":
        return "protocol::records"
    base = elem_cxx(msg, fld.elem)
    if fld.is_array:
        base = f"std::vector<{base}>"
    if fld.nullable is not None:
        base = f"std::optional<{base}>"
    return base


def int_literal(ctype, text, where):
    try:
        v = int(text, 0)
    except ValueError:
        raise DefError(f"{where}: bad integer default '{text}'")
    if ctype == "int32_t" and v == -(2**31):
        return "INT32_MIN"
    if ctype == "int64_t" and v == -(2**63):
        return "INT64_MIN"
    return f"{v}" if v >= 0 else f"({v})"


def default_init(msg, fld):
    """Initializer expression for the member (None for value-initialisation)."""
    t = fld.elem
    d = fld.default
    if fld.is_array:
        if fld.nullable is None or d == "null":
            return None  # empty vector / null (std::nullopt)
        return "std::in_place"
    if t in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
        return int_literal(SCALARS[t][0], d, fld.where) if d is not None else "0"
    if t == "float64":
        return d if d is not None else "0.0"
    if t == "bool":
        if d not in (None, "true", "false"):
            raise DefError(f"{fld.where}: bool default must be true or false")
        return d or "false"
    if t in ("string", "bytes"):
        if d == "null":
            if fld.nullable is None:
                raise DefError(f"{fld.where}: null default on a non-nullable field")
            return None
        if fld.nullable is not None:
            if d:
                return f"std::string({json.dumps(d)})"
            return "std::in_place"
        if d:
            return json.dumps(d)
        return None
    return None


def member_decl(msg, fld):
    init = default_init(msg, fld)
    t = field_cxx(msg, fld)
    if init is None:
        return f"{t} {fld.cxx}{{}};"
    return f"{t} {fld.cxx}{{{init}}};"


def default_value_expr(msg, fld):
    init = default_init(msg, fld)
    t = field_cxx(msg, fld)
    return f"{t}{{{init}}}" if init is not None else f"{t}{{}}"


class Out:
    def __init__(self):
        self.lines = []
        self.ind = 0

    def __call__(self, text=""):
        if text:
            self.lines.append("    " * self.ind + text)
        else:
            self.lines.append("")

    def block(self, head):
        self(head + " {" if head else "{")
        self.ind += 1

    def end(self, tail="}"):
        self.ind -= 1
        self(tail)

    def text(self):
        return "\n".join(self.lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Decoding


def emit_read_value(o, msg, fld, target, flex, api):
    """Reads one (non-array) value of fld's element type into `target`. Array elements are
    never null (nullability belongs to the array)."""
    t = fld.elem
    nc = nullable_cond(fld, api)
    if fld.is_array and t in VARIABLE:
        o(f"{target} = r.read_{'string' if t == 'string' else 'bytes'}({flex});")
        return
    if t in SCALARS:
        o(f"{target} = r.read_{SCALARS[t][2]}();")
    elif t == "string":
        if fld.nullable is not None:
            o(f"{target} = r.read_nullable_string({flex}, {nc});")
        else:
            o(f"{target} = r.read_string({flex});")
    elif t == "bytes":
        if fld.nullable is not None:
            o(f"{target} = r.read_nullable_bytes({flex}, {nc});")
        else:
            o(f"{target} = r.read_bytes({flex});")
    elif t == "records":
        o(f"{target} = r.read_records({flex}, {nc});")
    else:
        o(f"{target}.read(r, version);")


def elem_min_size(msg, elem, flexible_possible, api, memo):
    if elem in SCALARS:
        return SCALARS[elem][1]
    if elem in VARIABLE:
        return 1 if flexible_possible else 2
    return struct_min_size(msg, msg.structs[elem], api, memo)


def struct_min_size(msg, s, api, memo):
    """Smallest wire size of the struct over the API's versions (at least 1)."""
    if s.name in memo:
        return memo[s.name]
    memo[s.name] = 1  # guards recursion
    best = None
    for v in api.versions():
        flexible = v >= api.flex
        size = 1 if flexible else 0
        for fld in s.fields:
            if fld.tag is not None or not in_range(fld.versions, v):
                continue
            if fld.is_array:
                size += 1 if flexible else 4
            elif fld.elem in ("bytes", "records"):
                size += 1 if flexible else 4
            else:
                size += elem_min_size(msg, fld.elem, flexible, api, memo)
        best = size if best is None else min(best, size)
    memo[s.name] = max(best or 1, 1)
    return memo[s.name]


def emit_read_field(o, msg, fld, flex, api, memo):
    if not fld.is_array:
        emit_read_value(o, msg, fld, fld.cxx, flex, api)
        return
    nc = nullable_cond(fld, api)
    minsz = elem_min_size(msg, fld.elem, True, api, memo) if fld.elem in VARIABLE else \
        elem_min_size(msg, fld.elem, False, api, memo)
    o.block("")
    o(f"const int32_t n = r.read_array_length({flex}, {nc}, {minsz});")
    if fld.nullable is not None:
        o.block("if (n < 0)")
        o(f"{fld.cxx}.reset();")
        o.end()
        o.block("else")
        o(f"auto& v = {fld.cxx}.emplace();")
    else:
        o.block("")
        o(f"auto& v = {fld.cxx};")
        o("v.clear();")
    o("v.reserve(r.reserve_hint(n));")
    o.block("for (int32_t i = 0; i < n && r.ok(); ++i)")
    if fld.is_struct:
        o("v.emplace_back().read(r, version);")
    else:
        emit_read_value(o, msg, fld, "v.emplace_back()", flex, api)
    o.end()
    o.end()
    o.end()


def emit_struct_read(o, msg, s, api, memo):
    o.block(f"void {qualified(msg, s)}::read(reader& r, int16_t version)")
    o(f"[[maybe_unused]] const bool flexible = version >= {api.flex};")
    for fld in s.fields:
        if fld.tag is not None or not active(fld, api):
            continue
        c = version_cond(fld.versions, api)
        if c:
            o.block(f"if ({c})")
        emit_read_field(o, msg, fld, "flexible", api, memo)
        if c:
            o.end()
    tagged = [f for f in s.fields if f.tag is not None and active(f, api)]
    if api.flex != NO_FLEX:
        o.block("if (flexible)")
        if not tagged:
            o("r.read_unknown_tags(unknown_tags);")
        else:
            o("const uint32_t count = r.read_tag_count();")
            o.block("for (uint32_t ti = 0; ti < count && r.ok(); ++ti)")
            o("const uint32_t tag = r.read_uvarint32();")
            o("const uint32_t size = r.read_tag_size();")
            o("const size_t end = r.position() + size;")
            o("bool known = false;")
            o.block("switch (tag)")
            for fld in sorted(tagged, key=lambda f: f.tag):
                o(f"case {fld.tag}:")
                o.ind += 1
                c = version_cond(fld.tagged, api)
                o.block(f"if ({c or 'true'})")
                o("known = true;")
                emit_read_field(o, msg, fld, "true", api, memo)
                o("r.expect_position(end);")
                o.end()
                o("break;")
                o.ind -= 1
            o("default:")
            o.ind += 1
            o("break;")
            o.ind -= 1
            o.end()
            o("if (!known) unknown_tags.push_back({tag, r.read_blob(size)});")
            o.end()
        o.end()
    o.end()
    o()


# ----------------------------------------------------------------------------------------------
# Encoding


def emit_write_value(o, msg, fld, value, flex, api, w="w"):
    t = fld.elem
    nc = nullable_cond(fld, api)
    if fld.is_array and t in VARIABLE:
        o(f"{w}.write_{'string' if t == 'string' else 'bytes'}({value}, {flex});")
        return
    if t in SCALARS:
        o(f"{w}.write_{SCALARS[t][2]}({value});")
    elif t == "string":
        if fld.nullable is not None:
            o(f"{w}.write_nullable_string({value}, {flex}, {nc});")
        else:
            o(f"{w}.write_string({value}, {flex});")
    elif t == "bytes":
        if fld.nullable is not None:
            o(f"{w}.write_nullable_bytes({value}, {flex}, {nc});")
        else:
            o(f"{w}.write_bytes({value}, {flex});")
    elif t == "records":
        o(f"{w}.write_records({value}, {flex}, {nc});")
    else:
        o(f"{value}.write({w}, version);")


def emit_write_field(o, msg, fld, flex, api, w="w"):
    if not fld.is_array:
        emit_write_value(o, msg, fld, fld.cxx, flex, api, w)
        return
    nc = nullable_cond(fld, api)
    o.block("")
    if fld.nullable is not None:
        o(f"const auto* v = {fld.cxx} ? &*{fld.cxx} : nullptr;")
    else:
        o(f"const auto* v = &{fld.cxx};")
    o(f"{w}.write_array_length(v ? static_cast<int64_t>(v->size()) : -1, {flex}, {nc});")
    o.block("if (v)")
    o.block("for (const auto& e : *v)")
    emit_write_value(o, msg, fld, "e", flex, api, w)
    o.end()
    o.end()
    o.end()


def emit_struct_write(o, msg, s, api):
    o.block(f"void {qualified(msg, s)}::write(writer& w, int16_t version) const")
    o(f"[[maybe_unused]] const bool flexible = version >= {api.flex};")
    for fld in s.fields:
        if fld.tag is not None or not active(fld, api):
            continue
        c = version_cond(fld.versions, api)
        if c:
            o.block(f"if ({c})")
        emit_write_field(o, msg, fld, "flexible", api)
        if c:
            o.end()
    tagged = [f for f in s.fields if f.tag is not None and active(f, api)]
    if api.flex != NO_FLEX:
        o.block("if (flexible)")
        if not tagged:
            o("w.write_tags({}, unknown_tags);")
        else:
            o(f"tagged_field known[{len(tagged)}];")
            o("size_t known_count = 0;")
            for fld in sorted(tagged, key=lambda f: f.tag):
                c = version_cond(fld.tagged, api)
                cond = f"!({fld.cxx} == {default_value_expr(msg, fld)})"
                if c:
                    cond = f"({c}) && {cond}"
                o.block(f"if ({cond})")
                o("writer t;")
                emit_write_field(o, msg, fld, "true", api, "t")
                o(f"known[known_count++] = tagged_field{{{fld.tag}, t.take_bytes()}};")
                o.end()
            o("w.write_tags(std::span<const tagged_field>(known, known_count), unknown_tags);")
        o.end()
    o.end()
    o()


def qualified(msg, s):
    if s is msg.root:
        return msg.cxx
    return f"{msg.cxx}::{s.cxx}"


def struct_order(msg):
    """Nested structs, each after the structs it contains."""
    order, seen = [], set()

    def visit(s):
        if s.name in seen:
            return
        seen.add(s.name)
        for fld in s.fields:
            if fld.is_struct:
                visit(msg.structs[fld.elem])
        order.append(s)

    for fld in msg.root.fields:
        if fld.is_struct:
            visit(msg.structs[fld.elem])
    for s in msg.structs.values():
        visit(s)
    return order


def emit_struct_decl(o, msg, s, api, is_root):
    if is_root:
        o(f"// {api.name} {msg.kind}, versions {api.lo}-{api.hi}"
          + (f", flexible from v{api.flex}." if api.flex != NO_FLEX else ", never flexible."))
    o.block(f"struct {s.cxx}")
    if is_root:
        o(f"static constexpr int16_t api_key = {api.key};")
        for ns in struct_order(msg):
            emit_struct_decl(o, msg, ns, api, False)
    for fld in s.fields:
        if not active(fld, api):
            continue
        note = f"versions {range_text(fld.versions)}"
        if fld.nullable is not None:
            note += f", nullable {range_text(fld.nullable)}"
        if fld.tag is not None:
            note += f", tag {fld.tag} in {range_text(fld.tagged)}"
        o(f"{member_decl(msg, fld)}  // {note}")
    o("tagged_fields unknown_tags;  // tags this build does not know, kept for re-encoding")
    o()
    o("void read(reader& r, int16_t version);")
    o("void write(writer& w, int16_t version) const;")
    if is_root:
        o("// Decodes the message body. Errors: protocol::errc::unsupported_version,")
        o("// base::errc::malformed / limit_exceeded. Bytes after the body are left unread.")
        o("[[nodiscard]] result<void> decode(reader& r, int16_t version);")
        o("// Encodes the message body; `version` must be within the API's range.")
        o("void encode(writer& w, int16_t version) const;")
    o(f"bool operator==(const {s.cxx}&) const = default;")
    o.end("};")
    o()


def emit_header(apis):
    o = Out()
    o("// Generated by protocol/codegen/gen.py from protocol/defs/*.def. Do not edit.")
    o("#pragma once")
    o()
    o("#include <cstddef>")
    o("#include <cstdint>")
    o("#include <optional>")
    o("#include <string>")
    o("#include <string_view>")
    o("#include <vector>")
    o()
    o('#include "protocol/errc.h"')
    o('#include "protocol/reader.h"')
    o('#include "protocol/types.h"')
    o('#include "protocol/writer.h"')
    o()
    o("namespace sluice::protocol {")
    o()
    o(f"inline constexpr int16_t not_flexible = {NO_FLEX};")
    o()
    for api in apis:
        for msg in (api.request, api.response):
            emit_struct_decl(o, msg, msg.root, api, True)
        o(f"// API trait: {api.name}.")
        o.block(f"struct {api.cxx}_api")
        o(f"static constexpr int16_t key = {api.key};")
        o(f'static constexpr std::string_view name = "{api.name}";')
        o(f"static constexpr int16_t min_version = {api.lo};")
        o(f"static constexpr int16_t max_version = {api.hi};")
        o(f"static constexpr int16_t flexible_from = {api.flex if api.flex != NO_FLEX else 'not_flexible'};")
        o(f"using request = {api.request.cxx};")
        o(f"using response = {api.response.cxx};")
        o.end("};")
        o()
    o("}  // namespace sluice::protocol")
    o()
    o("// X(api trait, request type, response type) for every API, in api-key order.")
    o("#define SLUICE_PROTOCOL_APIS(X) \\")
    for api in sorted(apis, key=lambda a: a.key):
        o(f"    X({api.cxx}_api, {api.request.cxx}, {api.response.cxx}) \\")
    o("")
    return o.text()


def emit_api_cc(api):
    o = Out()
    o("// Generated by protocol/codegen/gen.py from " + os.path.basename(api.source) + ". Do not edit.")
    o('#include "protocol/generated/messages.h"')
    o()
    o("#include <climits>")
    o("#include <cstdint>")
    o()
    o("#include \"base/assert.h\"")
    o()
    o("namespace sluice::protocol {")
    o()
    memo = {}
    for msg in (api.request, api.response):
        memo = {}
        for s in struct_order(msg) + [msg.root]:
            emit_struct_read(o, msg, s, api, memo)
            emit_struct_write(o, msg, s, api)
        o.block(f"result<void> {msg.cxx}::decode(reader& r, int16_t version)")
        o.block(f"if (version < {api.lo} || version > {api.hi})")
        o(f'return sluice::error(errc::unsupported_version, "{api.name} v" + std::to_string(version));')
        o.end()
        o("read(r, version);")
        o("return r.status();")
        o.end()
        o()
        o.block(f"void {msg.cxx}::encode(writer& w, int16_t version) const")
        o(f'SLUICE_ASSERT(version >= {api.lo} && version <= {api.hi}, '
          f'"{api.name} {msg.kind} version out of range");')
        o("write(w, version);")
        o.end()
        o()
    o("}  // namespace sluice::protocol")
    return o.text()


def emit_table_cc(apis):
    o = Out()
    o("// Generated by protocol/codegen/gen.py. Do not edit.")
    o('#include "protocol/api.h"')
    o('#include "protocol/request.h"')
    o()
    o("namespace sluice::protocol {")
    o()
    o.block("namespace")
    o.block("constexpr api_info all[] =")
    for api in sorted(apis, key=lambda a: a.key):
        o(f"{{{api.key}, \"{api.name}\", {api.lo}, {api.hi}, {api.cxx}_api::flexible_from}},")
    o.end("};")
    o.end("}  // namespace")
    o()
    o("std::span<const api_info> all_apis() { return all; }")
    o()
    o.block("const api_info* find_api(int16_t key)")
    o.block("for (const auto& a : all)")
    o("if (a.key == key) return &a;")
    o.end()
    o("return nullptr;")
    o.end()
    o()
    o.block("result<any_request> decode_request(int16_t api_key, int16_t version, reader& r)")
    o.block("switch (api_key)")
    for api in sorted(apis, key=lambda a: a.key):
        o.block(f"case {api.key}:")
        o(f"{api.request.cxx} m;")
        o("if (auto st = m.decode(r, version); !st) return st.error();")
        o("return any_request(std::move(m));")
        o.end()
    o.end()
    o('return sluice::error(errc::unsupported_api, "api key " + std::to_string(api_key));')
    o.end()
    o()
    o("}  // namespace sluice::protocol")
    return o.text()


# ----------------------------------------------------------------------------------------------
# Samples for tests


def emit_sample_value(o, msg, fld, target, api):
    t = fld.elem
    if t in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
        o(f"{target} = static_cast<{SCALARS[t][0]}>(g.next());")
    elif t == "float64":
        o(f"{target} = static_cast<double>(g.next() % 1000000) / 8.0;")
    elif t == "bool":
        o(f"{target} = (g.next() & 1) != 0;")
    elif t == "uuid":
        o(f"{target} = g.make_uuid();")
    elif t == "string":
        o(f"{target} = g.string();")
    elif t == "bytes":
        o(f"{target} = g.bytes();")
    elif t == "records":
        o(f"{target} = records::from_memory(g.blob());")
    else:
        o(f"fill_sample({target}, version, g);")


def emit_sample_field(o, msg, fld, api):
    nc = nullable_cond(fld, api)
    if fld.nullable is not None:
        o.block(f"if ({nc} && g.next() % 4 == 0)")
        if fld.elem == "records":
            o(f"x.{fld.cxx} = records();")
        else:
            o(f"x.{fld.cxx}.reset();")
        o.end()
        o.block("else")
    else:
        o.block("")
    if fld.is_array:
        target = f"x.{fld.cxx}" + (".emplace()" if fld.nullable is not None else "")
        o(f"auto& v = {target};")
        o("v.clear();")
        o("const uint64_t n = g.next() % 3;")
        o.block("for (uint64_t i = 0; i < n; ++i)")
        emit_sample_value(o, msg, fld, "v.emplace_back()", api)
        o.end()
    elif fld.elem in ("string", "bytes") and fld.nullable is not None:
        emit_sample_value(o, msg, fld, f"x.{fld.cxx}.emplace()", api)
    else:
        emit_sample_value(o, msg, fld, f"x.{fld.cxx}", api)
    o.end()


def emit_samples(apis):
    h = Out()
    h("// Generated by protocol/codegen/gen.py. Do not edit. Test support only.")
    h("#pragma once")
    h()
    h('#include "protocol/generated/messages.h"')
    h('#include "protocol/tests/sample_rng.h"')
    h()
    h("namespace sluice::protocol {")
    c = Out()
    c("// Generated by protocol/codegen/gen.py. Do not edit. Test support only.")
    c('#include "protocol/generated/sample.h"')
    c()
    c("namespace sluice::protocol {")
    c()
    for api in apis:
        for msg in (api.request, api.response):
            for s in struct_order(msg) + [msg.root]:
                sig = f"void fill_sample({qualified(msg, s)}& x, int16_t version, sample_rng& g)"
                h(sig + ";")
                c.block(sig)
                c("(void)version;")
                for fld in s.fields:
                    if not active(fld, api):
                        continue
                    rng = fld.tagged if fld.tag is not None else fld.versions
                    cond = version_cond(rng, api)
                    c.block(f"if ({cond or 'true'})")
                    emit_sample_field(c, msg, fld, api)
                    c.end()
                c.end()
                c()
    h("}  // namespace sluice::protocol")
    c("}  // namespace sluice::protocol")
    return h.text(), c.text()


# ----------------------------------------------------------------------------------------------
# Machine-readable description


def describe_fields(msg, fields):
    out = []
    for fld in fields:
        d = {"name": fld.name, "type": fld.type, "versions": range_text(fld.versions)}
        if fld.nullable is not None:
            d["nullableVersions"] = range_text(fld.nullable)
        if fld.tag is not None:
            d["tag"] = fld.tag
            d["taggedVersions"] = range_text(fld.tagged)
        if fld.default is not None:
            d["default"] = fld.default
        if fld.is_struct:
            d["fields"] = describe_fields(msg, msg.structs[fld.elem].fields)
        out.append(d)
    return out


def describe(apis):
    doc = []
    for api in apis:
        entry = {"name": api.name, "apiKey": api.key, "minVersion": api.lo, "maxVersion": api.hi,
                 "flexibleVersions": api.flex_text}
        for msg in (api.request, api.response):
            entry[msg.kind] = describe_fields(msg, msg.root.fields)
        doc.append(entry)
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--defs", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    paths = sorted(os.path.join(args.defs, p) for p in os.listdir(args.defs) if p.endswith(".def"))
    try:
        apis = [parse_def(p) for p in paths]
    except DefError as e:
        print(f"gen.py: {e}", file=sys.stderr)
        return 1
    keys = {}
    for api in apis:
        if api.key in keys:
            print(f"gen.py: api key {api.key} used by {keys[api.key]} and {api.name}", file=sys.stderr)
            return 1
        keys[api.key] = api.name
    os.makedirs(args.out, exist_ok=True)
    try:
        write_if_changed(os.path.join(args.out, "messages.h"), emit_header(apis))
        for api in apis:
            write_if_changed(os.path.join(args.out, stem(api.source) + ".cc"), emit_api_cc(api))
        write_if_changed(os.path.join(args.out, "api_table.cc"), emit_table_cc(apis))
        sh, sc = emit_samples(apis)
        write_if_changed(os.path.join(args.out, "sample.h"), sh)
        write_if_changed(os.path.join(args.out, "sample.cc"), sc)
        write_if_changed(os.path.join(args.out, "defs.json"), describe(apis))
    except DefError as e:
        print(f"gen.py: {e}", file=sys.stderr)
        return 1
    # Touch outputs so the build tool sees them as newer than the inputs even when unchanged.
    for name in os.listdir(args.out):
        os.utime(os.path.join(args.out, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
