"""How much accuracy the digit window's input path costs, over several seeds.

``numpynets draw`` feeds the model a 280x280 drawing cropped, scaled to
20x20 and centred by centre of mass (``numpynets.data.images.mnist_like``).
This trains a small MLP per seed (30,000 training images, 3 epochs, the
same as tests/test_draw_logic.py) and compares its accuracy on MNIST test
images given raw with the same images pushed through the window's path:

* traced: each run of pixels above 0.5 drawn as a stroke on the canvas
  (brush 14, the test's choice; ``--brush`` to try others), rendered
  antialiased, preprocessed;
* upscaled: the image resized 10x (bicubic) to the canvas, preprocessed.

The test asserts "within one point" for seed 0; this shows the spread::

    NUMPYNETS_DATA=../shared/mnist python benchmarks/draw_pipeline_accuracy.py --seeds 10
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from numpynets.apps.drawing import CANVAS, Drawing, strokes_from_image
from numpynets.apps.recognizer import Recognizer
from numpynets.data import load_mnist
from numpynets.data.images import mnist_like
from numpynets.data.mnist import Split
from numpynets.models import Recipe, build, mlp
from numpynets.runtime import blas_threads
from numpynets.train import fit, seeds


def traced(img, brush):
    d = Drawing(brush=brush)
    for stroke in strokes_from_image(img, scale=10):
        d.begin(*stroke[0])
        for p in stroke[1:]:
            d.extend(*p)
        d.end()
    return mnist_like(d.array())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--images", type=int, default=2000, help="MNIST test images (default 2000)")
    ap.add_argument("--brush", type=float, default=14.0, help="brush for the traced strokes (default 14)")
    ap.add_argument("--data-dir")
    args = ap.parse_args()

    mn = load_mnist(args.data_dir)
    x, y = mn.test.x[:args.images], mn.test.y[:args.images]
    via = {
        "traced": np.stack([traced(img, args.brush) for img in x]),
        "upscaled": np.stack([mnist_like(np.asarray(Image.fromarray(img).resize((CANVAS, CANVAS), Image.BICUBIC)))
                              for img in x]),
    }
    print(f"{'seed':>4} {'raw %':>7} " + " ".join(f"{k + ' %':>10} {'loss':>6}" for k in via))
    worst = {k: -np.inf for k in via}
    for seed in range(args.seeds):
        init_rng, shuffle_rng = seeds(seed)
        model = build(mlp.architecture(hidden=128, init="he"), seed=init_rng)
        with blas_threads(1):
            fit(model, Split(mn.train.x[:30000], mn.train.y[:30000]), None,
                Recipe(epochs=3, batch_size=64, lr=0.05, momentum=0.9), shuffle_rng,
                progress=False, log=lambda *a: None)
            r = Recognizer(model)
            raw = 100 * (r.probabilities(x).argmax(1) == y).mean()
            row = f"{seed:>4} {raw:7.2f} "
            for k, xs in via.items():
                acc = 100 * (r.probabilities(xs).argmax(1) == y).mean()
                worst[k] = max(worst[k], raw - acc)
                row += f"{acc:10.2f} {raw - acc:6.2f} "
        print(row)
    print("worst loss (points): " + ", ".join(f"{k} {v:.2f}" for k, v in worst.items()))


if __name__ == "__main__":
    main()
