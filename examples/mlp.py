"""The MNIST MLP, 784 -> 512 ReLU -> 10, trained with the library API.

    python examples/mlp.py [--seed 0]

SGD with Nesterov momentum, a per-step cosine learning rate from 0.1 to 0,
He initialisation, 5 epochs on the 60,000 training images.
"""

import argparse
import math

import numpynets as nn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, default=0)
seed = parser.parse_args().seed

train, test = nn.data.load("mnist")             # x (60000, 28, 28) float32 in [0, 1], y (60000,) digits
model = nn.Sequential(nn.Linear(784, 512, init="he"), nn.ReLU(), nn.Linear(512, 10, init="he"), seed=seed)
opt = nn.optim.SGD(model, lr=0.1, momentum=0.9, nesterov=True)

epochs, batch_size = 5, 64
steps = epochs * math.ceil(len(train) / batch_size)
step = 0
for epoch in range(epochs):
    total = 0.0
    for x, y in nn.data.batches(train, batch_size, shuffle=True, seed=seed * 1000 + epoch):
        opt.lr = 0.05 * (1 + math.cos(math.pi * step / steps))   # cosine decay, 0.1 -> 0
        logits = model.forward(x, training=True)    # (B, 10)
        loss, dlogits = nn.softmax_cross_entropy(logits, y)
        model.zero_grad()
        model.backward(dlogits)
        opt.step()
        total += loss * len(y)
        step += 1
    print(f"epoch {epoch + 1}: train loss {total / len(train):.4f}")

print(f"test accuracy {nn.evaluate(model, test):.2%}")
