"""Issue 6, hostile input: explicit nasty requests against the real server. None may answer 5xx; every error is in
the documented ``{code, message, details, request_id}`` shape; nothing nasty may stall the server.

What the server does with each (also in docs/reliability.md):

* JSON numbers: ``1e308``, ``1e-320`` (subnormal) and ``10**40`` written as an integer are accepted as data (CEL
  sees doubles); ``-1e309`` (out of double range) is a 400; ``NaN``/``Infinity`` are not JSON: 400.
* Duplicate keys in a JSON object: the last one wins (msgspec's behaviour, like Python's ``json``), everywhere.
* Invalid UTF-8 anywhere in a body: 400 ``malformed_json``.
* Idempotency keys are taken byte for byte: whitespace is significant, NUL and any Unicode are allowed, 1-255
  characters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.reliability.conftest import Live

STALL_S = 2.0  # no single request may take longer than this, whatever its content


def _completed(live: Live, event_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        event: dict[str, Any] = live.client.get(f"/v1/events/{event_id}").json()
        if event["status"] in ("COMPLETED", "FAILED"):
            return event
        time.sleep(0.01)
    raise AssertionError(f"event {event_id} still not processed after {timeout_s}s")


def _raw(live: Live, path: str, body: bytes, content_type: str | None = "application/json") -> Any:
    headers = {"Content-Type": content_type} if content_type else {}
    return live.client.post(path, content=body, headers=headers)


def test_oversized_bodies_are_refused_while_reading(live: Live) -> None:
    big = json.dumps(live.event("big", event_data={"x": "a" * (1 << 20)})).encode()
    live.error(_raw(live, "/v1/events", big), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "'
        for _ in range(300):
            yield b"a" * 4096
        yield b'"}'

    response = live.client.post("/v1/programs", content=chunks(), headers={"Content-Type": "application/json"})
    live.error(response, 413, "payload_too_large")
    huge_batch = b'{"events": ["' + b"a" * (8 << 20) + b'"]}'
    live.error(_raw(live, "/v1/events/batch", huge_batch), 413, "payload_too_large")


def test_deep_json_nesting_is_a_400(live: Live) -> None:
    for depth in (17, 1000, 100_000):
        nested = "[" * depth + "]" * depth
        body = json.dumps(live.event(f"deep{depth}", external_id="d", event_data={"x": 0})).encode()
        body = body.replace(b'{"x": 0}', b'{"x": ' + nested.encode() + b"}")
        live.error(_raw(live, "/v1/events", body), 400, "bad_request")
        batch = (f'{{"events": [{body.decode()}]}}').encode()
        response = _raw(live, "/v1/events/batch", batch)
        assert response.status_code in (202, 400), response.text[:300]
    live.error(_raw(live, "/v1/programs", b"[" * 100_000 + b"]" * 100_000), 400, "bad_request")
    live.error(_raw(live, "/v1/programs", b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), 400)


@pytest.mark.parametrize("literal", ["1e308", "1e-320", "1" + "0" * 40, "-0", "123456789012345678901234567890.5"])
def test_extreme_numbers_are_data(live: Live, literal: str) -> None:
    body = (
        f'{{"program_id": "{live.program_id}", "external_id": "n", "idempotency_key": "num{literal}", "event_data": {{"x": {literal}}}}}'
    ).encode()
    response = _raw(live, "/v1/events", body)
    assert response.status_code == 202, response.text
    assert _completed(live, response.json()["id"])["status"] == "COMPLETED"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e309", "-1e309", "0x10", "01", "+1", ".5"])
def test_non_json_numbers_are_a_400(live: Live, literal: str) -> None:
    body = (
        f'{{"program_id": "{live.program_id}", "external_id": "n", "idempotency_key": "bad{literal}", "event_data": {{"x": {literal}}}}}'
    ).encode()
    live.error(_raw(live, "/v1/events", body), 400, "bad_request")


def test_invalid_utf8_is_a_400_in_single_and_batch_bodies(live: Live) -> None:
    single = b'{"program_id": "%s", "external_id": "u\xff\xfe", "idempotency_key": "utf", "event_data": {}}'
    body = live.error(_raw(live, "/v1/events", single % live.program_id.encode()), 400, "bad_request")
    assert body["details"]["reason"] == "malformed_json"
    live.error(_raw(live, "/v1/programs", b'{"name": "\xc3\x28"}'), 400, "bad_request")
    batch = b'{"events": [%s]}' % (single % live.program_id.encode())
    response = _raw(live, "/v1/events/batch", batch)
    assert response.status_code == 202, response.text
    item = response.json()["results"][0]
    assert item["status"] == "error" and item["error"]["code"] == "bad_request", item
    for path in ("/v1/programs/%FF%FE", "/v1/events?external_id=%FF", "/v1/participants/%C3%28"):
        assert live.client.get(path).status_code < 500


def test_duplicate_json_keys_last_one_wins(live: Live) -> None:
    body = (
        f'{{"program_id": "{live.program_id}", "external_id": "dup", "idempotency_key": "first", "idempotency_key": "second",'
        ' "event_data": {"x": 1, "x": 2}}'
    ).encode()
    response = _raw(live, "/v1/events", body)
    assert response.status_code == 202, response.text
    assert response.json()["idempotency_key"] == "second"
    event = _completed(live, response.json()["id"])
    assert event["event_data"] == {"x": 2}
    again = live.client.post("/v1/events", json=live.event("second", external_id="dup", event_data={"x": 2}))
    assert again.status_code == 202 and again.json()["id"] == event["id"]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "json",
    ],
)
def test_wrong_content_types_are_a_415(live: Live, content_type: str | None) -> None:
    body = json.dumps({"name": "x"}).encode()
    live.error(_raw(live, "/v1/programs", body, content_type), 415, "unsupported_media_type")


def _rule(live: Live, condition: str, **fields: Any) -> Any:
    body = {
        "program_id": live.program_id,
        "name": "hostile",
        "condition": condition,
        "actions": [{"type": "TAG", "tag": "seen"}],
        **fields,
    }
    started_s = time.monotonic()
    response = live.client.post("/v1/rules", json=body)
    assert time.monotonic() - started_s < STALL_S, f"creating a rule took {time.monotonic() - started_s:.2f}s"
    return response


@pytest.mark.parametrize(
    "condition",
    [
        "x" * 4097,  # over limits.condition_length_max
        "(" * 33 + "true" + ")" * 33,  # over the compiler's nesting cap
        "[" * 40 + "]" * 40 + " == []",
        "event.a." * 500 + "b",
        "(",
        "'\\xff' == '\\u00'",
    ],
)
def test_giant_or_deeply_nested_cel_is_refused_quickly(live: Live, condition: str) -> None:
    live.error(_rule(live, condition), 400, "bad_request")
    started_s = time.monotonic()
    response = live.client.post("/v1/rules/validate", json={"condition": condition})
    assert time.monotonic() - started_s < STALL_S
    assert response.status_code in (200, 400) and (response.status_code == 400 or not response.json()["valid"])


def test_catastrophic_regexes_do_not_stall(live: Live) -> None:
    condition = "event.s.matches('(a+)+$') || event.s.matches('^(a|aa)*c$') || event.s.matches('(a*)*b')"
    response = _rule(live, condition, stop_after_match=False)
    assert response.status_code == 201, response.text
    rule_id = response.json()["id"]
    try:
        evil = "a" * 60_000 + "!"
        started_s = time.monotonic()
        simulated = live.client.post(f"/v1/rules/{rule_id}/simulate", json={"event": {"s": evil}})
        assert simulated.status_code == 200 and time.monotonic() - started_s < STALL_S
        started_s = time.monotonic()
        accepted = live.client.post("/v1/events", json=live.event("regex", event_data={"s": evil}))
        assert accepted.status_code == 202, accepted.text
        event = _completed(live, accepted.json()["id"], timeout_s=STALL_S)
        assert event["status"] == "COMPLETED"
        took_s = time.monotonic() - started_s
        assert took_s < STALL_S, f"a catastrophic regex took {took_s:.2f}s end to end"
    finally:
        live.client.patch(f"/v1/rules/{rule_id}", json={"status": "ARCHIVED"})


@pytest.mark.parametrize("key", ["ключ-🔑", " ", "  a  ", "a", "k" * 255, "a\x00b", "\t\n", "\u200b", "𝔘" * 100])
def test_odd_idempotency_keys_are_kept_byte_for_byte(live: Live, key: str) -> None:
    first = live.client.post("/v1/events", json=live.event(key))
    assert first.status_code == 202, first.text
    assert first.json()["idempotency_key"] == key
    again = live.client.post("/v1/events", json=live.event(key))
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("key", ["", "k" * 256, "𝔘" * 256])
def test_idempotency_keys_outside_1_to_255_characters_are_a_400(live: Live, key: str) -> None:
    live.error(live.client.post("/v1/events", json=live.event(key)), 400, "bad_request")


@pytest.mark.parametrize(
    ("amount", "status", "code"),
    [
        ("0.000000000000000001", 200, None),  # the smallest amount at scale 18
        ("1.0000000000000000001", 400, "invalid_scale"),  # one decimal too many
        ("1000000000000000000", 400, "bad_request"),  # 10^18 whole units = 10^36 minor units: past AMOUNT_MINOR_MAX
        ("1e3", 400, "bad_request"),
        ("-1", 400, "bad_request"),
        ("0.000000000000000000", 400, "bad_request"),
        ("NaN", 400, "bad_request"),
        ("9" * 400, 400, "bad_request"),
    ],
)
def test_amounts_at_and_beyond_the_scale_18_boundary(live: Live, amount: str, status: int, code: str | None) -> None:
    response = live.client.post(f"/v1/programs/{live.program_id}/assets/{live.asset_id}/fund", json={"amount": amount})
    if code is None:
        assert response.status_code == status, response.text
    else:
        live.error(response, status, code)


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "1969-07-20T20:17:40Z",
        "1970-01-01T00:00:00Z",
        "2038-01-19T03:14:08Z",
        "1900-01-01T00:00:00+01:00",
    ],
)
def test_timestamps_far_in_the_past_and_future_are_processed(live: Live, timestamp: str) -> None:
    response = live.client.post("/v1/events", json=live.event(f"ts{timestamp}", event_timestamp=timestamp))
    assert response.status_code == 202, response.text
    assert _completed(live, response.json()["id"])["status"] == "COMPLETED"


@pytest.mark.parametrize(
    "timestamp",
    [
        "10000-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T00:00:00",
        "2026-01-01T24:00:01Z",
        "yesterday",
    ],
)
def test_impossible_timestamps_are_a_400(live: Live, timestamp: str) -> None:
    live.error(live.client.post("/v1/events", json=live.event(f"bad{timestamp}", event_timestamp=timestamp)), 400)


@pytest.mark.parametrize("value", ["", "abc", "NaN", "1e999", "-inf"])
def test_simulate_with_a_non_numeric_mock_counter_is_a_400(live: Live, value: str) -> None:
    """Found by the fuzzer: ``float("")`` in the simulator answered 500."""
    rules = live.client.get("/v1/rules", params={"program_id": live.program_id}).json()["data"]
    rule_id = rules[0]["id"] if rules else _rule(live, "true").json()["id"]
    response = live.client.post(
        f"/v1/rules/{rule_id}/simulate", json={"event": {}, "participant_state": {"counters": {"visits": value}}}
    )
    body = live.error(response, 400, "bad_request")
    assert body["details"]["fields"][0]["field"] == "participant_state.counters.visits"


@pytest.mark.parametrize("external_id", ["", "x" * 256])
def test_listing_participants_by_an_impossible_external_id_is_a_400(live: Live, external_id: str) -> None:
    """Found by the fuzzer: ``?external_id=`` (empty) reached LMDB as an empty key and answered 500."""
    live.error(live.client.get("/v1/participants", params={"external_id": external_id}), 400, "bad_request")
