#!/usr/bin/env python3
"""Writes our Mesos v1 .proto files from the field tables of the protocol reference.

The reference (`shared/reference/mesos-v1.md`, section 4) lists every message we use as a
table of `field | # | type | label`, and every enum as `**enum Name**: A=0, B=1`. This script
turns those tables into proto2 files with the same packages, names, numbers, types and labels,
so the wire format cannot drift from the reference by a typing mistake.

Usage: proto/tools/tables2proto.py PATH/TO/mesos-v1.md proto/mesos/v1
       (add --check to compare with the committed files instead of writing them)
"""
import re
import sys
from pathlib import Path

SCALARS = {
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
    "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
}
PACKAGES = {"": "mesos.v1", "scheduler": "mesos.v1.scheduler", "executor": "mesos.v1.executor"}


def parse(md: str):
    """Returns (messages, enums): name -> list of fields / list of (value, number)."""
    section = md.split("## 4. Protobuf wire format", 1)[1].split("## 5.", 1)[0]
    messages, enums, order = {}, {}, []
    current = None
    for line in section.splitlines():
        m = re.match(r"^\*\*enum ([\w.]+)\*\*: (.*)$", line)
        if m:
            enums[m.group(1)] = [
                (v.split("=")[0].strip(), int(v.split("=")[1])) for v in m.group(2).split(",")
            ]
            order.append(("enum", m.group(1)))
            current = None
            continue
        m = re.match(r"^\*\*([\w.]+)\*\*\s*$", line)
        if m:
            current = m.group(1)
            messages[current] = []
            order.append(("message", current))
            continue
        m = re.match(r"^\| (\w+) \| (\d+) \| ([^|]+?) \| ([^|]+?) \|$", line)
        if m and current:
            name, number, ftype, label = m.groups()
            messages[current].append((name, int(number), ftype.strip(), label.strip()))
    return messages, enums, order


def package_of(name: str) -> str:
    head = name.split(".", 1)[0]
    return head if head in ("scheduler", "executor") else ""


def local(name: str) -> str:
    """Name inside its package: `scheduler.Call.Type` -> `Call.Type`."""
    pkg = package_of(name)
    return name[len(pkg) + 1:] if pkg else name


def field_type(ftype: str, pkg: str) -> str:
    if ftype in SCALARS:
        return ftype
    m = re.match(r"map<(\w+), ([\w.]+)>", ftype)
    if m:
        return f"map<{m.group(1)}, {field_type(m.group(2), pkg)}>"
    # Fully qualify every message/enum reference so nesting never changes resolution.
    target_pkg = package_of(ftype)
    return "." + PACKAGES[target_pkg] + "." + local(ftype)


def render(messages, enums, order, pkg: str) -> str:
    # Referenced message types without a table are empty marker messages in Mesos
    # (e.g. AttributeConstraint.Predicate.Exists): declare them empty.
    referenced = set()
    for fields in messages.values():
        for _, _, ftype, _ in fields:
            inner = re.sub(r"map<\w+, ([\w.]+)>", r"\1", ftype)
            if inner not in SCALARS:
                referenced.add(inner)
    for ref in sorted(referenced):
        if ref not in messages and ref not in enums:
            messages[ref] = []
            order.append(("message", ref))

    names = [n for kind, n in order if package_of(n) == pkg]
    tree = {}  # parent local name -> children (kind, local name)
    kinds = dict((n, k) for k, n in order)
    for n in names:
        loc = local(n)
        parent = loc.rsplit(".", 1)[0] if "." in loc else ""
        tree.setdefault(parent, []).append((kinds[n], loc))

    out = []

    def emit(kind, loc, depth):
        ind = "  " * depth
        short = loc.rsplit(".", 1)[-1]
        full = (pkg + "." if pkg else "") + loc
        if kind == "enum":
            out.append(f"{ind}enum {short} {{")
            for value, number in enums[full]:
                out.append(f"{ind}  {value} = {number};")
            out.append(f"{ind}}}")
            return
        out.append(f"{ind}message {short} {{")
        oneofs = {}
        for name, number, ftype, label in messages[full]:
            m = re.match(r"optional \(oneof (\w+)\)", label)
            if m:
                oneofs.setdefault(m.group(1), []).append((name, number, ftype))
                continue
            t = field_type(ftype, pkg)
            if label == "(map)":
                out.append(f"{ind}  {t} {name} = {number};")
                continue
            lab = label.split(" ", 1)[0]
            opts = []
            dm = re.search(r"default=([^,)]+)", label)
            if dm:
                default = dm.group(1)
                if ftype == "string":
                    default = f'"{default}"'
                elif ftype == "double" and re.fullmatch(r"-?\d+", default):
                    default = default + ".0"
                opts.append(f"default = {default}")
            if "deprecated" in label:
                opts.append("deprecated = true")
            suffix = f" [{', '.join(opts)}]" if opts else ""
            out.append(f"{ind}  {lab} {t} {name} = {number}{suffix};")
        for oneof, fields in oneofs.items():
            out.append(f"{ind}  oneof {oneof} {{")
            for name, number, ftype in fields:
                out.append(f"{ind}    {field_type(ftype, pkg)} {name} = {number};")
            out.append(f"{ind}  }}")
        for child_kind, child in tree.get(loc, []):
            emit(child_kind, child, depth + 1)
        out.append(f"{ind}}}")

    for kind, loc in tree.get("", []):
        emit(kind, loc, 0)
        out.append("")
    return "\n".join(out)


HEADERS = {
    "": ("mesos/v1/mesos.proto", []),
    "scheduler": ("mesos/v1/scheduler/scheduler.proto", ["mesos/v1/mesos.proto"]),
    "executor": ("mesos/v1/executor/executor.proto", ["mesos/v1/mesos.proto"]),
}


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    check = "--check" in sys.argv
    md = Path(args[0]).read_text()
    out_root = Path(args[1])
    messages, enums, order = parse(md)
    status = 0
    for pkg, (path, imports) in HEADERS.items():
        body = render(dict(messages), enums, list(order), pkg)
        text = (
            "// Generated by proto/tools/tables2proto.py from the field tables of the Mesos v1\n"
            "// protocol reference (section 4). Field names, numbers, types and labels follow\n"
            "// Mesos 1.12 exactly; edit the generator or the tables, not this file.\n"
            'syntax = "proto2";\n\n'
            f"package {PACKAGES[pkg]};\n\n"
            + "".join(f'import "{i}";\n' for i in imports)
            + ("\n" if imports else "")
            + body
        )
        target = out_root / path
        if check:
            if not target.exists() or target.read_text() != text:
                print(f"{target} differs from the reference tables", file=sys.stderr)
                status = 1
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    sys.exit(status)


if __name__ == "__main__":
    main()
