"""Bounds of curation options, in one place with no heavy import (so ``--help`` can show them).

An Arrow batch is a slice DuckDB hands over whole (a 2**24-row batch of LAION metadata is already
gigabytes); DuckDB starts every thread up front (100,000 threads hang the machine before any work);
a world of 10**9 rows is a LAION-2B-scale test already (about 150 GB of metadata).
"""

from __future__ import annotations

MAX_BATCH_ROWS = 2**24
MAX_THREADS = 1024
MAX_WORLD_ROWS = 10**9
