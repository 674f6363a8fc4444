"""Prompt templates: `{{ name }}` placeholders, typed variable declarations, strict rendering.

The syntax is deliberately tiny (no logic, no attribute access), so a tenant's template can
never reach into the application.
"""

import re
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
STRAY_BRACES = re.compile(r"\{\{|\}\}")
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
}


class TemplateProblems(Exception):
    """Every problem found, each as (field, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    default: Any = None
    has_default: bool = False
    description: str = ""


def placeholders(body: str) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER.findall(body)))


def _type_ok(kind: str, value: Any) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, TYPES[kind])


def parse_variables(declared: Any) -> list[Variable]:
    """Validate variable declarations; raise TemplateProblems listing every mistake."""
    variables, _, problems = _parse(declared)
    if problems:
        raise TemplateProblems(problems)
    return variables


def _parse(declared: Any) -> tuple[list[Variable], set[str], list[tuple[str, str]]]:
    """The valid declarations, every well-formed name declared, and the problems found."""
    problems: list[tuple[str, str]] = []
    if not isinstance(declared, list):
        return [], set(), [("variables", "Variables are a list of declarations.")]
    variables: list[Variable] = []
    seen: set[str] = set()
    for index, item in enumerate(declared):
        where = f"variables.{index}"
        if not isinstance(item, dict):
            problems.append((where, "Each variable is an object with a name and a type."))
            continue
        unknown = set(item) - {"name", "type", "default", "description"}
        if unknown:
            problems.append((where, f"Unknown keys: {', '.join(sorted(unknown))}."))
        name, kind = item.get("name"), item.get("type", "string")
        if not isinstance(name, str) or not NAME.match(name):
            problems.append((f"{where}.name", f"{name!r} is not a valid name (a-z, 0-9, _)."))
            continue
        if name in seen:
            problems.append((f"{where}.name", f"{name} is declared twice."))
        seen.add(name)
        if kind not in TYPES:
            problems.append((f"{where}.type", f"Type is one of {', '.join(TYPES)}."))
            continue
        has_default = "default" in item
        if has_default and not _type_ok(kind, item["default"]):
            problems.append((f"{where}.default", f"The default of {name} must be a {kind}."))
        variables.append(
            Variable(name, kind, item.get("default"), has_default, str(item.get("description", "")))
        )
    return variables, seen, problems


def check_template(body: str, declared: Any) -> list[Variable]:
    """Validate a revision: declarations are sound and every placeholder is declared."""
    variables, names, problems = _parse(declared)
    if not body.strip():
        problems.append(("body", "The template is empty."))
    if STRAY_BRACES.search(PLACEHOLDER.sub("", body)):
        problems.append(
            ("body", "Placeholders look like {{ name }}; there is an unmatched {{ or }}.")
        )
    for name in placeholders(body):
        if name not in names:
            problems.append(("body", f"{{{{ {name} }}}} is used but not declared."))
    if problems:
        raise TemplateProblems(problems)
    return variables


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(body: str, declared: Any, values: dict[str, Any]) -> str:
    """Fill every placeholder. A missing value, a wrong type or an unknown variable is an error
    naming it; all such problems are reported together."""
    variables = {v.name: v for v in parse_variables(declared)}
    problems: list[tuple[str, str]] = []
    if not isinstance(values, dict):
        raise TemplateProblems([("variables", "Variable values are an object.")])
    for name in values:
        if name not in variables:
            problems.append((f"variables.{name}", f"{name} is not a variable of this template."))
    resolved: dict[str, str] = {}
    for name in placeholders(body):
        variable = variables[name]
        if name in values:
            value = values[name]
            if not _type_ok(variable.type, value):
                problems.append((f"variables.{name}", f"{name} must be a {variable.type}."))
                continue
        elif variable.has_default:
            value = variable.default
        else:
            problems.append((f"variables.{name}", f"Missing variable: {name}."))
            continue
        resolved[name] = _as_text(value)
    if problems:
        raise TemplateProblems(problems)
    return PLACEHOLDER.sub(lambda m: resolved[m.group(1)], body)
