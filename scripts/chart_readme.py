"""Keeps a chart's values.yaml, values.schema.json and README.md in step.

    python scripts/chart_readme.py charts/kvorum            # check; exit 1 on any problem
    python scripts/chart_readme.py charts/kvorum --write    # regenerate README.md's values tables

Conventions (those of helm-docs, which cannot be installed here):
- every key in values.yaml has a comment block right above it whose first line starts with `# --`;
  following `#` lines continue it;
- a key whose children carry `# --` comments is a section, and then every child must carry one;
  a key whose children carry none is one value (e.g. `resources`), documented as a whole;
- README.md holds the generated tables between `<!-- values:begin -->` and `<!-- values:end -->`.

Checks: every key documented; values.yaml and values.schema.json declare exactly the same keys;
every object in the schema that lists properties has `additionalProperties: false`; README.md is
what --write would produce.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

BEGIN, END = "<!-- values:begin -->", "<!-- values:end -->"
KEY_LINE = re.compile(r"^( *)([A-Za-z0-9_.-]+):(?:\s|$)")
COMMENT_LINE = re.compile(r"^( *)#(?: (.*))?$")


def doc_comments(values_text: str) -> dict[str, str]:
    """Dotted key path -> its `# --` description, from the raw values.yaml text."""
    docs: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing mappings
    pending: list[str] = []
    for line in values_text.splitlines():
        if not line.strip():
            pending = []
            continue
        comment = COMMENT_LINE.match(line)
        if comment:
            pending.append(comment.group(2) or "")
            continue
        key = KEY_LINE.match(line)
        if not key:  # a list item or a continuation line of a value
            pending = []
            continue
        indent, name = len(key.group(1)), key.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [name])
        if pending and pending[0].startswith("-- "):
            docs[path] = " ".join([pending[0][3:]] + [p.strip() for p in pending[1:]]).strip()
        pending = []
        stack.append((indent, name))
    return docs


def walk(values: dict[str, Any], docs: dict[str, str], prefix: str = "") -> tuple[list[tuple[str, Any]], list[str], list[str]]:
    """(leaves, sections, problems): documented values in file order, section paths, missing docs."""
    leaves: list[tuple[str, Any]] = []
    sections: list[str] = []
    problems: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path not in docs:
            problems.append(f"values.yaml: {path} has no `# --` comment")
        children_documented = isinstance(value, dict) and any(f"{path}.{k}" in docs for k in value)
        if children_documented:
            sections.append(path)
            sub_leaves, sub_sections, sub_problems = walk(value, docs, f"{path}.")
            leaves += sub_leaves
            sections += sub_sections
            problems += sub_problems
        else:
            leaves.append((path, value))
    return leaves, sections, problems


def schema_node(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in path.split("."):
        node = resolve(schema, node)
        node = (node or {}).get("properties", {}).get(part)
        if node is None:
            return None
    return resolve(schema, node)


def resolve(root: dict[str, Any], node: dict[str, Any] | None) -> dict[str, Any] | None:
    while node is not None and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def schema_problems(schema: dict[str, Any], leaves: list[tuple[str, Any]], sections: list[str]) -> list[str]:
    problems = []
    declared = {p for p, _ in leaves} | set(sections)
    for path in sorted(declared):
        if schema_node(schema, path) is None:
            problems.append(f"values.schema.json: no property for {path}")

    def visit(node: dict[str, Any], path: str) -> None:
        node = resolve(schema, node) or {}
        props = node.get("properties")
        if props is None:
            return
        if node.get("additionalProperties") is not False:
            problems.append(f"values.schema.json: {path or '(root)'} lacks additionalProperties: false")
        for key, child in props.items():
            child_path = f"{path}.{key}" if path else key
            if child_path not in declared and not any(child_path.startswith(p + ".") for p, _ in leaves):
                problems.append(f"values.schema.json: {child_path} is not in values.yaml")
            visit(child, child_path)

    visit(schema, "")
    return problems


def type_of(schema: dict[str, Any], path: str) -> str:
    node = schema_node(schema, path) or {}
    t = node.get("type", "")
    if "enum" in node:
        return " \\| ".join(json.dumps(v) for v in node["enum"])
    return " \\| ".join(t) if isinstance(t, list) else t


def default_of(value: Any) -> str:
    text = json.dumps(value, separators=(", ", ": ")) if not isinstance(value, str) else json.dumps(value)
    return f"`{text}`"


def tables(values_text: str, schema: dict[str, Any]) -> tuple[str, list[str]]:
    docs = doc_comments(values_text)
    values = yaml.safe_load(values_text)
    leaves, sections, problems = walk(values, docs)
    problems += schema_problems(schema, leaves, sections)
    # One table per top-level section, general top-level values first.
    groups: dict[str, list[tuple[str, Any]]] = {"": []}
    for path, value in leaves:
        top = path.split(".")[0]
        groups.setdefault(top if top in sections else "", []).append((path, value))
    out: list[str] = []
    for top, rows in groups.items():
        if not rows:
            continue
        title = f"`{top}`" if top else "General"
        out.append(f"### {title}\n")
        if top:
            out.append(docs.get(top, "") + "\n")
        out.append("| Key | Type | Default | Description |")
        out.append("|-----|------|---------|-------------|")
        for path, value in rows:
            desc = docs.get(path, "").replace("|", "\\|")
            out.append(f"| `{path}` | {type_of(schema, path)} | {default_of(value)} | {desc} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n", problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chart", type=Path)
    parser.add_argument("--write", action="store_true", help="rewrite README.md's values tables")
    args = parser.parse_args()

    values_text = (args.chart / "values.yaml").read_text()
    schema = json.loads((args.chart / "values.schema.json").read_text())
    generated, problems = tables(values_text, schema)

    readme_path = args.chart / "README.md"
    readme = readme_path.read_text()
    if BEGIN not in readme or END not in readme:
        problems.append(f"README.md: missing the {BEGIN} / {END} markers")
        wanted = readme
    else:
        head, rest = readme.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        wanted = f"{head}{BEGIN}\n\n{generated}\n{END}{tail}"
    if args.write:
        readme_path.write_text(wanted)
    elif wanted != readme:
        diff = difflib.unified_diff(readme.splitlines(), wanted.splitlines(), "README.md", "generated", lineterm="")
        problems.append("README.md is stale; run `python scripts/chart_readme.py charts/kvorum --write`:\n"
                        + "\n".join(list(diff)[:40]))
    for p in problems:
        print(f"chart-readme: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
