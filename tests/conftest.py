"""Project-wide fixtures: a small synthetic world, made once per session, a server over it, and
one local Ray for every `--engine ray` test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from t2iscope import offline

# Property tests run on shared 2-core machines: no per-example deadline, no "generation is slow"
# failures, and a fixed example sequence so CI is reproducible (T2I_HYPOTHESIS=dev explores anew).
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], max_examples=60
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("T2I_HYPOTHESIS", "ci"))
# Tests import the libraries directly too: the same offline settings as the CLI (t2iscope.offline).
offline.apply()

WORLD_ROWS = 400
WORLD_SEED = 0
HELDOUT_ROWS = 400
HELDOUT_SEED = 1


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400-row world (seed 0) with images, in two shards of 200 rows. Treat it as read-only."""
    from t2iscope.curate.world.make import make_world

    out = tmp_path_factory.mktemp("world") / "w"
    make_world(out, WORLD_ROWS, seed=WORLD_SEED, images=True, shard_size=200, progress=False)
    return out


@pytest.fixture(scope="session")
def heldout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400-row held-out world (seed 1; the shipped models trained on seed 0) with images, for
    tests that measure the shipped models on pixels they never saw. Treat it as read-only."""
    from t2iscope.curate.world.make import make_world

    out = tmp_path_factory.mktemp("heldout") / "w"
    make_world(out, HELDOUT_ROWS, seed=HELDOUT_SEED, images=True, progress=False)
    return out


@pytest.fixture(scope="session")
def world_server(world_dir: Path) -> Iterator[object]:
    """A WorldServer over ``world_dir`` on 127.0.0.1 (ephemeral port; base URL in ``.url``).

    Rows fail as the truth table's ``http_failure`` says; ``timeout`` rows stall 2 s, so give
    clients a shorter timeout. Rewrite URLs with ``t2iscope.curate.world.serve.local_url``.
    """
    from t2iscope.curate.world.serve import serve_world

    server = serve_world(world_dir, host="127.0.0.1", port=0, timeout_seconds=2.0)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """One local Ray for the session (2 CPUs, ray_runtime's small object store), shared by the curation
    and suite tests. Its workers find tests/curate (the fault-injecting stages of ray_faults) on
    PYTHONPATH, set only while Ray starts."""
    from t2iscope.ray_runtime import connect

    before = os.environ.get("PYTHONPATH")
    here = str(Path(__file__).parent / "curate")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, before) if p)
    try:
        ray = connect(None, num_cpus=2)
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    yield ray
    ray.shutdown()
