"""What the simulator's tests share: a simulator served on a free loopback port with a spec excerpt to
hold it to, and one call with the session's Basic auth."""

import base64
import copy
import json
import threading
import unittest
import urllib.error
import urllib.request

from tools.simulator import tripletex_simulator


def call(base, token, method, path, body=None, auth=True, headers=None):
    """(status, JSON body or None, headers) of one request to the simulator at `base`."""
    request = urllib.request.Request(base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if auth and token:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"0:{token}".encode()).decode())
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None, response.headers
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None, error.headers


def strict(schema):
    """OpenAPI 3.0 schema -> JSON Schema: refs to definitions, no extra properties, null allowed."""
    schema = copy.deepcopy(schema)
    if "$ref" in schema:
        return {"$ref": schema["$ref"].replace("#/components/schemas/", "#/definitions/")}
    for key in ("readOnly", "format", "example", "description", "default", "enum"):
        schema.pop(key, None)
    if schema.get("type") == "object" or "properties" in schema:
        schema["properties"] = {name: strict(value) for name, value in schema.get("properties", {}).items()}
        if "additionalProperties" in schema:
            schema["additionalProperties"] = strict(schema["additionalProperties"])
        else:
            schema["additionalProperties"] = bool(not schema["properties"])
    if "items" in schema:
        schema["items"] = strict(schema["items"])
    if "type" in schema:
        schema["type"] = [schema["type"], "null"]
    return schema


class SimulatorTestCase(unittest.TestCase):
    """A simulator for the whole class, and the spec excerpt at SPEC_PATH as strict JSON Schemas."""

    SPEC_PATH = None

    @classmethod
    def setUpClass(cls):
        with open(cls.SPEC_PATH, encoding="utf-8") as handle:
            cls.spec = json.load(handle)
        cls.definitions = {name: strict(schema) for name, schema in cls.spec["components"]["schemas"].items()}
        cls.simulator = tripletex_simulator.Simulator()
        cls.server = tripletex_simulator.SimulatorServer(0, cls.simulator)
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}"
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def call(self, method, path, body=None, auth=True, headers=None):
        return call(self.base, getattr(self, "token", None), method, path, body, auth, headers)
