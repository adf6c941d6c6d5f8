"""Train a small 3-D segmentation network in plain PyTorch, augmenting each batch with spineaug in the loop.

    python examples/torch_train.py --iterations 20               # phantom CT cases, preset xdomain, CPU or CUDA

Needs only the core install (``pip install -e .`` in the spineaug checkout): torch, the phantom and the engine.
The loader reads *enlarged* patches (``PatchSampler`` with the read size of ``Pipeline.for_patch``, as nnU-Net's
loader does); the pipeline rotates/scales each sample about the patch centre and its ``Spatial`` entry cuts the final
patch from the middle, so rotations read tissue, not padding. Every sample of the batch draws its own parameters.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

import spineaug
from spineaug import phantom
from spineaug.data import PatchSampler, Sample, robust_zscore


def cases(n: int, domain: str) -> list[Sample]:
    """``n`` phantom cases (z-scored images, task labels 0-3) at 4 mm, small enough for a CPU."""
    out = []
    for seed in range(n):
        case = phantom.make_case(seed, domain, shape=(32, 40, 64), spacing=4.0)
        out.append(Sample(f"{domain}_{seed}", robust_zscore(case.image)[None], case.label, case.affine))
    return out


def network(classes: int = 4, width: int = 8) -> nn.Module:
    block = lambda i, o: nn.Sequential(nn.Conv3d(i, o, 3, padding=1), nn.InstanceNorm3d(o), nn.LeakyReLU())  # noqa: E731
    return nn.Sequential(block(1, width), block(width, width), nn.Conv3d(width, classes, 1))


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="xdomain")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--patch", type=int, default=24, help="cubic final patch edge (default: 24)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)  # network initialisation; augmentation draws from its own generator below

    patch = (args.patch,) * 3
    # the sampler places the patch and reads around it; the pipeline cuts the read's middle
    training = spineaug.Pipeline.from_preset(args.preset, check_finite=False).for_patch(patch)
    aug = training.pipeline.to(device)
    sampler = PatchSampler(cases(4, "ct"), patch, length=args.iterations * args.batch, seed=args.seed,
                           read_size=training.read_size)  # fmt: skip
    loader = torch.utils.data.DataLoader(sampler, batch_size=args.batch, drop_last=True)
    generator = torch.Generator().manual_seed(args.seed)  # CPU: the same parameters on every device

    model = network().to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for image, label in loader:
        image, label = image.to(device), label.to(device)
        with torch.no_grad():
            image, label = aug(image, label, generator=generator)  # (B, 1, *read) -> (B, 1, *patch)
        loss = nn.functional.cross_entropy(model(image), label[:, 0])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    print(f"{len(losses)} iterations on {device}: loss {np.mean(losses[:3]):.3f} -> {np.mean(losses[-3:]):.3f}")
    return losses


if __name__ == "__main__":
    main()
