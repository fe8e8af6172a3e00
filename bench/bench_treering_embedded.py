"""Tree-Ring on the embedded model: unattacked detection AUC of marked vs unmarked generations per
detector setting (key channel, decoder-inversion steps, DDIM-inversion steps, statistic).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/bench_treering_embedded.py \\
        [--n 24] [--channel -1] [--decoder-steps 0,50,100] [--ddim-steps 10,20]

The audit's ``generated`` source: ``--n`` marked and ``--n`` unmarked generations (seeds 0..n-1,
DDIM 20 steps, CFG 7, "a <color> <kind>"), upscaled to 256 px as the audit does; detection
resizes them back to 64 px. The null is the unmarked generations (Wen et al. 2023's null). Prints
one line per setting: AUC of the reference's L1 distance and of its p-value, the mean distances,
and the decoder-inversion seconds per image. docs/watermark.md records the measured table.
"""

from __future__ import annotations

import argparse
import time

from t2iscope.evaluate.attacks import sd_model
from t2iscope.evaluate.audits.watermark import auc, generated_set
from t2iscope.generate import treering


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--channel", type=int, default=-1)
    ap.add_argument("--decoder-steps", type=_ints, default=[0, 50, 100])
    ap.add_argument("--ddim-steps", type=_ints, default=[10, 20])
    args = ap.parse_args()
    sd = sd_model()
    key = treering.TreeRingKey(channel=args.channel)
    sets = {
        "marked": [im for _, im in generated_set(sd, args.n, 256, key)],
        "unmarked": [im for _, im in generated_set(sd, args.n, 256)],
    }
    for dec in args.decoder_steps:
        began = time.perf_counter()
        latents = {name: treering.image_latents(sd, images, dec) for name, images in sets.items()}
        per_image = (time.perf_counter() - began) / (2 * args.n)
        for steps in args.ddim_steps:
            found = {name: treering.invert_latents(sd, z, steps) for name, z in latents.items()}
            m, u = key.distance(found["marked"]), key.distance(found["unmarked"])
            pm, pu = key.score(found["marked"], "p_value"), key.score(found["unmarked"], "p_value")
            print(
                f"channel {args.channel} decoder {dec} ({per_image:.2f} s/image) ddim {steps}: "
                f"AUC L1 {auc(-m, -u):.3f} (distance {m.mean():.1f} vs {u.mean():.1f}), "
                f"AUC p-value {auc(pm, pu):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
