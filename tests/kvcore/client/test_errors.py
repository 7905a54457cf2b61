"""A failed response comes back as the `kvcore.errors` class the server raised: the
client's registry is derived from the error tree, so every class round-trips."""

from __future__ import annotations

import inspect
import json

import httpx
import pytest

from kvcore import errors
from kvcore.client._errors import error_from_response
from kvcore.client._http import envelope

pytestmark = pytest.mark.timeout(10)


def _envelope(code: int, message: str = "m") -> bytes:
    return json.dumps(
        {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
    ).encode()


def _tree() -> list[type[errors.KVError]]:
    """Every error class `kvcore.errors` defines, found independently of the client."""
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.KVError) and cls is not errors.KVError and cls.__module__ == errors.__name__
    ]


@pytest.mark.parametrize("cls", _tree(), ids=lambda cls: cls.__name__)
def test_every_class_of_the_tree_comes_back_as_itself(cls: type[errors.KVError]) -> None:
    err = error_from_response(cls.http_status, _envelope(cls.code, "the message"))
    assert type(err) is cls
    assert err.message == "the message"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (404, 10009, errors.KeyNotFound),
        (404, 10013, errors.NamespaceNotFound),
        (400, 10014, errors.DuplicateTitle),
        (401, 10000, errors.AuthenticationError),
        (403, 10000, errors.PermissionDenied),
        (412, 10030, errors.PreconditionFailed),
        (503, 10043, errors.Unavailable),
        (413, 10011, errors.PayloadTooLarge),
        (400, 10011, errors.MalformedNamespaceId),  # a ValidationError (Cloudflare's code)
        (414, 10001, errors.KeyTooLong),  # a ValidationError: a key over 512 bytes in the URL
        (400, 10001, errors.ValidationError),
        (404, 7003, errors.NotFoundRoute),
        (500, 10002, errors.InternalError),
        (400, 10026, errors.TooManyNamespaces),
        (401, 1000, errors.InvalidApiToken),
        (403, 9109, errors.Unauthorized),
    ],
)
def test_error_envelopes_map_to_the_error_tree(status: int, code: int, cls: type[errors.KVError]) -> None:
    err = error_from_response(status, _envelope(code, "the message"))
    assert type(err) is cls
    assert err.message == "the message"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, 10009, errors.AuthenticationError),  # a status one family owns decides first
        (403, 1000, errors.PermissionDenied),
        (400, 10030, errors.PreconditionFailed),  # then a code one family owns
        (409, 10009, errors.KeyNotFound),
        (400, 9106, errors.AuthenticationError),  # Cloudflare's own 9106, any 4xx
        (400, 10000, errors.ValidationError),  # 10000 is two families': it decides nothing
        (422, 10011, errors.ValidationError),  # so is 10011
        (404, 10000, errors.KeyNotFound),
        (500, 99999, errors.InternalError),
        (502, 10011, errors.InternalError),
    ],
)
def test_a_pair_no_class_says_maps_by_status_then_code(
    status: int, code: int, cls: type[errors.KVError]
) -> None:
    assert isinstance(error_from_response(status, _envelope(code)), cls)


def test_errors_without_an_envelope_map_by_status() -> None:
    assert type(error_from_response(502, b"<html>bad gateway</html>")) is errors.InternalError
    assert type(error_from_response(412, b"")) is errors.PreconditionFailed
    assert type(error_from_response(404, b"nope")) is errors.KeyNotFound
    assert "HTTP 418" in error_from_response(418, b"").message
    bad_gateway = error_from_response(502, b"<html>bad gateway</html>")
    assert bad_gateway.message == "HTTP 502: <html>bad gateway</html>"


def test_an_unsuccessful_envelope_with_status_200_maps_by_code() -> None:
    with pytest.raises(errors.NamespaceNotFound, match="gone"):
        envelope(httpx.Response(200, content=_envelope(10013, "gone")))
    with pytest.raises(errors.InternalError, match="request failed"):
        envelope(httpx.Response(200, json={"success": False, "errors": []}))
    assert envelope(httpx.Response(200, json={"success": True, "result": [1]})) == ([1], {})
