"""`stream-server serve [--host H] [--port P] [--config FILE] [--device D] [--zeroconf [NAME]] [--no-wyoming] ...`.

Settings come from the defaults, then the config file, then STREAM_SERVER_* environment
variables (env_settings.py), then these flags: each layer validated (a bad flag's value stops the
server with a message naming the flag)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import uvicorn

from .app import create_app
from .config import AppConfig
from .env_settings import Override, SettingsError, load_settings, with_overrides
from .server.shutdown import DrainingServer
from .server.slow_requests import head_deadline_protocol


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-server", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the streaming TTS server")
    serve.add_argument("--host", help="address to bind (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default from config: 8000)")
    serve.add_argument("--config", help="YAML config file (see configs/default.yaml)")
    serve.add_argument("--device", help="torch device of the engine: cpu, cuda, cuda:1 (default from config: cpu)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                       help="log level (default from config: info)")
    serve.add_argument("--wyoming-host", help="address of the Wyoming TTS server (default from config: 127.0.0.1)")
    serve.add_argument("--wyoming-port", type=int, help="port of the Wyoming TTS server (default from config: 10200)")
    serve.add_argument("--zeroconf", nargs="?", const="", metavar="NAME",
                       help="announce the Wyoming server over mDNS so Home Assistant discovers it, as NAME "
                            "(default from config: stream_server); off unless given")
    serve.add_argument("--no-wyoming", action="store_true",
                       help="no Wyoming TTS server (its port has no authentication)")
    gs = serve.add_argument_group(
        "GPT-SoVITS", "serve a GPT-SoVITS v2, v2Pro or v2ProPlus voice named gpt_sovits (docs/gpt_sovits.md)")
    gs.add_argument("--gpt-sovits", metavar="TTS_INFER_YAML",
                    help="GPT-SoVITS's tts_infer.yaml: its custom section's checkpoints and model directories")
    gs.add_argument("--ref-audio", help="the voice's default reference clip (3-10 s); api_v2 requests bring their own")
    gs.add_argument("--prompt-text", default="", help="what the reference clip says")
    gs.add_argument("--prompt-lang", default="en",
                    help="language of the reference clip (api_v2's: en, zh, ja, ko, yue, all_zh, ..., auto)")
    gs.add_argument("--text-lang", default="en", help="language of the text the voice is given (as --prompt-lang)")
    return parser


def _gpt_sovits_flags(args: argparse.Namespace) -> list[Override]:
    """--gpt-sovits: a voice named gpt_sovits from tts_infer.yaml, and that file's device."""
    from .models.gpt_sovits.infer_yaml import voice_from_infer_yaml

    section, device = voice_from_infer_yaml(args.gpt_sovits, args.ref_audio, args.prompt_text, args.prompt_lang,
                                            args.text_lang)
    return [("--gpt-sovits", ["voices", "gpt_sovits"], section.model_dump()),
            ("--gpt-sovits", ["engine", "device"], device)]


def _add_gpt_sovits(config: AppConfig, args: argparse.Namespace) -> AppConfig:
    """A config (built in code) with the --gpt-sovits voice added."""
    return with_overrides(config, _gpt_sovits_flags(args))


def uvicorn_options(config) -> dict:
    """What uvicorn takes from the config (the CLI's server and the tests' use the same)."""
    options = {
        "host": config.server.host,
        "port": config.server.port,
        "ws": "websockets-sansio",
        # a larger WebSocket message is refused with close 1009 before it is buffered whole
        "ws_max_size": config.server.ws_max_size_bytes,
    }
    if config.server.request_timeout_seconds > 0:  # a slow request's head is answered 408, not held
        options["http"] = head_deadline_protocol(config.server.request_timeout_seconds)
    return options


def flag_overrides(args: argparse.Namespace) -> list[Override]:
    """(flag, setting path, value) for each flag given, in the order they apply."""
    given: list[Override] = [
        (flag, path, value) for flag, path, value in (
            ("--host", ["server", "host"], args.host or None),
            ("--port", ["server", "port"], args.port),
            ("--log-level", ["server", "log_level"], args.log_level or None),
            ("--wyoming-host", ["wyoming", "host"], args.wyoming_host or None),
            ("--wyoming-port", ["wyoming", "port"], args.wyoming_port),
            ("--zeroconf", ["wyoming", "zeroconf"], True if args.zeroconf is not None else None),
            ("--zeroconf", ["wyoming", "zeroconf_name"], args.zeroconf or None),
            ("--no-wyoming", ["wyoming", "enabled"], False if args.no_wyoming else None),
        ) if value is not None
    ]
    if args.gpt_sovits:
        given += _gpt_sovits_flags(args)  # takes tts_infer.yaml's device ...
    if args.device:  # ... unless the flag names one
        given.append(("--device", ["engine", "device"], args.device))
    return given


def settings(args: argparse.Namespace, environ=None) -> AppConfig:
    """The config for `serve`: defaults < config file < environment < flags."""
    return load_settings(args.config, environ, flag_overrides(args))


def serve(args: argparse.Namespace) -> None:
    try:
        config = settings(args)
    except SettingsError as exc:
        sys.exit(f"stream-server: {exc}")
    level = config.server.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    exits: list = []  # the server, once made: /control?command=exit asks it to shut down
    app = create_app(config, request_exit=lambda: exits[0].handle_exit(signal.SIGTERM, None))
    base = f"{config.server.host}:{config.server.port}"
    print(
        f"stream_server: loading voices; then the demo is at http://{base}/ "
        f"and the WebSocket at ws://{base}/v1/tts/stream",
        flush=True,
    )
    server = DrainingServer(
        uvicorn.Config(app, log_level=config.server.log_level, **uvicorn_options(config)),
        grace_seconds=config.server.shutdown_grace_seconds,
    )
    exits.append(server)
    server.run()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
