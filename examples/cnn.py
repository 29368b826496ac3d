"""The MNIST CNN: 8 filters of 3x3 (padding 1) + ReLU -> 2x2 max-pool -> 1568 -> 10.

    python examples/cnn.py [--seed 0]

Adam at lr 0.01 with a per-step cosine decay to 0, batch 16, 3 epochs: the
built-in ``numpynets train cnn`` recipe, written out with the library API.
"""

import argparse
import math

import numpynets as nn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, default=0)
seed = parser.parse_args().seed

train, test = nn.data.load("mnist")             # x (60000, 28, 28) float32, y (60000,)
model = nn.Sequential(
    nn.Conv2D(1, 8, kernel_size=3, padding=1),  # (N, 1, 28, 28) -> (N, 8, 28, 28)
    nn.ReLU(),
    nn.MaxPool2D(2),                            # -> (N, 8, 14, 14)
    nn.Flatten(),                               # -> (N, 1568)
    nn.Linear(8 * 14 * 14, 10),                 # -> (N, 10)
    input_shape=(1, 28, 28),                    # a convolution takes any image size: say which
    seed=seed,
)
opt = nn.optim.Adam(model, lr=0.01)

epochs, batch_size = 3, 16
steps = epochs * math.ceil(len(train) / batch_size)
step = 0
for epoch in range(epochs):
    total = 0.0
    for x, y in nn.data.batches(train, batch_size, shuffle=True, seed=seed * 1000 + epoch):
        opt.lr = 0.005 * (1 + math.cos(math.pi * step / steps))  # cosine decay, 0.01 -> 0
        logits = model.forward(x, training=True)    # x (B, 28, 28) is read as (B, 1, 28, 28)
        loss, dlogits = nn.softmax_cross_entropy(logits, y)
        model.zero_grad()
        model.backward(dlogits)
        opt.step()
        total += loss * len(y)
        step += 1
    print(f"epoch {epoch + 1}: train loss {total / len(train):.4f}")

print(f"test accuracy {nn.evaluate(model, test):.2%}")
