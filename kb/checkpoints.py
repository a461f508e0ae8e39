"""A model of your own: its checkpoint read from a config.json, a local snapshot folder or the
Hugging Face Hub, and the catalog record made of it (marked `user-added`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kb.model_config import ConfigError, read_config
from kb.records import ModelBase, Precision
from kb.seed import validation_message
from planner.deployment_plan import MODEL_ID

PERMISSIVE_LICENSES = frozenset({"apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause"})
QUALITY_BENCHMARK = "MMLU-Pro"


@dataclass(frozen=True)
class Checkpoint:
    """A config.json, and the checkpoint's weight bytes where a snapshot folder states them."""

    config: dict[str, Any]
    where: str
    weights_bytes: int | None = None
    weights_source: str | None = None


def read_checkpoint(path: Path) -> Checkpoint:
    """`path` is a config.json, or a local snapshot folder holding one; a folder's
    model.safetensors.index.json (`total_size`) or single model.safetensors gives the true
    weight bytes."""
    folder = path if path.is_dir() else None
    config_path = path / "config.json" if folder else path
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{config_path}: not a readable JSON file ({error})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{config_path}: expected a JSON object")
    if folder is None:
        return Checkpoint(config, str(config_path))
    index, single = folder / "model.safetensors.index.json", folder / "model.safetensors"
    if index.exists():
        try:
            total = json.loads(index.read_text(encoding="utf-8"))["metadata"]["total_size"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"{index}: metadata.total_size is missing or unreadable") from None
        if not isinstance(total, int) or total <= 0:
            raise ConfigError(f"{index}: metadata.total_size must be a positive integer")
        return Checkpoint(config, str(config_path), total, f"{index} metadata.total_size")
    if single.exists():
        return Checkpoint(config, str(config_path), single.stat().st_size, f"size of {single}")
    return Checkpoint(config, str(config_path))


def fetch_from_hub(repo_id: str, folder: Path) -> Checkpoint:
    """A checkpoint's config.json and safetensors index from the Hugging Face Hub (through
    `huggingface_hub`, which reads HF_TOKEN for gated repositories itself). Offline, or
    when the Hub does not answer, ConfigError says what to do instead."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    instead = "download its config.json (and model.safetensors.index.json) and pass --config FOLDER"
    try:
        hf_hub_download(repo_id, "config.json", local_dir=folder)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        raise ConfigError(
            f"cannot fetch {repo_id} from the Hugging Face Hub: this machine is offline (or "
            f"HF_HUB_OFFLINE is set); {instead}"
        ) from None
    except (RepositoryNotFoundError, GatedRepoError):
        raise ConfigError(
            f"the Hugging Face Hub has no repository {repo_id} that this machine may read (a "
            "gated model needs HF_TOKEN)"
        ) from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "no answer"
        raise ConfigError(f"the Hugging Face Hub refused {repo_id} ({status}); {instead}") from None
    # A single-file or non-safetensors checkpoint has no index: weights from the parameters.
    with suppress(EntryNotFoundError):
        hf_hub_download(repo_id, "model.safetensors.index.json", local_dir=folder)
    checkpoint = read_checkpoint(folder)
    return Checkpoint(
        checkpoint.config,
        f"https://huggingface.co/{repo_id}/blob/main/config.json",
        checkpoint.weights_bytes,
        f"https://huggingface.co/{repo_id}/blob/main/model.safetensors.index.json total_size"
        if checkpoint.weights_bytes
        else None,
    )


def model_record(
    checkpoint: Checkpoint,
    *,
    model_id: str,
    precision: Precision | None = None,
    weights_bytes: int | None = None,
    license: str | None = None,
    quality_mmlu_pro: float | None = None,
    tasks: Iterable[str] = ("chat",),
    languages: Iterable[str] = (),
    today: dt.date | None = None,
) -> ModelBase:
    """The catalog record of a user's own model, marked `user-added`; ConfigError names what
    cannot be read. Given weight bytes win over the snapshot's; with none, the planner
    estimates them from the parameter count and says so."""
    if not MODEL_ID.match(model_id):
        raise ConfigError(f"id {model_id!r} must be a repository id of the form ORG/NAME")
    fields = read_config(checkpoint.config, precision)
    if weights_bytes is not None:
        bytes_source: str | None = "given with --weights-bytes"
    else:
        weights_bytes, bytes_source = checkpoint.weights_bytes, checkpoint.weights_source
    permissive = (license or "").lower() in PERMISSIVE_LICENSES
    values: dict[str, Any] = fields | {
        "id": model_id,
        "display_name": model_id.rsplit("/", 1)[-1],
        "weights_bytes": weights_bytes,
        "weights_source": bytes_source if weights_bytes is not None else None,
        "license": license or "unknown",
        "license_permissive": permissive,
        "tasks": sorted(set(tasks)),
        "languages": sorted(set(languages)),
        "origin": "user-added",
        "source": f"config.json at {checkpoint.where} (added by the user)",
        "retrieved": today or dt.date.today(),
    }
    if quality_mmlu_pro is not None:
        values |= {
            "quality_benchmark": QUALITY_BENCHMARK,
            "quality_score": quality_mmlu_pro,
            "quality_source": "given by the user (preflight kb add-model)",
            "quality_license": "user-supplied",
        }
    try:
        return ModelBase.model_validate(values)
    except ValidationError as error:
        raise ConfigError(f"model '{model_id}': {validation_message(error)}") from None
