"""A full run at INFO with JSON logs: no secret and no message body appears in anything a worker prints."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.processes import wait_until

from .conftest import Cluster, events

pytestmark = pytest.mark.faults
WEBHOOK_SECRET_FILE_VALUE = "whsec_" + base64.b64encode(b"secret-from-a-mounted-file-32byt").decode()
INBOUND = "whsec_" + base64.b64encode(b"inbound-secret-never-in-logs-32b").decode()
ZENDESK = "zendesk-signing-secret-never-logged"
MARK = "Quokka7731"  # in every message body, nowhere else


def test_a_full_run_logs_no_secret_and_no_message_body(cluster_factory: Callable[..., Cluster],
                                                       tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(WEBHOOK_SECRET_FILE_VALUE + "\n")
    cluster = cluster_factory(WEBHOOK_SECRET_FILE_VALUE, APOLOGY_LOG_LEVEL="INFO", APOLOGY_INBOUND_SECRET=INBOUND,
                              APOLOGY_ZENDESK_SIGNING_SECRET=ZENDESK)
    # The worker signs with the secret from the file; the receiver verifies with it.
    del cluster.env["APOLOGY_WEBHOOK_SECRET"]
    cluster.env["APOLOGY_WEBHOOK_SECRET_FILE"] = str(secret_file)
    stream, expected = events(40, "logs")
    stream = [e.model_copy(update={
        "message": e.message.model_copy(update={"body": f"{e.message.body} {MARK} a@b.example"}),
        "history": [m.model_copy(update={"body": f"{m.body} {MARK}"}) for m in e.history]}) for e in stream]
    with cluster.worker("w") as worker:
        cluster.submit(stream[:20])
        cluster.receiver.wait_for(lambda r: len(r.deliveries) >= 20, timeout=60)
        cluster.switch.status = 422  # refused: dead-lettered with the receiver's answer
        cluster.submit(stream[20:])
        cluster.send_event('{"event_id": "x", "message": {"body": "' + MARK + '"')  # invalid JSON
        cluster.send_event({**stream[0].model_dump(mode="json"), "ticket": MARK})  # wrong type
        wait_until(lambda: cluster.stores.dead_letter_count() == 22 and cluster.idle(), timeout=60,
                   what="refused deliveries and bad events dead-lettered")
        worker.stop()
        lines = [line for line in worker.history if line.strip()]
    assert len(expected) == 40 and len(lines) > 40
    output = "".join(lines)
    structured = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(r.get("event") == "reply judged" for r in structured)
    assert any(r.get("event") == "delivery dead-lettered" for r in structured)
    secrets = [WEBHOOK_SECRET_FILE_VALUE, WEBHOOK_SECRET_FILE_VALUE.removeprefix("whsec_"), INBOUND,
               INBOUND.removeprefix("whsec_"), ZENDESK]
    for secret in secrets:
        assert secret not in output
    assert MARK not in output, next(line for line in lines if MARK in line)
    assert "a@b.example" not in output
    print(f"\n{len(lines)} log lines ({len(structured)} JSON) searched for {len(secrets)} secrets and the "
          "body marker: none found")
