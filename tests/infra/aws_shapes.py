"""A request checked against botocore's service model: ParamValidator's types and required members, and what it
does not check, each member's enum, pattern, length and range (the service's own constraints, from the same
model). The patterns are Java's (``\\p{L}``, ``\\p{Alnum}``), read with the ``regex`` package."""

from __future__ import annotations

from typing import Any

import botocore.session
import regex
from botocore.validate import ParamValidator

__all__ = ["check_params", "operation_shape", "shape_problems"]


def operation_shape(service: str, operation: str) -> Any:
    model = botocore.session.get_session().get_service_model(service)
    return model.operation_model(operation).input_shape


def shape_problems(shape: Any, value: Any, where: str = "") -> list[str]:
    """What ParamValidator does not check: each member's enum, pattern, length and range."""
    problems: list[str] = []
    meta = shape.metadata
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                problems += shape_problems(member, value[name], f"{where}.{name}")
    elif shape.type_name == "list":
        for index, item in enumerate(value):
            problems += shape_problems(shape.member, item, f"{where}[{index}]")
    elif shape.type_name == "map":
        for key, item in value.items():
            problems += shape_problems(shape.key, key, f"{where} key {key!r}")
            problems += shape_problems(shape.value, item, f"{where}[{key!r}]")
    if shape.type_name == "string":
        if shape.enum and value not in shape.enum:
            problems.append(f"{where}: {value!r} not in {shape.enum}")
        if "pattern" in meta and not regex.fullmatch(_java_pattern(meta["pattern"]), value):
            problems.append(f"{where}: {value!r} does not match {meta['pattern']}")
    sized = shape.type_name in ("string", "list", "map") and ("min" in meta or "max" in meta)
    if sized and not meta.get("min", 0) <= len(value) <= meta.get("max", 10**9):
        problems.append(f"{where}: length {len(value)} outside {meta.get('min')}..{meta.get('max')}")
    if shape.type_name == "integer" and not meta.get("min", -(10**18)) <= value <= meta.get("max", 10**18):
        problems.append(f"{where}: {value} outside {meta.get('min')}..{meta.get('max')}")
    return problems


def _java_pattern(pattern: str) -> str:
    """Java writes the supplementary planes as a range of surrogate pairs (``\\uD800\\uDC00-\\uDBFF\\uDFFF``, in
    Application Auto Scaling's ResourceId); Python's regex takes the code points."""
    return pattern.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\U00010000-\\U0010FFFF")


def check_params(service: str, operation: str, params: dict[str, Any]) -> None:
    """``params`` as botocore would send them: valid, and within every constraint of their shapes."""
    shape = operation_shape(service, operation)
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), report.generate_report()
    assert shape_problems(shape, params) == []
