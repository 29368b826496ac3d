"""XOR: the 2 -> 4 sigmoid -> 1 sigmoid network, trained on its four rows
with mean squared error.

    python examples/xor.py [--seed 0]

Full-batch Adam at lr 0.1 (per-sample SGD, as the original project did,
needs about a million epochs), until every row is on the right side of 0.5
and the loss is below 0.01.
"""

import argparse

import numpynets as nn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, default=0)
seed = parser.parse_args().seed

train, test = nn.data.load("xor")               # x (4, 2), y (4, 1) float32: the truth table
model = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid(),
                      loss="mse", dataset="xor", seed=seed)
opt = nn.optim.Adam(model, lr=0.1)

for epoch in range(1, 5001):
    out = model.forward(train.x, training=True)   # (4, 1)
    loss, dout = nn.mse(out, train.y)
    model.zero_grad()
    model.backward(dout)
    opt.step()
    if loss < 0.01 and nn.evaluate(model, train) == 1.0:
        break
print(f"solved in {epoch} epochs, MSE {loss:.5f}")

for x, y, p in zip(test.x, test.y, model.forward(test.x)):
    print(f"{x} -> {p[0]:.3f} (target {y[0]:g})")
print(f"test accuracy {nn.evaluate(model, test):.2%}")
