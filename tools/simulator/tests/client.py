"""A minimal client for the simulator's tests: one call, with the session's Basic auth."""

import base64
import json
import urllib.error
import urllib.request


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
