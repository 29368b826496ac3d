"""numpynets attention-map MODEL_FILE [--index N] [-o out.png]"""

from __future__ import annotations

from .common import add_data_options


def add_parser(sub) -> None:
    p = sub.add_parser("attention-map", help="draw a trained attention model's attention on a test image",
                       description="Run an attention model on test image N of its data set (MNIST unless the model file records another) and draw what it attends "
                       "to: the image with its patch grid, the 49x49 attention matrix, and for a few query "
                       "patches their attention over the image. Works without a display.")
    p.add_argument("model_file", metavar="MODEL_FILE", help="an attention model file or a run folder")
    p.add_argument("--index", type=int, default=0, metavar="N", help="test image number (default 0)")
    p.add_argument("-o", "--output", metavar="FILE", help="where to write the figure (.png, .pdf, .svg; "
                   "default attention_N.png)")
    p.add_argument("--queries", metavar="T,T,...", help="query patches to draw (token = row*7 + column); "
                   "default: the 4 inkiest patches, spread out")
    p.add_argument("--layer", type=int, default=0, help="which attention layer, for models with several "
                   "(default 0, the first)")
    p.add_argument("--dpi", type=int, default=100, help="dots per inch (default 100: 1200x750 pixels)")
    add_data_options(p)
    p.set_defaults(func=run)


def parse_queries(text: str | None) -> list[int] | None:
    from ..errors import ConfigError

    if text is None:
        return None
    try:
        queries = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--queries takes patch numbers separated by commas (e.g. 10,24,38), got {text!r}") from None
    if not queries:
        raise ConfigError("--queries: give at least one patch number")
    return queries


def run(args) -> int:
    from ..apps.attention_map import attention_for, draw_attention_map, patch_grid, require_attention
    from ..apps.recognizer import model_classes
    from ..data import load_test
    from ..errors import ConfigError
    from ..io import load_model

    if not 10 <= args.dpi <= 600:
        raise ConfigError(f"--dpi must be between 10 and 600, got {args.dpi}")
    queries = parse_queries(args.queries)
    model, _ = load_model(args.model_file)
    layers = require_attention(model, str(args.model_file))   # refuse before loading any data
    grid = patch_grid(model)
    dataset, title, names = model_classes(model)                 # the data set its file records
    test = load_test(dataset, args.data_dir, verify=args.verify, log=lambda *a: None)
    if not 0 <= args.index < len(test):
        raise ConfigError(f"--index {args.index}: the test set has images 0 to {len(test) - 1}")
    image, label = test.x[args.index], int(test.y[args.index])
    probs, weights = attention_for(model, image, args.layer)
    predicted = int(probs.argmax())
    digits = all(n == str(i) for i, n in enumerate(names))
    shown = (lambda c: str(c)) if digits else (lambda c: f"{c} {names[c]}")     # "3" or "3 Dress"
    out = args.output or f"attention_{args.index}.png"
    drawn = draw_attention_map(image, weights, grid, out, queries=queries, predicted=predicted, label=label,
                               probability=float(probs[predicted]),
                               title=f"{'' if digits else title + ' '}test image {args.index}: predicted "
                                     f"{shown(predicted)} ({probs[predicted]:.1%}), true {shown(label)}"
                                     f"{'' if predicted == label else '  (WRONG)'}",
                               dpi=args.dpi, layer=args.layer if len(layers) > 1 else None)
    print(f"test image {args.index}: predicted {shown(predicted)} ({probs[predicted]:.1%}), true {shown(label)}; "
          f"query patches {', '.join(map(str, drawn))}; wrote {out}")
    return 0
