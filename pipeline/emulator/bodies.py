"""Request bodies: multipart or JSON in, a spec-validated ApiRequest out.

Multipart parts become the JSON value the spec describes through spec.form_to_instance;
JSON bodies are taken as they are. The crazyrouter flavor also accepts JSON on every
endpoint with image fields given as URLs or base64; those are fetched and replaced by
spec.BINARY before validation, so both spellings validate against the same schema.
"""

from __future__ import annotations

import base64
import binascii
import copy
import email.parser
import email.policy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline import spec

from .reject import Reject
from .routes import Endpoint, Flavor

MULTIPART = "multipart/form-data"
JSON = "application/json"
MAX_FILE_BYTES = 10 * 1024 * 1024

Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class ApiRequest:
    """A parsed, schema-valid request: its JSON value and the bytes of its file fields."""

    endpoint: Endpoint
    instance: dict[str, Any]
    files: dict[str, list[bytes]]

    @property
    def params(self) -> dict[str, Any]:
        """The operation's fields: image_request for nested legacy endpoints, else the body."""
        if self.endpoint.nested:
            return dict(self.instance.get("image_request") or {})
        return {k: v for k, v in self.instance.items() if k not in self.files}

    @property
    def num_images(self) -> int:
        """How many images this request asks for (describe counts as one)."""
        if self.endpoint.op == "describe":
            return 1
        return int(self.params.get("num_images", 1))

    def file(self, name: str) -> bytes | None:
        """The bytes of a single-file field (the last part if repeated)."""
        parts = self.files.get(name)
        return parts[-1] if parts else None

    def sha256(self) -> str:
        """Hash of the normalized request: endpoint, sorted fields, sha256 of each file."""
        return request_sha256(self.endpoint.path, self.instance, self.files)


def request_sha256(path: str, instance: Mapping[str, Any], files: Mapping[str, list[bytes]]) -> str:
    """sha256 of canonical JSON naming the endpoint, the fields and each file's sha256."""
    value = copy.deepcopy(dict(instance))
    for name, parts in files.items():
        digests = ["sha256:" + hashlib.sha256(p).hexdigest() for p in parts]
        value[name] = digests if isinstance(value.get(name), list) else digests[-1]
    canonical = json.dumps(
        {"endpoint": path, "request": value},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def raw_sha256(path: str, body: bytes) -> str:
    """Hash for a request that could not be parsed: endpoint and raw body."""
    return hashlib.sha256(path.encode("utf-8") + b"\n" + body).hexdigest()


def _binary_fields(schema: Mapping[str, Any]) -> dict[str, bool]:
    """Names of the schema's file fields, each mapped to whether it is an array."""
    out = {}
    for name, prop in schema.get("properties", {}).items():
        if prop.get("format") == "binary":
            out[name] = False
        elif prop.get("type") == "array" and prop.get("items", {}).get("format") == "binary":
            out[name] = True
    return out


def parse(endpoint: Endpoint, flavor: Flavor, content_type: str, body: bytes, fetch: Fetch) -> ApiRequest:
    """Parse and validate a request body, or raise a 400 / 413 Reject."""
    media = content_type.split(";", 1)[0].strip().lower()
    allowed = spec.content_types(endpoint.path)
    if media == MULTIPART and MULTIPART in allowed:
        schema = spec.request_schema(endpoint.path, MULTIPART)
        instance, files = _from_multipart(schema, content_type, body)
    elif media == JSON and (JSON in allowed or flavor.json_images):
        schema = spec.request_schema(endpoint.path, JSON if JSON in allowed else MULTIPART)
        instance, files = _from_json(schema, body, flavor, fetch)
    else:
        raise Reject(
            400,
            f"unsupported content type {media or '(none)'!r}: {endpoint.path} takes {' or '.join(allowed)}",
            reason="invalid",
        )
    for name, parts in files.items():
        for part in parts:
            if len(part) > MAX_FILE_BYTES:
                raise Reject(
                    413,
                    f"{name}: file of {len(part)} bytes is over the 10 MB limit",
                    reason="too_large",
                )
    problems = spec.validate(instance, schema)
    if problems:
        raise Reject(400, f"request does not match the {endpoint.path} schema", problems, reason="invalid")
    return ApiRequest(endpoint, instance, files)


def _from_multipart(
    schema: Mapping[str, Any], content_type: str, body: bytes
) -> tuple[dict[str, Any], dict[str, list[bytes]]]:
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise Reject(400, "malformed multipart/form-data body", reason="invalid")
    binary = _binary_fields(schema)
    props = schema.get("properties", {})
    fields: dict[str, list[str]] = {}
    files: dict[str, list[bytes]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise Reject(400, "multipart part without a name", reason="invalid")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name in binary or (part.get_filename() is not None and name not in props):
            files.setdefault(name, []).append(data)
            continue
        try:
            text = data.decode(part.get_content_charset() or "utf-8")
        except (UnicodeDecodeError, LookupError) as exc:
            raise Reject(400, f"{name}: text field is not valid UTF-8", reason="invalid") from exc
        fields.setdefault(name, []).append(text)
    return spec.form_to_instance(schema, fields, files), files


def _from_json(
    schema: Mapping[str, Any], body: bytes, flavor: Flavor, fetch: Fetch
) -> tuple[dict[str, Any], dict[str, list[bytes]]]:
    try:
        instance = json.loads(body or b"null")
    except ValueError as exc:
        raise Reject(400, f"body is not valid JSON: {exc}", reason="invalid") from exc
    if not isinstance(instance, dict):
        raise Reject(400, "JSON body must be an object", reason="invalid")
    files: dict[str, list[bytes]] = {}
    for name, is_array in _binary_fields(schema).items():
        if name not in instance:
            continue
        if not flavor.json_images:
            raise Reject(400, f"{name}: files must be sent as multipart/form-data parts", reason="invalid")
        value = instance[name]
        refs = value if is_array and isinstance(value, list) else [value]
        if not all(isinstance(r, str) for r in refs):
            continue  # left as is: validation reports the wrong type
        files[name] = [image_ref(name, r, fetch) for r in refs]
        instance[name] = [spec.BINARY] * len(refs) if is_array else spec.BINARY
    return instance, files


def image_ref(name: str, ref: str, fetch: Fetch) -> bytes:
    """The bytes an image field given as a URL, a data: URL or bare base64 stands for."""
    if ref.startswith(("http://", "https://")):
        return fetch(ref)
    data = ref
    if ref.startswith("data:"):
        header, _, data = ref.partition(",")
        if not header.endswith(";base64"):
            raise Reject(400, f"{name}: only base64 data: URLs are accepted", reason="invalid")
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Reject(400, f"{name}: neither an http(s) URL nor valid base64", reason="invalid") from exc
