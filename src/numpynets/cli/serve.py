"""numpynets serve [MODEL] [--host H] [--port P]"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="the digit recognizer as a web page on a local server",
        description="Serve a page where you draw a digit and watch the model's ten probabilities, with the "
        "28x28 image it receives, and a JSON API (POST /api/predict, GET /api/models). Listens on "
        "127.0.0.1 only unless --host says otherwise. Ctrl-C stops it.")
    p.add_argument("model_file", metavar="MODEL", nargs="?",
                   help="a model file (.safetensors, the original's .bin) or a run folder "
                   "(default: the newest runs/*/model.safetensors)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--runs", default="runs", metavar="DIR",
                   help="where to look for trained runs' models (default: runs)")
    p.add_argument("--log", action="store_true", help="print one line per request on stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..apps.web_server import serve
    from ..errors import ConfigError

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}")
    return serve(args.model_file, host=args.host, port=args.port, runs_root=args.runs, verbose=args.log)
