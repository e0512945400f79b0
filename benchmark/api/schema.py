"""OpenAPI post-processing: document the error answers every API operation can give.

Also documents that no text parameter may contain NUL.

drf-spectacular documents the success answer of each operation; clients (and the
schemathesis suite in tests/security) also meet DRF's own refusals: 400 for a bad body
or filter, 401/403 without the right credentials or permission, 404 for an unknown
object or page, 405 for a method the route does not take. Each gets its shape here.
"""

from __future__ import annotations

DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
# A validation error: field name → messages, a list of messages, or {"detail": …}.
INVALID = {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "string"}}]}
# Text parameters cannot hold NUL (PostgreSQL refuses it; the API answers 400).
NO_NUL = "^[^\\x00]*$"

ERRORS = {
    "400": ("Invalid request: the body or a parameter failed validation.", INVALID),
    "401": ("Not authenticated.", DETAIL),
    "403": ("Authenticated but not allowed.", DETAIL),
    "404": ("No such object, or no such page.", DETAIL),
    "405": ("The route does not take this method.", DETAIL),
}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def add_error_responses(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry: add the error answers to every operation."""
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in METHODS:
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if (
                    schema.get("type") == "string"
                    and "pattern" not in schema
                    and ("enum" not in schema)
                ):
                    schema["pattern"] = NO_NUL
            responses = operation.setdefault("responses", {})
            for status, (description, schema) in ERRORS.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": schema}},
                    },
                )
    return result
