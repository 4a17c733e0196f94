"""django_piauth.openapi: the package's authentication classes as OpenAPI security schemes
and its payment endpoints as they answer, in drf-spectacular's schema, with nothing for a
user to configure; and the package unchanged without drf-spectacular."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("drf_spectacular")

from django_piauth import openapi
from django_piauth.payments import MAX_TXID_LENGTH, PaymentInputInvalid, checked_txid
from django_piauth.providers.pi import path_segment

ROOT = Path(__file__).resolve().parent.parent
PAYMENT_PATHS = [
    "/auth/pi/payments/{payment_id}/approve/",
    "/auth/pi/payments/{payment_id}/complete/",
    "/auth/pi/payments/{payment_id}/cancel/",
    "/auth/pi/payments/incomplete/",
]
SHOP_OPERATIONS = [("/api/items/", "get"), ("/api/items/", "post"),
                   ("/api/purchases/", "get"), ("/api/peerid/operation/", "post")]


@pytest.fixture(scope="module")
def example_schema(tmp_path_factory):
    """The example project's schema as ``manage.py spectacular`` writes it, validated
    against the OpenAPI 3 meta-schema and failing on any warning."""
    out = tmp_path_factory.mktemp("openapi") / "schema.json"
    env = {**os.environ}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--format", "openapi-json", "--file", str(out)],
        cwd=ROOT / "example_project", env=env, check=True, capture_output=True, text=True)
    return json.loads(out.read_text())


def test_the_security_schemes(example_schema):
    schemes = example_schema["components"]["securitySchemes"]
    bearer = schemes["PiBearer"]
    assert {key: bearer[key] for key in ("type", "scheme", "bearerFormat")} == {
        "type": "http", "scheme": "bearer", "bearerFormat": "Pi access token"}
    assert "Pi.authenticate" in bearer["description"]
    assert "503" in bearer["description"] and "Retry-After" in bearer["description"]
    for name in ("PiSession", "PeerIDSession"):
        assert {key: schemes[name][key] for key in ("type", "in", "name")} == {
            "type": "apiKey", "in": "cookie", "name": "sessionid"}
        assert "X-CSRFToken" in schemes[name]["description"]
    assert "PeerID" in schemes["PeerIDSession"]["description"]
    assert "pi-login" in schemes["PiSession"]["description"]


def test_every_operation_says_how_to_authenticate(example_schema):
    for path in PAYMENT_PATHS:
        assert example_schema["paths"][path]["post"]["security"] == [
            {"PiBearer": []}, {"PiSession": []}]
    for path, method in SHOP_OPERATIONS:  # the example's DEFAULT_AUTHENTICATION_CLASSES
        assert example_schema["paths"][path][method]["security"] == [
            {"PiBearer": []}, {"PeerIDSession": []}, {"cookieAuth": []}]
    assert "/api/schema/" not in example_schema["paths"]


@pytest.mark.parametrize("path", PAYMENT_PATHS)
def test_the_payment_endpoints_document_what_they_answer(example_schema, path):
    operation = example_schema["paths"][path]["post"]
    responses = operation["responses"]
    assert sorted(responses) == ["200", "400", "401", "403", "404", "409", "503"]
    error = {"$ref": "#/components/schemas/PiAuthError"}
    for status in ("400", "401", "403", "404", "409", "503"):
        assert responses[status]["content"] == {"application/json": {"schema": error}}
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PiPaymentState"}
    assert responses["503"]["headers"]["Retry-After"]["required"] is True
    assert responses["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert operation["tags"] == ["pi-payments"]
    # JSON or a form, as request_data reads them.
    assert sorted(operation["requestBody"]["content"]) == [
        "application/json", "application/x-www-form-urlencoded", "multipart/form-data"]
    if "{payment_id}" in path:
        (payment_id,) = [p for p in operation["parameters"] if p["in"] == "path"]
        assert payment_id["schema"]["pattern"] == openapi.PAYMENT_ID_PATTERN


def test_the_component_schemas(example_schema):
    schemas = example_schema["components"]["schemas"]
    state = schemas["PiPaymentState"]
    assert sorted(state["required"]) == ["amount", "delivered", "identifier", "status", "txid"]
    assert state["properties"]["txid"]["nullable"] is True
    assert state["properties"]["delivered"]["type"] == "boolean"
    # Not every refusal has a code (DRF's own, for authentication and CSRF, do not).
    assert schemas["PiAuthError"]["required"] == ["detail"]
    assert schemas["PiPaymentCompletion"]["required"] == ["txid"]
    incomplete = example_schema["paths"]["/auth/pi/payments/incomplete/"]["post"]
    body = incomplete["requestBody"]["content"]["application/json"]["schema"]
    assert body["anyOf"] == [{"required": ["payment"]}, {"required": ["paymentId"]}]


@pytest.mark.parametrize(("path", "method"), SHOP_OPERATIONS)
def test_the_example_api_documents_the_authentication_answers(example_schema, path, method):
    responses = example_schema["paths"][path][method]["responses"]
    assert {"401", "403", "503"} <= set(responses)
    assert "Retry-After" in responses["503"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]


def matches(pattern: str, value: str) -> bool:
    """As a JSON Schema (ECMA 262) pattern matches: its ``$`` is the end of the text, where
    Python's also matches before a final line feed."""
    return re.search(pattern.removesuffix("$") + r"\Z", value) is not None


@given(st.one_of(st.text(max_size=140), st.from_regex(r"[A-Za-z0-9_-]{1,130}", fullmatch=True),
                 st.from_regex(r"[A-Za-z0-9_-]{1,5}\n", fullmatch=True)))
def test_the_documented_payment_id_is_what_the_endpoints_accept(value):
    try:
        path_segment(value)
        accepted = True
    except ValueError:
        accepted = False
    assert matches(openapi.PAYMENT_ID_PATTERN, value) == accepted


def test_the_documented_txid_is_what_complete_accepts(example_schema):
    pattern = example_schema["components"]["schemas"]["PiPaymentCompletion"][
        "properties"]["txid"]["pattern"]
    for txid in ["a", "A1b2", "x" * MAX_TXID_LENGTH]:
        assert matches(pattern, txid) and checked_txid(txid) == txid
    for txid in ["", "a-b", "é", "x" * (MAX_TXID_LENGTH + 1), "a b", "a\n"]:
        assert not matches(pattern, txid)
        with pytest.raises(PaymentInputInvalid):
            checked_txid(txid)


def test_a_projects_schema_gets_the_schemes_with_nothing_configured(settings):
    """A project with drf-spectacular as its schema class: the app's ready() loaded the
    extensions, its schema shows PiBearer on the payment endpoints."""
    from drf_spectacular.generators import SchemaGenerator

    assert "django_piauth.openapi" in sys.modules  # imported by PiAuthConfig.ready()
    rest_framework = {**settings.REST_FRAMEWORK,
                      "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
    with override_settings(REST_FRAMEWORK=rest_framework):
        schema = SchemaGenerator(urlconf="tests.urls").get_schema(request=None, public=True)
    assert schema["components"]["securitySchemes"]["PiBearer"]["scheme"] == "bearer"
    approve = schema["paths"]["/auth/pi/payments/{payment_id}/approve/"]["post"]
    assert approve["security"] == [{"PiBearer": []}, {"PiSession": []}]
    assert "503" in approve["responses"]
    # The tests' own DRF views, with the project's defaults (PiAuthentication first).
    assert {"PiBearer": []} in schema["paths"]["/api/whoami/"]["get"]["security"]


def test_the_package_works_without_drf_spectacular(tmp_path):
    """drf-spectacular not importable: the app starts, openapi is never imported, the
    payment endpoints answer (401 without credentials) as before."""
    script = textwrap.dedent("""
        import sys
        sys.modules["drf_spectacular"] = None  # as if not installed: find_spec says None
        import django
        django.setup()
        from django.test import Client
        import django_piauth.payment_views, django_piauth.urls, django_piauth.drf
        response = Client().post("/auth/pi/payments/abc/approve/")
        loaded = sorted(name for name in sys.modules
                        if name.startswith("drf_spectacular") and sys.modules[name] is not None)
        print(response.status_code, "django_piauth.openapi" in sys.modules, loaded)
    """)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT),
           "PIAUTH_TEST_DB_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "401 False []", result.stdout
