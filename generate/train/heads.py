"""The aesthetic head (LAION's MLP on tiny-CLIP embeddings) and the watermark classifier.

Both are trained on the whole world, not the curated subset: curation drops watermarked and
low-aesthetic rows, which are exactly the examples these scorers must learn from (LAION's own
scorers were likewise trained on labelled sets, not on their filtered output). The aesthetic head
regresses the world's exact ``aesthetic`` truth, not the noisy ``AESTHETIC_SCORE`` column.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from t2iscope import fileio
from t2iscope.generate.train import loop
from t2iscope.generate.train.clip import MODEL_NAME
from t2iscope.generate.train.corpus import Corpus
from t2iscope.generate.train.recipe import HeadRecipe
from t2iscope.nets import IMAGENET_MEAN, IMAGENET_STD, AestheticMLP, WatermarkCNN, clip_embeddings
from t2iscope.weights import AESTHETIC, WATERMARK

WATERMARK_WIDTH = 32


def train_aesthetic(
    clip: torch.nn.Module, corpus: Corpus, r: HeadRecipe, work: Path, device: str, seed: int
) -> AestheticMLP:
    torch.manual_seed(seed)
    emb = clip_embeddings(clip, corpus.images, device).to(device)
    target = torch.as_tensor(corpus.truth["aesthetic"], dtype=torch.float32, device=device)
    head = AestheticMLP(emb.shape[1]).to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=r.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)

    def step(_: int) -> dict[str, float]:
        idx = torch.randint(len(emb), (r.batch,), generator=gen).to(device)
        loss = F.mse_loss(head(emb[idx]).squeeze(-1), target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"mse": loss.item()}

    head.train()
    loop.run("aesthetic", {"head": head}, opt, r.aesthetic_steps, step, work)
    return head.eval().cpu()


def train_watermark(corpus: Corpus, r: HeadRecipe, work: Path, device: str, seed: int) -> WatermarkCNN:
    torch.manual_seed(seed)
    model = WatermarkCNN(WATERMARK_WIDTH).to(device)
    images = corpus.images.to(device)
    # class 0 = watermark, 1 = clear (LAION-5B-WatermarkDetection's order)
    label = torch.as_tensor(~corpus.truth["watermark"].astype(bool), dtype=torch.long, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)

    def step(_: int) -> dict[str, float]:
        idx = torch.randint(len(images), (r.batch,), generator=gen).to(device)
        x = model.preprocess(images[idx])
        loss = F.cross_entropy(model(x), label[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"ce": loss.item()}

    model.train()
    loop.run("watermark", {"model": model}, opt, r.watermark_steps, step, work)
    return model.eval().cpu()


def _save(module: torch.nn.Module, folder: Path, config: dict) -> Path:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    with fileio.atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    fileio.write_json(folder / "config.json", config)
    return folder


def save_aesthetic(head: AestheticMLP, out: Path) -> Path:
    return _save(
        head,
        out,
        {
            "architecture": AESTHETIC,
            "embed_dim": head.input_size,
            "clip": "../clip",
            "clip_name": MODEL_NAME,
            "input": "L2-normalised CLIP image embedding (model.encode_image, then x / ||x||)",
            "output": "aesthetic score on the world's 1-10 scale",
            "target": "world truth column `aesthetic`",
        },
    )


def save_watermark(model: WatermarkCNN, out: Path) -> Path:
    return _save(
        model,
        out,
        {
            "architecture": WATERMARK,
            "width": WATERMARK_WIDTH,
            "input_size": 64,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "input": "RGB resized to 64x64, scaled to 0-1, normalised with mean/std",
            "output": "2 logits (watermark, clear); pwatermark = softmax(logits)[0]",
        },
    )
