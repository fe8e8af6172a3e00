"""t2iscope: curate LAION-style data, generate with latent diffusion, audit the results.

The core package is deliberately tiny: the version, shared primitives every area uses
(errors, registries, atomic file writes, paths) and the CLI root that mounts each area's commands.
Areas import from here; nothing here imports an area at module load.
"""

__version__ = "0.1.0"
