"""A small self-attention model on MNIST: each image is 49 tokens (its 4x4
patches), one pre-norm residual block of 2-head self-attention and a
feed-forward layer, then the mean over the tokens and a linear classifier.

    python examples/attention.py [--seed 0]

Small (D = 32) so that it trains in well under a minute: AdamW with a
per-step cosine learning rate, 2 epochs.
"""

import argparse
import math

import numpynets as nn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, default=0)
seed = parser.parse_args().seed

D, F, T = 32, 64, 49                            # token width, feed-forward width, tokens
train, test = nn.data.load("mnist")             # x (60000, 28, 28) float32, y (60000,)
model = nn.Sequential(
    nn.Patchify(4),                             # (N, 28, 28) -> (N, 49, 16): one row per 4x4 patch
    nn.Linear(16, D),                           # -> (N, 49, D)
    nn.PositionEmbedding(T, D),                 # + a learned (49, D) table: where each patch is
    nn.ReLU(),
    nn.Residual([nn.LayerNorm(D), nn.SelfAttention(D, heads=2)]),          # x + attn(norm(x))
    nn.Residual([nn.LayerNorm(D), nn.Linear(D, F), nn.ReLU(), nn.Linear(F, D)]),   # x + ffn(norm(x))
    nn.LayerNorm(D),
    nn.MeanPool(),                              # -> (N, D): the mean over the 49 tokens
    nn.Linear(D, 10),                           # -> (N, 10)
    input_shape=(28, 28),
    seed=seed,
)
opt = nn.optim.AdamW(model, lr=3e-3, weight_decay=0.01)

epochs, batch_size = 2, 64
steps = epochs * math.ceil(len(train) / batch_size)
step = 0
for epoch in range(epochs):
    total = 0.0
    for x, y in nn.data.batches(train, batch_size, shuffle=True, seed=seed * 1000 + epoch):
        opt.lr = 1.5e-3 * (1 + math.cos(math.pi * step / steps))  # cosine decay, 3e-3 -> 0
        logits = model.forward(x, training=True)    # (B, 10)
        loss, dlogits = nn.softmax_cross_entropy(logits, y)
        model.zero_grad()
        model.backward(dlogits)
        opt.step()
        total += loss * len(y)
        step += 1
    print(f"epoch {epoch + 1}: train loss {total / len(train):.4f}")

print(f"test accuracy {nn.evaluate(model, test):.2%}")
