"""numpynets predict MODEL_FILE IMAGE..."""

from __future__ import annotations

import numpy as np

from .common import print_json


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify digit images with a model",
                       description="Print the predicted digit and the ten probabilities for each image. "
                       "Images of any size are centred and scaled as MNIST was (dark-on-light is inverted).")
    p.add_argument("model_file", metavar="MODEL_FILE")
    p.add_argument("images", metavar="IMAGE", nargs="+")
    p.add_argument("--raw", action="store_true",
                   help="only resize to 28x28, no cropping or centring (for images already like MNIST)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line, last")
    p.set_defaults(func=run)


def prepare(path, raw: bool = False) -> np.ndarray | None:
    """An image file -> (28, 28) float32 input, or ``None`` for a blank one."""
    from PIL import Image

    from ..data.images import load_image, mnist_like

    img = load_image(path)                                     # (H, W) float32, bright ink
    if raw:
        if img.shape != (28, 28):
            pil = Image.fromarray(img).resize((28, 28), Image.LANCZOS)    # mode "F"
            img = np.clip(np.asarray(pil, np.float32), 0, 1)
        return img.astype(np.float32)
    return mnist_like(img)


def run(args) -> int:
    from ..apps.recognizer import check_digit_model, model_classes
    from ..io import load_model
    from ..nn.losses import softmax

    model, _ = load_model(args.model_file)
    check_digit_model(model, args.model_file)                  # the same test as the draw window's
    dataset, _, names = model_classes(model)
    digits = all(n == str(i) for i, n in enumerate(names))
    # read every image first: an unreadable one stops the command before any output
    inputs = [(path, prepare(path, args.raw)) for path in args.images]
    ready = [x for _, x in inputs if x is not None]
    probs = iter(softmax(model.forward(np.stack(ready)).astype(np.float64)) if ready else [])  # (M, 10)
    results = []
    for path, x in inputs:
        if x is None:
            print(f"{path}: blank image, nothing to predict")
            results.append({"image": path, "digit": None, "probabilities": None})
            continue
        p = next(probs)                                        # (10,)
        digit = int(p.argmax())
        if digits:
            print(f"{path}: {digit}  ({100 * p[digit]:.1f}%)")
            print("  " + "  ".join(f"{d}:{100 * q:5.1f}%" for d, q in enumerate(p)))
        else:
            print(f"{path}: {digit} {names[digit]}  ({100 * p[digit]:.1f}%)")
            print("  " + "  ".join(f"{d} {n}:{100 * q:5.1f}%" for d, (n, q) in enumerate(zip(names, p))))
        results.append({"image": path, "digit": digit, "probabilities": [round(float(q), 6) for q in p]}
                       | ({} if digits else {"class": names[digit]}))
    if args.json:
        print_json({"model_file": args.model_file, "dataset": dataset, "predictions": results})
    return 0
