#!/usr/bin/env python3
"""gen-api-doc.py - write docs/API.md, the C API reference, from include/akidb.h.

    scripts/gen-api-doc.py            rewrite docs/API.md
    scripts/gen-api-doc.py --check    exit 1 if docs/API.md is not what the
                                      header generates (make test runs this)

Why generated: the header is the contract and its comments are the
documentation (ownership, errors, thread rules on every declaration); a
hand-written copy would drift.  The reference follows the header's own
order and sections (its "/* ---- Title ---- */" banners).

How the header is read: a doc comment belongs to the declarations that
follow it with no blank line in between (so one comment can document a
group, like the akidb_store_* wrappers); a comment followed by a blank line
is prose of its section.  Declarations are functions (AKIDB_API ...;),
typedefs and structs (up to the ';' closing them) and public macros
(#define AKIDB_..., with continuation lines).  Standard library only.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join(ROOT, "include", "akidb.h")
OUT = os.path.join(ROOT, "docs", "API.md")

# Preprocessor lines that are plumbing, not API.
SKIP_PP = re.compile(r"#\s*(ifndef AKIDB_H|define AKIDB_H\b|include|ifdef __cplusplus|endif"
                     r"|if defined\(_WIN32\)|elif defined\(__GNUC__\)|else|define AKIDB_API)")


def comment_lines(raw):
    """The text lines of a /* ... */ comment, without the decoration."""
    body = raw.strip()
    assert body.startswith("/*") and body.endswith("*/")
    body = body[2:-2]
    out = []
    for line in body.split("\n"):
        s = line.rstrip()
        m = re.match(r"^\s*\* ?(.*)$", s)
        if m and not s.strip().startswith("*/"):
            s = m.group(1)
        elif out or s.strip():
            s = s.strip() if not out else s
        out.append(s.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def parse(text):
    """Sections: [{title, intro:[lines], items:[...]}]; items are
    ("prose", lines) or ("decl", names, kind, comment_lines, code)."""
    lines = text.split("\n")
    i = 0
    n = len(lines)
    file_intro = None
    sections = [{"title": None, "intro": [], "items": []}]
    pending = None          # (comment lines) directly above the next line
    group = None            # current declaration group
    in_skip_if = 0

    def flush_group():
        nonlocal group
        if group:
            sections[-1]["items"].append(("decl", group["names"], group["kinds"],
                                          group["comment"], "\n".join(group["code"])))
        group = None

    while i < n:
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("/*"):
            j = i
            while "*/" not in lines[j]:
                j += 1
            raw = "\n".join(lines[i:j + 1])
            i = j + 1
            if file_intro is None:
                file_intro = comment_lines(raw)
                continue
            flush_group()
            if re.match(r"/\*\s*-{8,}", raw):
                body = [l for l in comment_lines(raw) if not re.match(r"^-{8,}", l.strip())]
                while body and not body[-1].strip():
                    body.pop()
                title = body[0].strip() if body else "?"
                sections.append({"title": title, "intro": body[1:], "items": []})
                pending = None
                continue
            pending = comment_lines(raw)
            # A blank line after it: prose, not a declaration's doc.
            if i >= n or not lines[i].strip():
                sections[-1]["items"].append(("prose", pending))
                pending = None
            continue
        if not stripped:
            flush_group()
            if pending:
                sections[-1]["items"].append(("prose", pending))
                pending = None
            i += 1
            continue
        if stripped.startswith("#if defined(_WIN32)"):
            while not lines[i].strip().startswith("#endif"):
                i += 1
            i += 1
            continue
        if stripped.startswith("#ifdef __cplusplus"):
            while not lines[i].strip().startswith("#endif"):
                i += 1
            i += 1
            continue
        if stripped.startswith("#"):
            m = re.match(r"#\s*define\s+(AKIDB_\w+|akidb_\w+)", stripped)
            if not m or m.group(1).startswith("AKIDB__") or m.group(1) in ("AKIDB_H", "AKIDB_API"):
                while lines[i].rstrip().endswith("\\"):   # and its continuation lines
                    i += 1
                i += 1
                continue
            code = [line]
            while code[-1].rstrip().endswith("\\"):
                i += 1
                code.append(lines[i])
            i += 1
            add_decl(group_ref := [group], m.group(1), "macro", code, pending)
            group = group_ref[0]
            pending = None
            continue
        if stripped == "}" or stripped.startswith("extern \"C\""):
            i += 1
            continue
        # A C declaration: up to ';' at brace depth 0.
        code = []
        depth = 0
        while True:
            l = lines[i]
            code.append(l)
            depth += l.count("{") - l.count("}")
            i += 1
            if depth == 0 and l.rstrip().endswith(";"):
                break
        decl = "\n".join(code)
        name, kind = decl_name(decl)
        add_decl(group_ref := [group], name, kind, code, pending)
        group = group_ref[0]
        pending = None
    flush_group()
    return file_intro or [], [s for s in sections if s["title"] or s["items"]]


def add_decl(ref, name, kind, code, comment):
    g = ref[0]
    if g is None or comment is not None:
        if g is not None:
            raise AssertionError("unreachable: a comment always follows a flush")
        g = {"names": [], "kinds": [], "comment": comment or [], "code": []}
    g["names"].append(name)
    g["kinds"].append(kind)
    g["code"].extend(code)
    ref[0] = g


def decl_name(decl):
    flat = " ".join(decl.split())
    m = re.match(r"AKIDB_API\s.*?\b(akidb_\w+)\s*\(", flat)
    if m:
        return m.group(1), "function"
    m = re.match(r"typedef\s+(struct|enum)\s+(\w+)\s+\1?\s*(\w+)\s*;", flat)
    if m:   # typedef struct akidb akidb;
        return m.group(3), "opaque " + m.group(1)
    m = re.match(r"typedef\s+(struct|enum)\s+(\w+)?\s*\{.*\}\s*(\w+)\s*;$", flat)
    if m:
        return m.group(3), m.group(1)
    m = re.match(r"struct\s+(\w+)\s*\{", flat)
    if m:
        return "struct " + m.group(1), "struct"
    raise SystemExit(f"gen-api-doc: cannot name this declaration:\n{decl}")


def esc(text):
    """Markdown-escape prose outside `code` spans."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for p in parts:
        if p.startswith("`"):
            out.append(p)
        else:
            p = p.replace("\\", "\\\\").replace("*", "\\*").replace("<", "\\<")
            # Underscores inside words are literal in CommonMark; only
            # those at a word's edge could start emphasis.
            out.append(re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", p))
    return "".join(out)


def render_text(lines):
    """Comment lines to Markdown: prose joined into paragraphs, indented
    runs (parameter tables, lists) kept as they are in a text block, or as a
    Markdown list when they are '- ' bullets."""
    out = []
    runs = []
    for l in lines:
        kind = "blank" if not l.strip() else ("indent" if l.startswith("  ") else "prose")
        if runs and runs[-1][0] == kind:
            runs[-1][1].append(l)
        else:
            runs.append((kind, [l]))
    for kind, run in runs:
        if kind == "blank":
            continue
        if kind == "prose":
            out.append(esc(" ".join(l.strip() for l in run)))
            out.append("")
        elif run[0].strip().startswith("- "):
            base = len(run[0]) - len(run[0].lstrip())
            items = []
            for l in run:
                ind = len(l) - len(l.lstrip())
                if l.strip().startswith("- "):
                    items.append([max(0, (ind - base) // 2), l.strip()[2:]])
                elif items:
                    items[-1][1] += " " + l.strip()
            for level, t in items:
                out.append("  " * level + "- " + esc(t))
            out.append("")
        else:
            base = min(len(l) - len(l.lstrip()) for l in run if l.strip())
            out.append("```text")
            out.extend(l[base:] for l in run)
            out.append("```")
            out.append("")
    return out


def anchor(title):
    a = re.sub(r"[^\w\- ]", "", title.lower()).strip().replace(" ", "-")
    return a


def generate(text):
    intro, sections = parse(text)
    md = ["# libakidb C API reference", "",
          "<!-- Generated from include/akidb.h by scripts/gen-api-doc.py; do not edit. "
          "make test checks that it is current. -->", "",
          "This is the public header, `include/akidb.h`, rendered: every function, type and "
          "constant with the comment that documents it, in the header's order. The header "
          "itself is the contract; this page is generated from it, so the two cannot disagree.",
          "", "## Contents", ""]
    for s in sections:
        if s["title"]:
            md.append(f"- [{s['title']}](#{anchor(s['title'])})")
    md += ["", "## Conventions", ""]
    md += render_text(intro[1:] if intro and intro[0].startswith("akidb.h") else intro)
    for s in sections:
        if not s["title"]:
            continue
        md += [f"## {s['title']}", ""]
        md += render_text(s["intro"])
        for item in s["items"]:
            if item[0] == "prose":
                md += render_text(item[1])
                continue
            _, names, kinds, comment, code = item
            md.append("### " + ", ".join(f"`{nm}`" for nm in names))
            md.append("")
            md += ["```c", code.strip("\n"), "```", ""]
            md += render_text(comment)
    while md and not md[-1]:
        md.pop()
    return "\n".join(md) + "\n"


def main(argv):
    with open(HEADER, encoding="utf-8") as f:
        doc = generate(f.read())
    if argv[1:] == ["--check"]:
        try:
            with open(OUT, encoding="utf-8") as f:
                have = f.read()
        except FileNotFoundError:
            have = ""
        if have != doc:
            print("docs/API.md is not what include/akidb.h generates: run scripts/gen-api-doc.py "
                  "and commit docs/API.md", file=sys.stderr)
            return 1
        print("gen-api-doc: docs/API.md is current")
        return 0
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(doc)
    print(f"gen-api-doc: wrote {os.path.relpath(OUT, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
