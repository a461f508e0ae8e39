"""How long seeding and name resolution take."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.timing import median_seconds
from kb.db import session_scope
from kb.migrate import upgrade
from kb.repository import gpu_names, load, model_names
from settings import get_settings


def run() -> dict[str, float]:
    measured = get_settings().measured_data_dir
    with tempfile.TemporaryDirectory() as folder:
        counter = iter(range(1000))

        def fresh_load() -> None:
            url = f"sqlite:///{Path(folder) / f'kb{next(counter)}.db'}"
            upgrade(url)
            load(url=url, measured_dir=measured)

        cold_s = median_seconds(fresh_load, repeats=3)
        url = f"sqlite:///{Path(folder) / 'kb0.db'}"
        reload_s = median_seconds(lambda: load(url=url, measured_dir=measured), repeats=3)
        with session_scope(url) as session:
            models, gpus = model_names(session=session), gpu_names(session=session)
        resolve_s = median_seconds(
            lambda: (models.resolve("llama-3.1-8b"), gpus.resolve("NVIDIA-H100-80GB-HBM3")),
            repeats=2000,
        )
    return {
        "kb_migrate_and_seed_median_s": round(cold_s, 3),
        "kb_reseed_unchanged_median_s": round(reload_s, 3),
        "name_resolution_pair_median_us": round(resolve_s * 1e6, 2),
    }
