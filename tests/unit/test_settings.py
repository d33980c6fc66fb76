"""Settings: the contract's names, secrets from files, errors that name the variable."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.settings import load_settings

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("APOLOGY_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_follow_the_design() -> None:
    cfg = load_settings()
    assert cfg.broker_url == "redis://localhost:6379/0"
    assert cfg.redis_url == cfg.broker_url
    assert cfg.webhook_url is None and cfg.policy is None and cfg.log_format is None


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("APOLOGY_POLICY=empathy-first\nAPOLOGY_LOG_FORMAT=json\n")
    monkeypatch.setenv("APOLOGY_BROKER_URL", "redis://broker:6379/2")
    cfg = load_settings()
    assert (cfg.broker_url, cfg.policy, cfg.log_format) == ("redis://broker:6379/2", "empathy-first", "json")


def test_a_dotenv_file_reaches_every_reader_and_the_environment_wins(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DESIGN.md: a .env file is read too, also for the variables read where they are used (the CLI's
    APOLOGY_POLICY, a helpdesk's inbound secret), not only by Settings; a variable already set wins."""
    import json
    import os

    from tests.conftest import ROOT
    from worker.cli import main
    from worker.settings import read_env_file

    monkeypatch.setattr(os, "environ", dict(os.environ))  # what read_env_file sets is undone after the test
    (tmp_path / ".env").write_text("APOLOGY_POLICY=empathy-first\nAPOLOGY_FRESHDESK_SECRET=from-file\n"
                                   "OTHER_TOOL_SETTING=x\n")
    monkeypatch.setenv("APOLOGY_FRESHDESK_SECRET", "from-environment")
    assert main(["review", str(ROOT / "config" / "examples" / "tickets.jsonl"), "--format", "jsonl"]) == 0
    policies = {json.loads(line)["policy"]["name"] for line in capsys.readouterr().out.splitlines()}
    assert policies == {"empathy-first"}
    read_env_file()
    assert os.environ["APOLOGY_FRESHDESK_SECRET"] == "from-environment"
    assert "OTHER_TOOL_SETTING" not in os.environ  # only this program's variables


def test_a_secret_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    monkeypatch.setenv("APOLOGY_WEBHOOK_URL", "https://hooks.example.com/a")
    monkeypatch.setenv("APOLOGY_WEBHOOK_SECRET_FILE", str(tmp_path / "secret"))
    cfg = load_settings()
    assert cfg.webhook_secret is not None and cfg.webhook_secret.get_secret_value() == SECRET


@pytest.mark.parametrize("env, named", [
    ({"APOLOGY_WEBHOOK_URL": "https://hooks.example.com/a"}, "APOLOGY_WEBHOOK_SECRET"),
    ({"APOLOGY_WEBHOOK_URL": "not a url", "APOLOGY_WEBHOOK_SECRET": SECRET}, "APOLOGY_WEBHOOK_URL"),
    ({"APOLOGY_WEBHOOK_SECRET": "hunter2"}, "APOLOGY_WEBHOOK_SECRET"),
    ({"APOLOGY_LOG_FORMAT": "xml"}, "APOLOGY_LOG_FORMAT"),
    ({"APOLOGY_METRICS_PORT": "http"}, "APOLOGY_METRICS_PORT"),
    ({"APOLOGY_WEBHOOK_SECRET_FILE": "/nonexistent/secret"}, "APOLOGY_WEBHOOK_SECRET_FILE"),
    ({"APOLOGY_WEBHOOK_SECRET": SECRET, "APOLOGY_WEBHOOK_SECRET_FILE": "/x"}, "APOLOGY_WEBHOOK_SECRET_FILE"),
    ({"APOLOGY_BROKER_URL": "notaurl"}, "APOLOGY_BROKER_URL"),
    ({"APOLOGY_BROKER_URL": "redis://"}, "APOLOGY_BROKER_URL"),
    ({"APOLOGY_STORE_URL": "http://cache:6379"}, "APOLOGY_STORE_URL"),
    ({"APOLOGY_BROKER_URL": "sentinel://h:26379"}, "APOLOGY_STORE_URL"),
])
def test_invalid_settings_fail_naming_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                    named: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_the_visibility_timeout_is_a_lease_where_workers_renew_it_and_outlasts_every_countdown_elsewhere() -> None:
    # Our transport renews what a live worker holds at every sweep: the timeout outlasts a few missed sweeps
    # and a task the solo pool runs inside its main loop, and a killed worker's tasks are back in minutes.
    cfg = load_settings()
    assert cfg.own_transport
    assert cfg.visibility_timeout >= 2 * cfg.task_time_limit and cfg.visibility_timeout <= 300
    assert cfg.visibility_timeout >= 4 * cfg.restore_sweep_seconds
    # kombu's own (another scheme) renews nothing: there a held countdown must not outlive the timeout.
    tls = load_settings(broker_url="rediss://redis.example:6380/0")
    assert not tls.own_transport
    assert tls.visibility_timeout > tls.delivery_backoff_max_seconds
    assert tls.visibility_timeout > tls.order_wait_max_seconds


def test_an_explicit_visibility_timeout_also_shortens_the_restore_sweep() -> None:
    assert load_settings(broker_url="rediss://redis.example:6380/0").restore_sweep_seconds == 100  # kombu's period
    cfg = load_settings(visibility_timeout_seconds=6)
    assert (cfg.visibility_timeout, cfg.restore_sweep_seconds) == (6, 1)
    from worker.app import create_app

    options = create_app(cfg).conf.broker_transport_options
    assert options["visibility_timeout"] == 6 and options["unacked_restore_interval"] == 1
    assert options["unacked_mutex_expire"] == 6


def test_the_reconciler_waits_longer_than_a_message_can_legitimately_be_out_of_sight() -> None:
    cfg = load_settings()
    assert cfg.reconcile_after > (cfg.visibility_timeout + cfg.restore_sweep_seconds + cfg.longest_countdown
                                  + cfg.task_time_limit - 1)
    # Found missing: out of sight longer than a worker too busy to read its BRPOP reply can leave one, looked
    # at four times or more within that.
    assert cfg.reconcile_missing >= cfg.task_time_limit
    assert 1 <= cfg.reconcile_interval <= cfg.reconcile_missing / 4
    assert load_settings(task_time_limit=300, task_soft_time_limit=200).reconcile_missing == 300
    quick = load_settings(visibility_timeout_seconds=6, delivery_backoff_max_seconds=1,
                          reconcile_after_seconds=15)
    assert (quick.reconcile_after, quick.reconcile_interval) == (15, 1.0)
    with pytest.raises(ConfigError, match="APOLOGY_RECONCILE_AFTER_SECONDS must be longer than 12"):
        load_settings(visibility_timeout_seconds=6, delivery_backoff_max_seconds=1, reconcile_after_seconds=12)
    with pytest.raises(ConfigError, match="APOLOGY_JOURNAL_TTL_SECONDS"):
        load_settings(journal_ttl_seconds=3600)


def test_redis_brokers_get_the_fixed_transport_and_others_keep_kombus() -> None:
    from worker.app import create_app
    from worker.broker import TRANSPORT

    assert create_app(load_settings()).conf.broker_transport == TRANSPORT
    assert create_app(load_settings(broker_url="sentinel://h:26379",
                                            store_url="redis://h:6379/0")).conf.broker_transport is None


def test_task_events_are_on_and_sent_events_only_when_asked_for() -> None:
    from worker.app import create_app

    default = create_app(load_settings()).conf
    assert default.worker_send_task_events is True
    assert default.task_send_sent_event is False
    assert create_app(load_settings(task_sent_events=True)).conf.task_send_sent_event is True
    off = create_app(load_settings(task_events=False, task_sent_events=True)).conf
    assert off.worker_send_task_events is False and off.task_send_sent_event is False


def test_deliveries_have_their_own_queue_taken_first() -> None:
    from worker.app import create_app
    from worker.broker import BACKFILL_QUEUE, DELIVERY_QUEUE, QUEUE

    conf = create_app(load_settings()).conf
    assert [q.name for q in conf.task_queues] == [DELIVERY_QUEUE, QUEUE, BACKFILL_QUEUE]
    assert conf.broker_transport_options["queue_order_strategy"] == "priority"
    assert conf.task_routes["apology.deliver"] == {"queue": DELIVERY_QUEUE}
    assert conf.task_routes["apology.backfill_chunk"] == {"queue": BACKFILL_QUEUE}
    assert conf.task_default_queue == QUEUE
    assert conf.worker_prefetch_multiplier == 2


def test_an_empty_variable_is_an_unset_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Procfile's deliverer line sets APOLOGY_METRICS_PORT to APOLOGY_DELIVERER_METRICS_PORT, empty when
    that is unset: no metrics server, not a start-up error."""
    monkeypatch.setenv("APOLOGY_METRICS_PORT", "")
    assert load_settings().metrics_port is None
    monkeypatch.setenv("APOLOGY_METRICS_PORT", "9809")
    assert load_settings().metrics_port == 9809


def test_the_procfile_deliverer_serves_no_metrics_even_with_a_port_in_dotenv(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty variable gives way to .env's value, so the deliverer's empty port took the worker's (an
    operator's review, session 18: "Address already in use"). The Procfile passes 0, which is none."""
    from tests.conftest import ROOT

    (tmp_path / ".env").write_text("APOLOGY_METRICS_PORT=9808\n")
    monkeypatch.setenv("APOLOGY_METRICS_PORT", "")
    assert load_settings().metrics_port == 9808
    assert "APOLOGY_METRICS_PORT=${APOLOGY_DELIVERER_METRICS_PORT:-0}" in (ROOT / "Procfile").read_text()
    monkeypatch.setenv("APOLOGY_METRICS_PORT", "0")
    assert load_settings().metrics_port is None
