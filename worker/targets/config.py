"""Helpers for target modules reading their entry of a routes file: URLs and secrets, checked the same way.

A target type `T` is the module `worker.targets.T` with `from_config(name, options) -> Target`; a routes
file names the type and gives the options.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from worker.errors import ConfigError


def require_url(target: str, options: Mapping[str, Any], key: str = "url") -> str:
    url = options.get(key)
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ConfigError(f"target {target!r}: {key} must be an http(s) URL, got {url!r}")
    return url


def secret_option(target: str, options: Mapping[str, Any], key: str = "secret") -> str:
    """A secret given inline, by environment variable (`secret_env`) or by file (`secret_file`)."""
    given = [k for k in (key, f"{key}_env", f"{key}_file") if options.get(k)]
    if len(given) != 1:
        raise ConfigError(f"target {target!r}: give exactly one of {key}, {key}_env, {key}_file")
    which = given[0]
    value = str(options[which])
    if which == f"{key}_env":
        secret = os.environ.get(value)
        if not secret:
            raise ConfigError(f"target {target!r}: environment variable {value} ({which}) is not set")
        return secret
    if which == f"{key}_file":
        try:
            return Path(value).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"target {target!r}: cannot read {which} {value}: {exc.strerror}") from None
    return value


def known_options(target: str, options: Mapping[str, Any], keys: set[str]) -> None:
    """Refuse options a target does not read (a typo must not silently fall back to a default)."""
    allowed = {"type"} | keys | {f"{k}_env" for k in keys} | {f"{k}_file" for k in keys}
    unknown = set(options) - allowed
    if unknown:
        raise ConfigError(f"target {target!r}: unknown option(s) {', '.join(sorted(unknown))}")


def setting(target: str, options: Mapping[str, Any], key: str, default_env: str | None = None, *,
            required: bool = True) -> str | None:
    """`key` inline, by `key_env` or `key_file`, else the documented variable `default_env`.

    So a routes file may say just `type: zendesk` and take the credentials from APOLOGY_ZENDESK_*.
    """
    if any(options.get(k) for k in (key, f"{key}_env", f"{key}_file")):
        return secret_option(target, options, key)
    if default_env and os.environ.get(default_env):
        return os.environ[default_env]
    if required:
        where = f" or set {default_env}" if default_env else ""
        raise ConfigError(f"target {target!r}: give {key} (or {key}_env, {key}_file){where}")
    return None
