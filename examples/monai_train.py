"""Train a small MONAI UNet on spineaug phantom data, augmenting with spineaug per sample or on the batch.

    python examples/monai_train.py --mode batch  --iterations 20   # spineaug on the collated batch (fast path)
    python examples/monai_train.py --mode worker --iterations 20   # spineaug inside the worker Compose

Needs the ``monai`` extra (``pip install -e '.[monai]'`` in the spineaug checkout). Writes a tiny phantom
dataset (NIfTI) unless ``--data`` names one in nnU-Net raw layout (``imagesTr/CASE_0000.nii.gz``, ``labelsTr/CASE.nii.gz``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from monai.data import CacheDataset, DataLoader
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, NormalizeIntensityd

from spineaug.integrations.monai import SpineAugd


def data_dicts(root: Path) -> list[dict[str, str]]:
    images = sorted((root / "imagesTr").glob("*_0000.nii.gz"))
    return [{"image": str(p), "label": str(root / "labelsTr" / (p.name[: -len("_0000.nii.gz")] + ".nii.gz"))} for p in images]


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["worker", "batch"], default="batch")
    parser.add_argument("--preset", default="xdomain")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--patch", type=int, default=32, help="cubic patch edge (default: 32)")
    parser.add_argument("--data", default=None, help="nnU-Net raw dataset folder (default: write a phantom one)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)

    if args.data is None:
        from spineaug import phantom

        with tempfile.TemporaryDirectory(prefix="spineaug-monai-") as out:
            root = phantom.write_datasets(out, "ct", 4, spacing=4.0, shape=(32, 40, 64), progress=False)["ct"]
            return train(args, root, device)
    return train(args, Path(args.data), device)


def train(args: argparse.Namespace, root: Path, device: torch.device) -> list[float]:
    patch = (args.patch,) * 3
    aug = SpineAugd(keys=["image", "label"], label_key="label", preset=args.preset, patch_size=patch)  # the one change

    load = [LoadImaged(keys=("image", "label")), EnsureChannelFirstd(keys=("image", "label")),
            NormalizeIntensityd(keys="image")]  # fmt: skip
    transform = Compose(load + [aug] if args.mode == "worker" else load).set_random_state(args.seed)
    dataset = CacheDataset(data_dicts(root), transform=transform, cache_rate=1.0, num_workers=0, progress=False)
    loader = DataLoader(dataset, batch_size=2, shuffle=True, num_workers=args.workers, drop_last=True)

    net = UNet(spatial_dims=3, in_channels=1, out_channels=4, channels=(8, 16, 32), strides=(2, 2)).to(device)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    aug.set_random_state(args.seed)
    losses: list[float] = []
    while len(losses) < args.iterations:
        for batch in loader:
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            if args.mode == "batch":
                batch = aug(batch)  # per-sample parameters, one call for the whole batch, on the device
            optimizer.zero_grad()
            loss = loss_fn(net(batch["image"]), batch["label"])
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            print(f"iteration {len(losses)}: loss {losses[-1]:.4f}")
            if len(losses) == args.iterations:
                break
    return losses


if __name__ == "__main__":
    main()
