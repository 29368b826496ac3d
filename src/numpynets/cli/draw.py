"""numpynets draw [MODEL]"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("draw", help="draw a digit with the mouse and watch a model read it",
                       description="Open a window with a canvas: draw a digit and see the model's ten "
                       "probabilities update as you draw, and the 28x28 image it receives (the drawing "
                       "cropped, scaled to 20x20 and centred as MNIST was). Needs a desktop and Tk.")
    p.add_argument("model_file", metavar="MODEL", nargs="?",
                   help="a model file (.safetensors, the original's .bin) or a run folder "
                   "(default: the newest runs/*/model.safetensors)")
    p.add_argument("--runs", default="runs", metavar="DIR",
                   help="where to look for trained runs' models (default: runs)")
    p.add_argument("--brush", type=float, default=20.0, metavar="PX",
                   help="brush diameter in canvas pixels, on the 280x280 canvas (default 20)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..apps.draw import main
    from ..errors import ConfigError

    if not 1 <= args.brush <= 80:
        raise ConfigError(f"--brush must be between 1 and 80 pixels, got {args.brush:g}")
    return main(args.model_file, runs_root=args.runs, brush=args.brush)
