"""The ``convnet``, numpynets against PyTorch (CPU, the same threads):
seconds per training epoch of the same network with the same optimizer,
schedule, batch size and loop, without augmentation (the augmentation's own
cost is in bench_augment.py).

The network, in ``torch.nn``, built from the default recipe's architecture
(C=32 filters, H=256 hidden units, dropout 0.4): Conv2d 1->C 5x5 pad 2,
ReLU, MaxPool2d 2, Conv2d C->2C 3x3 pad 1, ReLU, MaxPool2d 2, Flatten,
Linear 2C*49->H, ReLU, Dropout, Linear H->10. numpynets runs
``numpynets.train.fit.fit`` (what ``numpynets train convnet`` runs) for
one pass over the first ``--samples`` training images, PyTorch the same
loop (``common.torch_pass``); both are extrapolated to a 54,000-image epoch.
Repeats alternate between the two and keep the best of each; the ratio is
numpynets / PyTorch::

    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_convnet.py --threads 1
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from bench_cnn import load_images, time_numpynets, torch_optimizer
from common import machine, set_threads, table, torch_pass, torch_version


def torch_convnet(torch, arch: dict):
    """The twin of ``arch`` (a built convnet architecture: its layer list)."""
    nn = torch.nn
    layers = {"conv2d": lambda L: nn.Conv2d(L["in_channels"], L["out_channels"], L["kernel_size"], padding=L["padding"]),
              "relu": lambda L: nn.ReLU(), "maxpool2d": lambda L: nn.MaxPool2d(2),
              "flatten": lambda L: nn.Flatten(), "dropout": lambda L: nn.Dropout(L["p"]),
              "linear": lambda L: nn.Linear(L["in_features"], L["out_features"])}
    mods, channels = [], 1
    for L in arch["layers"]:
        if L["type"] == "batchnorm":                     # after a convolution, over its channels
            mods.append(nn.BatchNorm2d(channels))
            continue
        if L["type"] == "conv2d":
            channels = L["out_channels"]
        mods.append(layers[L["type"]](L))
    return nn.Sequential(*mods)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    set_threads(args.threads)

    from numpynets.models import build_architecture, get_model, get_recipe

    spec = get_model("convnet")
    recipe = replace(get_recipe(spec, "default"), epochs=1, augment=None)
    arch = build_architecture(spec, recipe.arch)
    data, source = load_images(args.samples)
    try:
        import torch
    except ImportError:
        torch = None
    best = {"numpynets": float("inf"), "pytorch": float("inf")}
    for rep in range(args.repeats):
        best["numpynets"] = min(best["numpynets"], time_numpynets(arch, recipe, data, rep))
        if torch is not None:
            torch.manual_seed(rep)
            model = torch_convnet(torch, arch)
            opt = torch_optimizer(torch, model, recipe)
            X, Y = torch.from_numpy(data.x).unsqueeze(1), torch.from_numpy(data.y)
            best["pytorch"] = min(best["pytorch"], torch_pass(torch, model, opt, recipe, X, Y, rep))
    scale = 54_000 / len(data)
    ratio = best["numpynets"] / best["pytorch"] if torch is not None else None
    print(f"{machine()}; {args.threads} thread(s); PyTorch {torch_version()}; {source} images; "
          f"{len(data)} samples per pass, best of {args.repeats}, extrapolated to a 54,000-image epoch")
    print(table([["convnet", recipe.batch_size, f"{best['numpynets'] * scale:.1f}",
                  f"{best['pytorch'] * scale:.1f}" if torch is not None else "-",
                  f"{ratio:.2f}" if ratio else "-"]],
                ["model", "batch", "numpynets s/epoch", "PyTorch s/epoch", "ratio"]))
    if args.json:
        print(json.dumps({"numpynets_epoch_s": round(best["numpynets"] * scale, 2),
                          "pytorch_epoch_s": round(best["pytorch"] * scale, 2) if torch else None,
                          "ratio": round(ratio, 3) if ratio else None, "threads": args.threads}))


if __name__ == "__main__":
    main()
