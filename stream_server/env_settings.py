"""Settings from the environment: every config key as `STREAM_SERVER_<SECTION>__<KEY>`, on top of the
config file (README, "Settings"). Precedence: CLI flags > environment > config file > defaults.

    STREAM_SERVER_SERVER__HOST=0.0.0.0        server.host
    STREAM_SERVER_ENGINE__DEVICE=cuda         engine.device
    STREAM_SERVER_DEFAULT_VOICE=joe           default_voice (top-level keys have no section)
    STREAM_SERVER_AUTH__API_KEYS=k1,k2        lists: comma-separated, or JSON (["k,1", "k2"])
    STREAM_SERVER_API_KEYS=k1,k2              the same (a shorter name for the one most often set)
    STREAM_SERVER_VOICES__JOE_AR__WEIGHTS=/w.pt  a key inside a named voice
    STREAM_SERVER_CACHE__REDIS_URL=null       "null" (or empty) clears a setting that may be null

A value is text that the config's own validation converts (numbers, true/false, names); lists and
whole sections or dictionaries may be JSON. A name that is not a setting is an error, so a typo
does not go unnoticed. REDIS_URL and STREAM_SERVER_CACHE_SECRET keep their own meaning: when set,
they are cache.redis_url and cache.secret, whatever the file and the other variables say. They are
folded into the settings here, so the settings are what runs (nothing reads the environment later).

The CLI's flags go through the same path (load_settings' `flags`): put in place, then validated,
so a bad value stops the server with a message naming the flag.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from .config import AppConfig

log = logging.getLogger(__name__)

PREFIX = "STREAM_SERVER_"
SEPARATOR = "__"
ALIASES = {"API_KEYS": "AUTH__API_KEYS"}
REDIS_URL_ENV = "REDIS_URL"
CACHE_SECRET_ENV = "STREAM_SERVER_CACHE_SECRET"
# Variables with names of their own, folded into these settings (and winning over them) when set
FOLDED = {REDIS_URL_ENV: ["cache", "redis_url"], CACHE_SECRET_ENV: ["cache", "secret"]}
# Variables of the STREAM_SERVER_ family that are not <SECTION>__<KEY> names: the tests' reference
# data folder, and the cache's secret (folded, above)
NOT_SETTINGS = frozenset({"SHARED", CACHE_SECRET_ENV.removeprefix(PREFIX)})

Override = tuple[str, list[str], Any]  # (variable or flag, setting path, value)


class SettingsError(ValueError):
    """A STREAM_SERVER_* variable that names no setting or holds a value it cannot take."""


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _members(tp: Any) -> tuple[list[Any], bool]:
    """The types a value may have (unions opened), and whether None is one of them."""
    tp = _unwrap(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = typing.get_args(tp)
        return [_unwrap(a) for a in args if a is not type(None)], type(None) in args
    return [tp], False


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _child(tp: Any, name: str) -> Any | None:
    """The type of `name` inside a value of type `tp` (a model's field or a dict's value). In a
    union of models (the kinds of voice) it is the union of the field's types in each."""
    found = []
    for member in _members(tp)[0]:
        if _is_model(member) and name in member.model_fields:
            found.append(member.model_fields[name].annotation)
        elif typing.get_origin(member) is dict:
            found.append(typing.get_args(member)[1])
    return Union[tuple(found)] if found else None  # noqa: UP007  (a union of types found at run time)


def _parse(raw: str, tp: Any, variable: str) -> Any:
    members, nullable = _members(tp)
    if nullable and raw.strip().lower() in ("", "null", "none"):
        return None
    structured = [m for m in members if _is_model(m) or typing.get_origin(m) in (dict, list)]
    if len(structured) != len(members):  # str, a number, bool, a Literal: validation converts text
        return raw
    if typing.get_origin(members[0]) is list and not raw.lstrip().startswith("["):
        return [item.strip() for item in raw.split(",") if item.strip()]
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"{variable}: expected JSON ({exc})") from None


def overrides_from(environ: Mapping[str, str]) -> list[Override]:
    """(variable, setting path, value) for each STREAM_SERVER_* variable, in a stable order, then
    REDIS_URL and STREAM_SERVER_CACHE_SECRET when they are set (so they win)."""
    found = []
    for variable in sorted(environ):
        if not variable.startswith(PREFIX):
            continue
        name = variable[len(PREFIX):]
        if name in NOT_SETTINGS:
            continue
        if name in ALIASES:
            if PREFIX + ALIASES[name] in environ:
                continue  # the full name wins
            name = ALIASES[name]
        path = name.lower().split(SEPARATOR)
        tp: Any = AppConfig
        for i, part in enumerate(path):
            tp = _child(tp, part) if part else None
            if tp is None:
                setting = ".".join(path[: i + 1])
                raise SettingsError(
                    f"{variable}: {setting!r} is not a setting (names are STREAM_SERVER_<SECTION>__<KEY>, "
                    "e.g. STREAM_SERVER_ENGINE__DEVICE; see configs/default.yaml)"
                )
        found.append((variable, path, _parse(environ[variable], tp, variable)))
    found += [(variable, path, environ[variable]) for variable, path in FOLDED.items() if environ.get(variable)]
    return found


def apply_overrides(data: dict, base: dict, overrides: list[Override]) -> dict:
    """`data` (a config file's mapping) with each override put in place. A dictionary setting the
    file does not give (voices, voice_aliases) starts from `base` (the file's config with its
    defaults), so that one voice's key does not replace every voice."""
    merged = copy.deepcopy(data)
    for _, path, value in overrides:
        node = merged
        for depth, part in enumerate(path[:-1]):
            if not isinstance(node.get(part), dict):
                seed = base.get(part) if depth == 0 and part in _DICT_FIELDS else None
                node[part] = copy.deepcopy(seed) if isinstance(seed, dict) else {}
            node = node[part]
        node[path[-1]] = value
    return merged


_DICT_FIELDS = frozenset(
    name for name, f in AppConfig.model_fields.items() if typing.get_origin(_unwrap(f.annotation)) is dict
)


def read_file(path: str | Path | None) -> dict:
    if path is None:
        return {}
    return yaml.safe_load(Path(path).read_text()) or {}


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None, flags: Sequence[Override] = (),
) -> AppConfig:
    """The config file (or the defaults), then the STREAM_SERVER_* variables of `environ`
    (os.environ by default) on top, then the CLI's `flags`; each layer validated, its errors
    naming its variables or flags."""
    return settings_from(read_file(path), environ, flags)


def settings_from(
    data: dict, environ: Mapping[str, str] | None = None, flags: Sequence[Override] = ()
) -> AppConfig:
    """load_settings for a config file's mapping."""
    environ = os.environ if environ is None else environ
    config = AppConfig.model_validate(data)  # the file's own errors, named as in the file
    for where, overrides in (("the environment", overrides_from(environ)), ("the command line", list(flags))):
        if overrides:
            data = apply_overrides(data, config.model_dump(), overrides)
            config = _validated(data, overrides, where)
    return config


def with_overrides(config: AppConfig, overrides: Sequence[Override], where: str = "the command line") -> AppConfig:
    """A config with overrides put in place and validated again (a config built in code)."""
    data = config.model_dump()
    return _validated(apply_overrides(data, data, list(overrides)), list(overrides), where)


def _validated(data: dict, overrides: list[Override], where: str) -> AppConfig:
    names = ", ".join(dict.fromkeys(name for name, _, _ in overrides))
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        # without the values: they may be API keys
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        raise SettingsError(f"settings from {where} ({names}) are not valid: {problems}") from None
    log.info("settings from %s: %s", where, names)
    return config
