"""Contract: every op x model family x provider builds a body the official spec accepts."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from pipeline import ops, providers, spec, wire
from pipeline.ops import Op

PNG = io.BytesIO()
Image.new("RGB", (64, 64), "red").save(PNG, "PNG")
IMAGE = wire.InputImage(PNG.getvalue(), "in.png", "image/png", "http://127.0.0.1:1/files/x.png")

# One legal value per recipe parameter; enum values are taken from the spec itself.
SAMPLE = {
    "prompt": "a kettle",
    "negative_prompt": "blur",
    "aspect_ratio": "16x9",
    "num_images": 2,
    "rendering_speed": "TURBO",
    "magic_prompt": "OFF",
    "magic_prompt_version": "V_0",
    "style_type": "DESIGN",
    "style_preset": "ART_DECO",
    "style_codes": ["AAFF5733"],
    "color_palette": {"name": "PASTEL"},
    "custom_model_uri": "model/x/version/1",
    "image_weight": 60,
    "resemblance": 80,
    "detail": 60,
    "describe_model_version": "V_3",
}
MODELS = {"v3": "V_3", "legacy": "V_2_TURBO"}
CASES = [
    (op_family, provider)
    for op_family in ops.ENDPOINTS
    for provider in ("ideogram", "aihubmix", "crazyrouter")
]


def params_for(endpoint: ops.Endpoint) -> dict:
    out = {k: v for k, v in SAMPLE.items() if k in endpoint.accepts}
    if endpoint.op is Op.REFRAME:
        out["resolution"] = "1024x1024"
    return out


def images_for(endpoint: ops.Endpoint) -> dict:
    out = {}
    for name in ops.IMAGE_FIELDS:
        if name in endpoint.accepts and name != "character_reference_images_mask":
            out[name] = [IMAGE]
    return out


def as_instance(endpoint: ops.Endpoint, req: wire.WireRequest) -> dict:
    schema = spec.request_schema(endpoint.path, endpoint.content_type)
    if req.json is not None:
        return req.instance()
    body = req.instance()
    return spec.form_to_instance(schema, body["fields"], body["files"])


@pytest.mark.parametrize(("key", "provider_name"), CASES, ids=[f"{k[0].value}-{k[1]}-{p}" for k, p in CASES])
def test_request_matches_spec(key, provider_name):
    endpoint = ops.ENDPOINTS[key]
    provider = providers.get(provider_name)
    model = MODELS[endpoint.family]
    params = params_for(endpoint)
    req = wire.build(provider, endpoint, model, params, 1234, 2, images_for(endpoint))
    schema = spec.request_schema(endpoint.path, endpoint.content_type)
    instance = as_instance(endpoint, req)
    assert spec.validate(instance, schema) == []
    # Every parameter we meant to send arrived under its wire name: none silently dropped.
    flat = dict(instance)
    flat.update(flat.pop("image_request", {}) if isinstance(flat.get("image_request"), dict) else {})
    for name in params:
        assert endpoint.wire_name(name) in flat, name
    assert req.url == provider.base_url + endpoint.path


@pytest.mark.parametrize("key", list(ops.ENDPOINTS), ids=lambda k: f"{k[0].value}-{k[1]}")
def test_unknown_fields_are_refused_before_sending(key):
    endpoint = ops.ENDPOINTS[key]
    with pytest.raises(ValueError, match="is not a field"):
        wire.build(
            providers.get("ideogram"), endpoint, MODELS[endpoint.family], {"not_a_field": 1}, None, 1, {}
        )


def test_legacy_spellings_on_the_wire():
    endpoint = ops.ENDPOINTS[(Op.GENERATE, "legacy")]
    req = wire.build(
        providers.get("ideogram"),
        endpoint,
        "V_2",
        {"prompt": "p", "aspect_ratio": "16x10", "magic_prompt": "ON"},
        5,
        1,
        {},
    )
    assert req.json == {
        "image_request": {
            "prompt": "p",
            "aspect_ratio": "ASPECT_16_10",
            "magic_prompt_option": "ON",
            "seed": 5,
            "num_images": 1,
            "model": "V_2",
        }
    }


def test_legacy_remix_sends_image_request_as_json_string():
    endpoint = ops.ENDPOINTS[(Op.REMIX, "legacy")]
    req = wire.build(
        providers.get("aihubmix"),
        endpoint,
        "V_2A",
        {"prompt": "p", "image_weight": 70},
        None,
        1,
        {"image": [IMAGE]},
    )
    fields = dict(req.fields)
    assert json.loads(fields["image_request"]) == {
        "prompt": "p",
        "image_weight": 70,
        "num_images": 1,
        "model": "V_2A",
    }
    assert [name for name, _ in req.files] == ["image_file"]
    assert req.url == "https://aihubmix.com/ideogram/remix"


def test_crazyrouter_passes_image_urls_and_bearer_auth():
    endpoint = ops.ENDPOINTS[(Op.UPSCALE, "legacy")]
    provider = providers.get("crazyrouter")
    req = wire.build(provider, endpoint, "V_3", {}, None, 1, {"image": [IMAGE]})
    assert req.json == {"image_request": {"num_images": 1}, "image_file": IMAGE.url}
    assert provider.auth_headers("k") == {"Authorization": "Bearer k"}
    no_url = wire.InputImage(b"\x89PNG....", "a.png")
    req = wire.build(provider, endpoint, "V_3", {}, None, 1, {"image": [no_url]})
    assert req.json["image_file"].startswith("data:image/png;base64,")


def test_v3_repeats_style_reference_parts():
    endpoint = ops.ENDPOINTS[(Op.GENERATE, "v3")]
    req = wire.build(
        providers.get("ideogram"),
        endpoint,
        "V_3",
        {"prompt": "p"},
        None,
        1,
        {"style_reference_images": [IMAGE, IMAGE]},
    )
    assert [n for n, _ in req.files] == ["style_reference_images"] * 2
    assert ("magic_prompt_option", "OFF") not in req.fields


@pytest.mark.parametrize(
    ("body", "count", "safe"),
    [
        (
            {
                "created": "2026-01-01T00:00:00Z",
                "data": [
                    {
                        "url": "http://x/a.png",
                        "prompt": "p",
                        "resolution": "1024x1024",
                        "seed": 3,
                        "is_image_safe": True,
                    }
                ],
            },
            1,
            True,
        ),
        (
            {
                "created": 1709123456,
                "data": [
                    {"url": None, "prompt": "p", "resolution": "1024x1024", "seed": 3, "is_image_safe": False}
                ],
            },
            1,
            False,
        ),
        (
            {"created": 1, "data": [{"prompt": "p", "resolution": "1x1", "seed": 3, "is_image_safe": False}]},
            1,
            False,
        ),
    ],
)
def test_parse_is_defensive(body, count, safe):
    result = wire.parse(ops.ENDPOINTS[(Op.GENERATE, "v3")], body)
    assert len(result.images) == count
    assert result.images[0].is_image_safe is safe
    assert (result.images[0].url is not None) is safe


@pytest.mark.parametrize("body", [[], {"data": "x"}, {"data": [1]}])
def test_parse_refuses_garbage(body):
    with pytest.raises(wire.BadResponse):
        wire.parse(ops.ENDPOINTS[(Op.GENERATE, "v3")], body)
