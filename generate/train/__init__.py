"""Train the embedded models on the synthetic world: tiny CLIP, tiny Stable Diffusion, aesthetic and
watermark heads.

No hub is reachable, so the project trains its own small, real models and ships them in ``models/``
in the formats full-size checkpoints use (open_clip, diffusers, LAION's head shapes). The flow:
``corpus`` (world or curated run -> tensors) -> ``clip`` -> ``heads`` -> ``sd`` (VAE, U-Net on the
frozen CLIP text tower) -> ``measure`` (held-out metrics into ``models/metrics.json``).
"""
