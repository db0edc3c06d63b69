"""Validates Kubernetes manifests strictly, offline, against several Kubernetes versions.

Run by scripts/validate-manifests.sh inside the tools virtualenv (kubernetes-validate, PyYAML and
jsonschema installed). Every YAML document in the given files and directories must pass:

- built-in kinds: kubernetes-validate's bundled OpenAPI schemas in strict mode (unknown fields are
  errors), for every --kubernetes-version;
- custom resources (a kind kubernetes-validate has no schema for): the openAPIV3Schema of their
  CustomResourceDefinition, taken from --crd files and from CRDs among the inputs, made strict the
  way the API server's field validation is (unknown fields are errors unless the schema preserves
  them). A kind with no schema at all is an error, never a silent pass. CEL rules
  (x-kubernetes-validations) are not evaluated here: operator/tests/crd_validation.rs does that;
- pod-bearing objects (Pod, Deployment, StatefulSet, ...): the secure defaults the chart promises
  (STYLE.md 27): non-root, seccomp RuntimeDefault, no privilege escalation, capabilities drop ALL,
  read-only root filesystem. --no-pod-security turns this off.

Prints one line per object and version, then "N passed, N failed"; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def manifest_files(paths: list[str]) -> list[Path]:
    """The YAML files among `paths` (directories are searched recursively), in a stable order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"validate-manifests: {raw}: no such file or directory")
    return files


def documents(path: Path) -> Iterator[dict[str, Any]]:
    """The non-empty documents of a YAML file; `kind: List` is flattened into its items."""
    with path.open() as f:
        for doc in yaml.safe_load_all(f):
            if not doc:
                continue
            if not isinstance(doc, dict):
                raise SystemExit(f"validate-manifests: {path}: a document is not a mapping")
            if doc.get("kind") == "List" or (doc.get("kind", "").endswith("List") and "items" in doc):
                yield from (item for item in doc.get("items") or [] if item)
            else:
                yield doc


def strict_crd_schema(schema: Any, root: bool = False) -> Any:
    """An OpenAPI v3 structural schema as a JSON Schema that rejects unknown fields.

    The API server prunes or (with `kubectl --validate=strict`, the default since 1.27) rejects
    fields a structural schema does not declare, unless x-kubernetes-preserve-unknown-fields is set.
    `nullable` and `x-kubernetes-int-or-string` have no JSON Schema keyword; they are translated.
    """
    if isinstance(schema, list):
        return [strict_crd_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_crd_schema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **out}
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if root:
        # Every object has these; a CRD schema may leave them out.
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-embedded-resource")
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


class CrdSchemas:
    """openAPIV3Schemas of custom resources by (apiVersion, kind)."""

    def __init__(self) -> None:
        self.schemas: dict[tuple[str, str], dict[str, Any]] = {}

    def add_crd(self, crd: dict[str, Any]) -> None:
        spec = crd["spec"]
        for version in spec.get("versions", []):
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema is not None:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                self.schemas[key] = strict_crd_schema(schema, root=True)

    def validate(self, obj: dict[str, Any]) -> str | None:
        """None if `obj` passes, else the first error; KeyError when its kind is unknown."""
        schema = self.schemas[(obj.get("apiVersion", ""), obj.get("kind", ""))]
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
        if not errors:
            return None
        e = errors[0]
        return f"{'.'.join(str(p) for p in e.path)}: {e.message}"


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj.get("kind")
    if kind == "Pod":
        return obj.get("spec")
    if kind == "CronJob":
        return obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if kind in POD_TEMPLATE_KINDS:
        return obj.get("spec", {}).get("template", {}).get("spec")
    return None


def pod_security_problems(spec: dict[str, Any]) -> list[str]:
    """Departures from the restricted defaults (a container setting overrides the pod's)."""
    problems = []
    pod_sc = spec.get("securityContext") or {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        sc = c.get("securityContext") or {}
        name = c.get("name", "?")
        if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            problems.append(f"container {name}: runAsNonRoot is not true")
        if (sc.get("runAsUser", pod_sc.get("runAsUser")) == 0):
            problems.append(f"container {name}: runs as uid 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"container {name}: seccompProfile is not RuntimeDefault")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            problems.append(f"container {name}: privileged")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            problems.append(f"container {name}: capabilities do not drop ALL")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"container {name}: readOnlyRootFilesystem is not true")
    return problems


def name_of(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind', '?')}/{(ns + '/') if ns else ''}{meta.get('name', '?')}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="manifest files or directories")
    parser.add_argument("-k", "--kubernetes-version", action="append", required=True,
                        help="Kubernetes version to validate against (repeatable), e.g. 1.33.0")
    parser.add_argument("--crd", action="append", default=[], help="file or directory of CRDs for custom resources")
    parser.add_argument("--no-pod-security", action="store_true", help="skip the secure-pod-defaults check")
    args = parser.parse_args()

    supported = {kv_utils.major_minor(v) for v in kv_utils.all_versions()}
    for version in args.kubernetes_version:
        if kv_utils.major_minor(version.lstrip("v")) not in supported:
            # kubernetes-validate would silently use an older schema for a newer patch of a
            # bundled minor, but a whole minor it lacks must not pass as "validated".
            print(f"FATAL kubernetes-validate {kubernetes_validate.__version__} bundles no schemas for "
                  f"Kubernetes {version} (it has {', '.join(sorted(supported, key=lambda v: tuple(map(int, v.split('.')))))})")
            return 2

    objects: list[tuple[Path, dict[str, Any]]] = []
    for path in manifest_files(args.paths):
        objects.extend((path, doc) for doc in documents(path))
    crds = CrdSchemas()
    for path in manifest_files(args.crd):
        for doc in documents(path):
            if doc.get("kind") == "CustomResourceDefinition":
                crds.add_crd(doc)
    for _, doc in objects:
        if doc.get("kind") == "CustomResourceDefinition":
            crds.add_crd(doc)

    passed = failed = 0
    for path, obj in objects:
        label = f"{path}: {name_of(obj)}"
        errors: list[str] = []
        against = ", ".join(args.kubernetes_version)
        for version in args.kubernetes_version:
            try:
                kv_utils.validate(copy.deepcopy(obj), version, strict=True)
            except kv_utils.ValidationError as e:
                loc = ".".join(str(p) for p in e.path)
                errors.append(f"Kubernetes {version}: {loc}: {e.message}")
            except kv_utils.SchemaNotFoundError:
                try:
                    problem = crds.validate(obj)
                except KeyError:
                    errors.append(f"Kubernetes {version}: no schema for {obj.get('apiVersion')} {obj.get('kind')} "
                                  "(not built in, and no CRD given for it)")
                    continue
                if problem:
                    errors.append(f"CRD schema: {problem}")
                against = "its CRD's schema"
                break  # a CRD schema does not depend on the Kubernetes version
        spec = pod_spec(obj)
        if spec is not None and not args.no_pod_security:
            errors.extend(f"pod security: {p}" for p in pod_security_problems(spec))
        if errors:
            failed += 1
            print(f"FAIL {label}")
            for e in errors:
                print(f"     {e}")
        else:
            passed += 1
            print(f"ok   {label} ({against})")
    if not objects:
        print("validate-manifests: no manifests found", file=sys.stderr)
        return 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
