"""v2 request bodies: JSON or multipart in, a V2Request checked against the v2 document out.

Multipart text parts are typed by the schema (integers, numbers, booleans, repeated parts
for arrays); the parts the document encodes as application/json (asset identifiers,
colour palettes) are decoded as JSON. Files travel only in multipart. Unknown fields and
unknown query parameters are refused with a 400 that lists every violation.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from pipeline import spec

from . import v2spec
from .bodies import request_sha256
from .reject import Reject
from .v2routes import V2Endpoint

MULTIPART = "multipart/form-data"
JSON = "application/json"
MAX_FILE_BYTES = 50 * 1024 * 1024
DESCRIBE_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class V2Request:
    """A schema-valid v2 request: its fields, its file parts and whether it is a dry run."""

    endpoint: V2Endpoint
    instance: dict[str, Any]
    files: dict[str, list[bytes]]
    dry_run: bool = False

    @property
    def params(self) -> dict[str, Any]:
        """The fields that are not files."""
        return {k: v for k, v in self.instance.items() if k not in self.files}

    @property
    def num_images(self) -> int:
        """Images the request produces (1 for operations without num_images)."""
        return int(self.params.get("num_images", 1))

    @property
    def is_async(self) -> bool:
        """Whether the answer is a generation_id to poll rather than the images."""
        mode = self.endpoint.async_mode
        return mode == "only" or (
            mode == "opt" and (bool(self.params.get("async")) or "webhook_url" in self.params)
        )

    def sha256(self) -> str:
        """Hash of the normalized request: endpoint, sorted fields, sha256 of each file."""
        return request_sha256(self.endpoint.path, self.instance, self.files)


def dry_run_flag(endpoint: V2Endpoint, query: str) -> bool:
    """The dry_run query parameter; any other parameter, or dry_run where undeclared, is a 400."""
    params = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - ({"dry_run"} if endpoint.dry_run else set()))
    if unknown:
        raise Reject(400, f"unknown query parameters {unknown} for POST {endpoint.path}", reason="invalid")
    values = params.get("dry_run", ["false"])
    if len(values) != 1 or values[0].lower() not in ("true", "false"):
        raise Reject(400, "dry_run: expected true or false", reason="invalid")
    return values[0].lower() == "true"


def parse(endpoint: V2Endpoint, content_type: str, body: bytes, query: str = "") -> V2Request:
    """Parse and validate a request, or raise a 400 / 413 Reject."""
    dry_run = dry_run_flag(endpoint, query)
    media = content_type.split(";", 1)[0].strip().lower()
    allowed = v2spec.content_types(endpoint.path)
    if media not in allowed:
        raise Reject(
            400,
            f"unsupported content type {media or '(none)'!r}: {endpoint.path} takes {' or '.join(allowed)}",
            reason="invalid",
        )
    schema = v2spec.request_schema(endpoint.path, media)
    if media == MULTIPART:
        instance, files = _from_multipart(endpoint, schema, content_type, body)
    else:
        instance, files = _from_json(schema, body), {}
    limit = DESCRIBE_MAX_BYTES if endpoint.action == "describe" else MAX_FILE_BYTES
    for name, parts in files.items():
        if any(len(p) > limit for p in parts):
            raise Reject(413, f"{name}: a file is over the {limit // 2**20} MB limit", reason="too_large")
    problems = spec.validate(instance, schema)
    if problems:
        raise Reject(400, f"request does not match the {endpoint.path} schema", problems, reason="invalid")
    return V2Request(endpoint, instance, files, dry_run)


def _binary(prop: Mapping[str, Any]) -> bool:
    return prop.get("format") == "binary" or prop.get("items", {}).get("format") == "binary"


def _from_json(schema: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    try:
        instance = json.loads(body or b"null")
    except ValueError as exc:
        raise Reject(400, f"body is not valid JSON: {exc}", reason="invalid") from exc
    if not isinstance(instance, dict):
        raise Reject(400, "JSON body must be an object", reason="invalid")
    props = schema.get("properties", {})
    files = sorted(n for n in instance if _binary(props.get(n, {})))
    if files:
        raise Reject(
            400, f"{', '.join(files)}: files travel only as multipart/form-data parts", reason="invalid"
        )
    return instance


def _from_multipart(
    endpoint: V2Endpoint, schema: Mapping[str, Any], content_type: str, body: bytes
) -> tuple[dict[str, Any], dict[str, list[bytes]]]:
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise Reject(400, "malformed multipart/form-data body", reason="invalid")
    props = schema.get("properties", {})
    json_parts = v2spec.json_parts(endpoint.path)
    texts: dict[str, list[str]] = {}
    files: dict[str, list[bytes]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise Reject(400, "multipart part without a name", reason="invalid")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if _binary(props.get(name, {})) or (part.get_filename() is not None and name not in props):
            files.setdefault(name, []).append(data)
            continue
        try:
            texts.setdefault(name, []).append(data.decode(part.get_content_charset() or "utf-8"))
        except (UnicodeDecodeError, LookupError) as exc:
            raise Reject(400, f"{name}: text part is not valid UTF-8", reason="invalid") from exc
    instance: dict[str, Any] = {}
    for name, values in texts.items():
        instance[name] = _coerce(name, values, props.get(name, {}), name in json_parts)
    for name, parts in files.items():
        array = props.get(name, {}).get("type") == "array"
        instance[name] = [spec.BINARY] * len(parts) if array else spec.BINARY
    return instance, files


def _coerce(name: str, values: list[str], prop: Mapping[str, Any], as_json: bool) -> Any:
    """The JSON value of a text part (or repeated parts), typed by its schema."""
    kinds = prop.get("type")
    kind = kinds[0] if isinstance(kinds, list) else kinds
    if kind == "array":
        items = [_scalar(name, v, prop.get("items", {}), as_json) for v in values]
        if len(items) == 1 and isinstance(items[0], list):
            return items[0]  # one part holding the whole JSON array
        return items
    return _scalar(name, values[-1], prop, as_json)


def _scalar(name: str, value: str, prop: Mapping[str, Any], as_json: bool) -> Any:
    kinds = prop.get("type")
    kind = kinds[0] if isinstance(kinds, list) else kinds
    if as_json or kind == "object" or "oneOf" in prop or "properties" in prop:
        try:
            return json.loads(value)
        except ValueError as exc:
            raise Reject(400, f"{name}: part is not valid JSON", reason="invalid") from exc
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value  # validation reports the wrong type
    if kind == "boolean":
        return {"true": True, "false": False}.get(value.lower(), value)
    return value
