"""Checks the custom resources in rendered manifests against their CRDs' schemas, strictly
(an unknown field is an error, as `kubectl apply --validate=strict` would say), offline.

Usage: crds.py <schema files or directories>... -- <rendered manifest files>...

A schema file is a CustomResourceDefinition (its openAPIV3Schema per version), or a document
of kind `RecobroSchema` (`for`: its `group`, `version` and `kind`; `schema`) for a resource whose CRD cannot
be fetched here. A custom resource with no schema at all is an error: nothing goes unchecked.
"""

import pathlib
import sys

import jsonschema
import yaml

BUILT_IN_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io"}


def strict(schema):
    """The schema with unknown properties refused wherever it lists the properties."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def load_schemas(paths):
    schemas = {}
    files = []
    for path in map(pathlib.Path, paths):
        files += sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    for file in files:
        for doc in yaml.safe_load_all(file.read_text()):
            if not doc:
                continue
            if doc.get("kind") == "CustomResourceDefinition":
                spec = doc["spec"]
                for version in spec["versions"]:
                    schema = version["schema"]["openAPIV3Schema"]
                    schemas[(spec["group"], version["name"], spec["names"]["kind"])] = schema
            elif doc.get("kind") == "RecobroSchema":
                target = doc["for"]
                schemas[(target["group"], target["version"], target["kind"])] = doc["schema"]
    return schemas


def main(argv):
    split = argv.index("--")
    schemas = load_schemas(argv[:split])
    failures = checked = 0
    for file in argv[split + 1 :]:
        for doc in yaml.safe_load_all(pathlib.Path(file).read_text()):
            if not doc:
                continue
            group, _, version = doc["apiVersion"].rpartition("/")
            if group in BUILT_IN_GROUPS:
                continue
            name = f'{doc["kind"]}/{doc["metadata"]["name"]}'
            schema = schemas.get((group, version, doc["kind"]))
            if schema is None:
                print(f"FAIL {file}: {name}: no schema for {doc['apiVersion']} {doc['kind']}")
                failures += 1
                continue
            # The API server checks metadata itself; the CRD schema says only "object".
            body = {key: value for key, value in doc.items() if key != "metadata"}
            schema = strict({**schema, "properties": {k: v for k, v in schema.get("properties", {}).items() if k != "metadata"}})
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(body), key=lambda e: list(e.path))
            for error in errors:
                where = "/".join(str(part) for part in error.path)
                print(f"FAIL {file}: {name}: {where}: {error.message}")
            failures += bool(errors)
            checked += 1
    print(f"custom resources checked against their schemas: {checked}, failed: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
