#!/usr/bin/python3
"""openapi-to-c.py - compile docs/openapi.yaml into a C file for the server.

    /usr/bin/python3 scripts/openapi-to-c.py docs/openapi.yaml OUT.c

The server serves the document at GET /v1/openapi.json.  YAML is the
source (it is what people edit and review); the server gets compact JSON,
so it needs no YAML parser.  Runs with Debian's python3 and python3-yaml
(scripts/deps.sh installs it); /usr/bin/python3 because the python3 on
PATH may be another interpreter that cannot see Debian's modules.

Fails (exit 1) when the file is not YAML, not OpenAPI 3.1, or has a
duplicate key (PyYAML would silently keep the last one).
"""
import json
import sys

import yaml


class NoDupLoader(yaml.SafeLoader):
    pass


def construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


NoDupLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: openapi-to-c.py IN.yaml OUT.c")
    with open(sys.argv[1], encoding="utf-8") as f:
        try:
            doc = yaml.load(f, Loader=NoDupLoader)
        except yaml.YAMLError as e:
            sys.exit("openapi-to-c: %s: %s" % (sys.argv[1], e))
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1"):
        sys.exit("openapi-to-c: %s is not an OpenAPI 3.1 document" % sys.argv[1])
    data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    out = ["/* Generated from %s by scripts/openapi-to-c.py: do not edit. */" % sys.argv[1],
           "#include <stddef.h>",
           "extern const char akidb_openapi_json[];",
           "extern const size_t akidb_openapi_json_len;",
           "const char akidb_openapi_json[] = {"]
    for i in range(0, len(data), 16):
        out.append("    " + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",")
    out.append("    0x00\n};")
    out.append("const size_t akidb_openapi_json_len = %d;" % len(data))
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    import os
    os.replace(tmp, sys.argv[2])


if __name__ == "__main__":
    main()
