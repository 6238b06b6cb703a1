"""Pipeline parameters as commands take them: `--param Name=Value`, repeatable (`run`, `cost`)."""

from __future__ import annotations

from sagelab.errors import ParameterError


def parse_params(values: list[str]) -> dict[str, str]:
    """`["Name=Value", ...]` → {"Name": "Value"}; the values stay strings, typed later by the definition's declarations."""
    parameters = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key:
            raise ParameterError(f"--param {value!r} must look like Name=Value")
        parameters[key] = text
    return parameters
