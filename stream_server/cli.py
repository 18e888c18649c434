"""`stream-server serve [--host H] [--port P] [--config FILE] [--device D] [--zeroconf [NAME]] [--no-wyoming] ...`.

Settings come from the defaults, then the config file, then STREAM_SERVER_* environment
variables (env_settings.py), then these flags."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import uvicorn

from .app import create_app
from .env_settings import SettingsError, load_settings
from .server.shutdown import DrainingServer


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
    gs = serve.add_argument_group("GPT-SoVITS", "serve a GPT-SoVITS v2 voice named gpt_sovits (docs/gpt_sovits.md)")
    gs.add_argument("--gpt-sovits", metavar="TTS_INFER_YAML",
                    help="GPT-SoVITS's tts_infer.yaml: its custom section's checkpoints and model directories")
    gs.add_argument("--ref-audio", help="the voice's default reference clip (3-10 s); api_v2 requests bring their own")
    gs.add_argument("--prompt-text", default="", help="what the reference clip says")
    gs.add_argument("--prompt-lang", default="en", help="language of the reference clip (en, zh)")
    gs.add_argument("--text-lang", default="en", help="language of the text the voice is given (en, zh, auto)")
    return parser


def _add_gpt_sovits(config, args: argparse.Namespace):
    from .config import AppConfig
    from .models.gpt_sovits.infer_yaml import voice_from_infer_yaml

    section, device = voice_from_infer_yaml(args.gpt_sovits, args.ref_audio, args.prompt_text, args.prompt_lang,
                                            args.text_lang)
    data = config.model_dump()
    data["voices"]["gpt_sovits"] = section.model_dump()
    data["engine"]["device"] = device
    return AppConfig.model_validate(data)


def uvicorn_options(config) -> dict:
    """What uvicorn takes from the config (the CLI's server and the tests' use the same)."""
    return {
        "host": config.server.host,
        "port": config.server.port,
        "ws": "websockets-sansio",
        # a larger WebSocket message is refused with close 1009 before it is buffered whole
        "ws_max_size": config.server.ws_max_size_bytes,
    }


def settings(args: argparse.Namespace, environ=None):
    """The config for `serve`: defaults < config file < environment < flags."""
    config = load_settings(args.config, environ)
    if args.host:
        config.server.host = args.host
    if args.port is not None:
        config.server.port = args.port
    if args.log_level:
        config.server.log_level = args.log_level
    if args.wyoming_host:
        config.wyoming.host = args.wyoming_host
    if args.wyoming_port is not None:
        config.wyoming.port = args.wyoming_port
    if args.zeroconf is not None:
        config.wyoming.zeroconf = True
        if args.zeroconf:
            config.wyoming.zeroconf_name = args.zeroconf
    if args.no_wyoming:
        config.wyoming.enabled = False
    if args.gpt_sovits:
        config = _add_gpt_sovits(config, args)  # takes tts_infer.yaml's device
    if args.device:  # ... unless the flag names one
        config.engine.device = args.device
    return config


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
