"""What an ``MLmodel`` file says about the files of its model."""

from __future__ import annotations

from metro_e2e.errors import PromotionError

_FILE_KEYS = {"pickled_model", "model_path", "data", "conda", "virtualenv", "model_data", "code"}


def references(mlmodel: bytes) -> set[str]:
    """The files an MLmodel file names: flavor payloads, environment files, the saved input example
    (``PromotionError`` when it is not YAML)."""
    import yaml

    try:
        spec = yaml.safe_load(mlmodel) or {}
    except yaml.YAMLError as exc:
        raise PromotionError(f"invalid YAML: {str(exc).splitlines()[0]}") from None
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _FILE_KEYS and isinstance(value, str):
                    found.add(value)
                walk(value)

    walk(spec.get("flavors", {}))
    example = spec.get("saved_input_example_info") or {}
    if isinstance(example, dict) and isinstance(example.get("artifact_path"), str):
        found.add(example["artifact_path"])
    return found
