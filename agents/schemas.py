"""Validation of the JSON schemas tools declare for their arguments."""

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError


def check_parameters_schema(schema: Any) -> list[str]:
    """Problems with a tool's parameter schema: it must be a valid JSON schema for an object."""
    if not isinstance(schema, dict):
        return ["The parameters are a JSON schema object."]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [f"Not a valid JSON schema: {exc.message}"]
    if schema.get("type") != "object":
        return [
            'The parameters schema must have "type": "object" (the model passes named arguments).'
        ]
    return []


def argument_problems(schema: dict[str, Any], arguments: Any) -> list[str]:
    validator = Draft202012Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or 'arguments'}: {error.message}"
        for error in sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    ]


__all__ = ["ValidationError", "argument_problems", "check_parameters_schema"]
