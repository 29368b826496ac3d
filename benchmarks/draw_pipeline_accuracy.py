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

``--model convnet`` trains the convnet instead (its default recipe, on
``--train`` images for ``--epochs``), and ``--augment both`` trains each
seed twice, without and with augmentation, to show what augmentation does
for drawn digits::

    NUMPYNETS_DATA=../shared/mnist python benchmarks/draw_pipeline_accuracy.py --model convnet \
        --augment both --seeds 1 --train 12000 --epochs 2 --images 1000
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from numpynets.apps.drawing import CANVAS, Drawing, strokes_from_image
from numpynets.apps.recognizer import Recognizer
from numpynets.data import load_mnist
from numpynets.data.augment import AugmentConfig, Augmenter, augment_rng
from numpynets.data.images import mnist_like
from numpynets.data.mnist import Split
from numpynets.models import Recipe, build, build_architecture, get_model, get_recipe, mlp
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
    ap.add_argument("--model", choices=("mlp", "convnet"), default="mlp",
                    help="mlp: the small MLP above (default); convnet: the convnet's default recipe")
    ap.add_argument("--augment", choices=("off", "on", "both"), default="off",
                    help="train without augmentation, with it, or both (one row each)")
    ap.add_argument("--train", type=int, default=30000, help="training images (default 30000)")
    ap.add_argument("--epochs", type=int, help="epochs (default: mlp 3, convnet its recipe's)")
    args = ap.parse_args()

    mn = load_mnist(args.data_dir)
    x, y = mn.test.x[:args.images], mn.test.y[:args.images]
    via = {
        "traced": np.stack([traced(img, args.brush) for img in x]),
        "upscaled": np.stack([mnist_like(np.asarray(Image.fromarray(img).resize((CANVAS, CANVAS), Image.BICUBIC)))
                              for img in x]),
    }
    print(f"{'seed':>4} {'augment':>7} {'raw %':>7} " + " ".join(f"{k + ' %':>10} {'loss':>6}" for k in via))
    worst = {k: -np.inf for k in via}
    train = Split(mn.train.x[:args.train], mn.train.y[:args.train])
    for seed, augment in ((s, a) for s in range(args.seeds)
                          for a in ((False, True) if args.augment == "both" else (args.augment == "on",))):
        init_rng, shuffle_rng = seeds(seed)
        if args.model == "mlp":
            model = build(mlp.architecture(hidden=128, init="he"), seed=init_rng)
            recipe = Recipe(epochs=args.epochs or 3, batch_size=64, lr=0.05, momentum=0.9)
        else:
            spec = get_model("convnet")
            recipe = get_recipe(spec, "default").with_overrides(epochs=args.epochs)
            model = build(build_architecture(spec, recipe.arch), seed=init_rng)
        aug = Augmenter(recipe.augment or AugmentConfig().to_dict(), augment_rng(seed)) if augment else None
        with blas_threads(1):
            fit(model, train, None, recipe, shuffle_rng, progress=False, log=lambda *a: None, augment=aug)
            r = Recognizer(model)
            raw = 100 * (r.probabilities(x).argmax(1) == y).mean()
            row = f"{seed:>4} {'on' if augment else 'off':>7} {raw:7.2f} "
            for k, xs in via.items():
                acc = 100 * (r.probabilities(xs).argmax(1) == y).mean()
                worst[k] = max(worst[k], raw - acc)
                row += f"{acc:10.2f} {raw - acc:6.2f} "
        print(row)
    print("worst loss (points): " + ", ".join(f"{k} {v:.2f}" for k, v in worst.items()))


if __name__ == "__main__":
    main()
