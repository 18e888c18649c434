"""Settings from the environment (stream_server/env_settings.py) and the CLI's flags on top:
CLI flags > STREAM_SERVER_* variables > config file > defaults, every key reachable, a typo an
error, REDIS_URL and STREAM_SERVER_CACHE_SECRET folded into the settings (what runs is what they
say), and every flag validated like the rest."""

from __future__ import annotations

import pytest

from stream_server.cli import _parser, settings
from stream_server.config import AppConfig
from stream_server.env_settings import SettingsError, load_settings


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  port: 9100\n  host: 127.0.0.2\nengine:\n  device: cpu\n  max_slots: 3\n")
    return path


def serve_args(*argv: str):
    return _parser().parse_args(["serve", *argv])


def test_without_variables_the_file_as_before(config_file):
    assert load_settings(None, {}) == AppConfig()
    cfg = load_settings(config_file, {"PATH": "/bin", "STREAM_SERVER_SHARED": "/work/shared",
                                      "STREAM_SERVER_CACHE_SECRET": "s3cret"})  # not a <SECTION>__<KEY> name
    assert (cfg.server.port, cfg.engine.max_slots) == (9100, 3)


def test_the_environment_overrides_the_file_and_keeps_the_rest(config_file):
    cfg = load_settings(config_file, {"STREAM_SERVER_SERVER__PORT": "9200", "STREAM_SERVER_ENGINE__DEVICE": "cuda"})
    assert (cfg.server.port, cfg.engine.device) == (9200, "cuda")
    assert (cfg.server.host, cfg.engine.max_slots) == ("127.0.0.2", 3)  # from the file
    assert cfg.session == AppConfig().session  # defaults


def test_flags_override_the_environment(config_file):
    environ = {"STREAM_SERVER_SERVER__PORT": "9200", "STREAM_SERVER_ENGINE__DEVICE": "cuda",
               "STREAM_SERVER_WYOMING__PORT": "10300"}
    cfg = settings(serve_args("--config", str(config_file), "--port", "9300", "--device", "cuda:1",
                              "--no-wyoming", "--log-level", "debug"), environ)
    got = (cfg.server.port, cfg.engine.device, cfg.wyoming.enabled, cfg.server.log_level)
    assert got == (9300, "cuda:1", False, "debug")
    assert cfg.wyoming.port == 10300 and cfg.server.host == "127.0.0.2"  # no flag: environment, file
    cfg = settings(serve_args("--config", str(config_file)), environ)
    assert (cfg.server.port, cfg.engine.device, cfg.wyoming.enabled) == (9200, "cuda", True)


def test_values_of_every_kind():
    cfg = load_settings(None, {
        "STREAM_SERVER_ENGINE__WARMUP": "false",
        "STREAM_SERVER_SYNTHESIS__LENGTH_SCALE": "1.25",
        "STREAM_SERVER_SERVER__LOG_LEVEL": "warning",
        "STREAM_SERVER_CACHE__REDIS_URL": "redis://cache:6379/0",
        "STREAM_SERVER_AUTH__API_KEYS": "k1, k2",
        "STREAM_SERVER_CORS__ALLOW_ORIGINS": '["https://a.example", "https://b.example"]',
        "STREAM_SERVER_DEFAULT_VOICE": "joe",  # a top-level key: no section
        "STREAM_SERVER_VOICES__JOE_AR__WEIGHTS": "/weights/joe_ar.pt",  # inside one voice
        "STREAM_SERVER_GPT_SOVITS_API__VOICE": "null",
    })
    assert cfg.engine.warmup is False and cfg.synthesis.length_scale == 1.25 and cfg.server.log_level == "warning"
    assert cfg.cache.redis_url == "redis://cache:6379/0"
    assert cfg.auth.api_keys == ["k1", "k2"]
    assert cfg.cors.allow_origins == ["https://a.example", "https://b.example"]
    assert cfg.default_voice == "joe" and cfg.voice_aliases["alloy"] == "joe"
    assert cfg.voices["joe_ar"].weights == "/weights/joe_ar.pt"
    assert cfg.voices["joe"] == AppConfig().voices["joe"]  # the other voice is kept
    assert cfg.gpt_sovits_api.voice is None


def test_null_clears_a_setting_from_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cache:\n  redis_url: redis://file:6379/0\nvoices:\n  joe_ar: {kind: ar, weights: /w.pt}\n"
                    "  joe: {kind: piper_vits}\n")
    cfg = load_settings(path, {"STREAM_SERVER_CACHE__REDIS_URL": "null",
                               "STREAM_SERVER_VOICES__JOE_AR__WEIGHTS": "null"})
    assert cfg.cache.redis_url is None
    assert cfg.voices["joe_ar"].weights is None  # a key that only one kind of voice has


def test_the_short_name_for_api_keys():
    assert load_settings(None, {"STREAM_SERVER_API_KEYS": "a,b"}).auth.api_keys == ["a", "b"]
    both = {"STREAM_SERVER_API_KEYS": "a", "STREAM_SERVER_AUTH__API_KEYS": "b"}
    assert load_settings(None, both).auth.api_keys == ["b"]  # the full name wins


def test_every_documented_key_can_be_set():
    """Each scalar setting of the built-in config, by its variable name (a value of its own kind)."""
    defaults = AppConfig().model_dump(mode="json")
    for section, values in defaults.items():
        if not isinstance(values, dict) or section in ("voices", "voice_aliases"):
            continue
        for key, value in values.items():
            if isinstance(value, bool):
                value, text = not value, str(not value).lower()
            elif isinstance(value, (int, float)):
                value = value + 1
                text = str(value)
            elif isinstance(value, str):
                text = value  # names and Literals: the default is a value the setting takes
            else:
                continue
            name = f"STREAM_SERVER_{section.upper()}__{key.upper()}"
            assert getattr(getattr(load_settings(None, {name: text}), section), key) == value, name


@pytest.mark.parametrize(("environ", "message"), [
    ({"STREAM_SERVER_ENGINE__DEVIC": "cuda"}, "'engine.devic' is not a setting"),
    ({"STREAM_SERVER_ENGNE__DEVICE": "cuda"}, "'engne' is not a setting"),
    ({"STREAM_SERVER_DEFAULTVOICE": "joe"}, "'defaultvoice' is not a setting"),
    ({"STREAM_SERVER_SERVER__PORT": "eighty"}, r"STREAM_SERVER_SERVER__PORT.*server\.port"),
    ({"STREAM_SERVER_ENGINE": "cuda"}, "STREAM_SERVER_ENGINE: expected JSON"),
    ({"STREAM_SERVER_DEFAULT_VOICE": "nobody"}, "nobody"),
])
def test_errors_name_the_variable(environ, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(None, environ)


def test_errors_do_not_echo_values():
    """A bad value may be an API key: the error names the setting, not the value."""
    with pytest.raises(SettingsError) as error:
        load_settings(None, {"STREAM_SERVER_API_KEYS": '["secret-key ", "x"]'})
    assert "auth.api_keys" in str(error.value) and "secret-key" not in str(error.value)


def test_redis_url_and_the_cache_secret_are_folded_into_the_settings(tmp_path):
    """REDIS_URL and STREAM_SERVER_CACHE_SECRET keep their meaning (they win over cache.redis_url
    and cache.secret, from the file or a variable), and the settings say so: the cache reads
    nothing from the environment (tests/test_cache_runtime.py)."""
    path = tmp_path / "c.yaml"
    path.write_text("cache:\n  redis_url: redis://file:6379/0\n  secret: the file's secret\n")
    environ = {"REDIS_URL": "redis://elsewhere:6379/0", "STREAM_SERVER_CACHE_SECRET": "a long shared secret",
               "STREAM_SERVER_CACHE__REDIS_URL": "redis://variable:6379/0"}
    cache = load_settings(path, environ).cache
    assert cache.redis_url == "redis://elsewhere:6379/0"
    assert cache.secret is not None and cache.secret.get_secret_value() == "a long shared secret"
    assert "a long shared secret" not in repr(cache)
    unset = load_settings(path, {"REDIS_URL": "", "STREAM_SERVER_CACHE__REDIS_URL": "redis://variable:6379/0"})
    assert unset.cache.redis_url == "redis://variable:6379/0"  # an empty REDIS_URL is no REDIS_URL
    assert unset.cache.secret.get_secret_value() == "the file's secret"
    assert load_settings(None, {}).cache.redis_url is None and load_settings(None, {}).cache.secret is None


def test_flags_are_validated_and_a_bad_one_is_named():
    """A flag's value goes through the same validation as the file's: a zeroconf name over mDNS's
    63-byte label is refused with a message naming the flag and the setting, as the same name from
    the environment is."""
    with pytest.raises(SettingsError) as error:
        settings(serve_args("--zeroconf", "k" * 100), {})
    message = str(error.value)
    assert "--zeroconf" in message and "wyoming.zeroconf_name" in message and "63" in message
    with pytest.raises(SettingsError, match="STREAM_SERVER_WYOMING__ZEROCONF_NAME"):
        settings(serve_args(), {"STREAM_SERVER_WYOMING__ZEROCONF_NAME": "k" * 100})
    assert settings(serve_args("--zeroconf", "k" * 63), {}).wyoming.zeroconf_name == "k" * 63


def test_the_cli_refuses_an_invalid_flag_with_a_clear_message():
    from stream_server.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["serve", "--zeroconf", "k" * 100])
    assert "stream-server: settings from the command line (--zeroconf) are not valid" in str(exited.value.code)
