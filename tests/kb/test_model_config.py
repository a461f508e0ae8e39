"""A model of your own from its config.json: published configs of every family read into the
same facts the curated catalog holds, and configs it cannot read refused by field."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from kb.catalog import model_spec
from kb.checkpoints import Checkpoint, model_record, read_checkpoint
from kb.db import session_scope
from kb.model_config import ConfigError
from kb.tables import Model
from planner.memory import kv_bytes_per_token_per_gpu, recurrent_state_bytes, weight_bytes
from planner.specs import ModelSpec, ServingConfig

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"


def spec(folder: str, **options: Any) -> ModelSpec:
    record = model_record(read_checkpoint(CONFIGS / folder), model_id="me/test", **options)
    return ModelSpec.model_validate(record.model_dump(include=set(ModelSpec.model_fields)))


def catalog_model(url: str, model_id: str) -> ModelSpec:
    with session_scope(url) as session:
        model = session.get(Model, model_id)
        assert model is not None
        return model_spec(model)


def test_llama_2_7b_is_what_its_shapes_say() -> None:
    llama = spec("meta-llama__Llama-2-7b-hf", precision="bf16")
    assert llama.attention == "mha" and llama.max_context_tokens == 4096
    assert llama.params_total_b == pytest.approx(6.738, abs=0.001)
    weights = weight_bytes(llama, "bf16")
    assert weights.total / 1e9 == pytest.approx(13.5, abs=0.05)
    assert weights.basis == "parameter formula"
    # 2 (K and V) x 32 layers x 32 heads x 128 dims x 2 bytes
    assert kv_bytes_per_token_per_gpu(llama, ServingConfig(precision="bf16")) == 524_288


@pytest.mark.parametrize(
    ("folder", "catalog_id", "attention", "precision"),
    [
        ("mistralai__Mixtral-8x7B-v0.1", "mistralai/Mixtral-8x7B-Instruct-v0.1", "gqa", "bf16"),
        ("deepseek-ai__DeepSeek-V3", "deepseek-ai/DeepSeek-V3", "mla", "fp8"),
        ("google__gemma-2-9b-it", "google/gemma-2-9b-it", "hybrid_sliding", "bf16"),
        ("openai__gpt-oss-20b", "openai/gpt-oss-20b", "hybrid_sliding", "fp4"),
        ("Qwen__Qwen3-30B-A3B", "Qwen/Qwen3-30B-A3B", "gqa", "bf16"),
        ("moonshotai__Kimi-K2.5", "moonshotai/Kimi-K2.5", "mla", "int4"),
    ],
)
def test_published_configs_read_as_the_curated_catalog_holds_them(
    seeded_sqlite_url: str, folder: str, catalog_id: str, attention: str, precision: str
) -> None:
    read, curated = spec(folder), catalog_model(seeded_sqlite_url, catalog_id)
    assert read.attention == attention and read.precision == precision
    for name in (
        "num_layers",
        "hidden_size",
        "num_attention_heads",
        "num_kv_heads",
        "head_dim",
        "sliding_window_tokens",
        "sliding_window_layers",
        "kv_lora_rank",
        "moe_num_experts",
        "moe_experts_per_token",
        "moe_intermediate_size",
        "moe_dense_layers",
    ):
        assert getattr(read, name) == getattr(curated, name), name
    # The catalog states totals as published (rounded: "1T", "671B"); counted from the shapes
    # they agree within 3 %.
    assert read.params_total_b == pytest.approx(curated.params_total_b, rel=0.03)
    for precision_served in {read.precision, "bf16"}:
        cfg = ServingConfig(tp=8, precision=precision_served)
        assert kv_bytes_per_token_per_gpu(read, cfg) == kv_bytes_per_token_per_gpu(curated, cfg)


def test_mixed_precision_checkpoints_keep_their_other_layers_in_16_bit() -> None:
    for folder in ("openai__gpt-oss-20b", "moonshotai__Kimi-K2.5"):
        assert spec(folder).non_expert_precision == "bf16", folder
    assert spec("deepseek-ai__DeepSeek-V3").non_expert_precision is None  # all linear layers fp8


def test_hybrid_linear_attention_reads_its_recurrent_state() -> None:
    qwen = spec("Qwen__Qwen3-Next-80B-A3B-Instruct")
    assert qwen.attention == "hybrid_linear" and qwen.full_attention_layers == 12
    assert qwen.linear_attention_layers == 36
    assert qwen.params_total_b == pytest.approx(80, rel=0.03)
    assert qwen.params_active_b == pytest.approx(3.9, rel=0.1)
    # 36 layers x (32 value heads x 128 x 128 recurrent + 8192 conv channels x 3) x 2 bytes
    assert recurrent_state_bytes(qwen, 1) == 36 * (32 * 128 * 128 + 8192 * 3) * 2


def test_a_snapshot_folder_gives_the_true_weight_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "snapshot"
    shutil.copytree(CONFIGS / "meta-llama__Llama-2-7b-hf", folder)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 13476839424}, "weight_map": {}})
    )
    record = model_record(read_checkpoint(folder), model_id="meta-llama/Llama-2-7b-hf")
    assert record.weights_bytes == 13476839424
    assert "model.safetensors.index.json" in (record.weights_source or "")
    assert record.origin == "user-added" and record.precision == "fp16"
    given = model_record(read_checkpoint(folder), model_id="a/b", weights_bytes=14_000_000_000)
    assert (given.weights_bytes, given.weights_source) == (
        14_000_000_000,
        "given with --weights-bytes",
    )


def checkpoint(**changes: Any) -> Checkpoint:
    config = json.loads((CONFIGS / "meta-llama__Llama-2-7b-hf" / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    return Checkpoint(config, "test")


@pytest.mark.parametrize(
    ("changes", "options", "message"),
    [
        ({"hidden_size": None}, {}, "config.json: hidden_size is missing"),
        ({"num_hidden_layers": "32"}, {}, "num_hidden_layers must be a positive integer"),
        ({"max_position_embeddings": None}, {}, "max_position_embeddings is missing"),
        ({"torch_dtype": "float32"}, {}, "torch_dtype 'float32'"),
        ({"quantization_config": {"quant_method": "bitsandbytes"}}, {}, "'bitsandbytes'"),
        ({"layer_types": ["full_attention"]}, {}, "layer_types must list all 32 layers"),
        ({}, {"model_id": "no-organisation"}, "must be a repository id of the form ORG/NAME"),
        ({}, {"weights_bytes": -5}, "model 'me/x': weights_bytes must be > 0, got -5"),
    ],
)
def test_what_cannot_be_read_is_named(
    changes: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        model_record(checkpoint(**changes), **({"model_id": "me/x"} | options))


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        read_checkpoint(tmp_path / "config.json")
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(ConfigError, match="not a readable JSON file"):
        read_checkpoint(tmp_path / "config.json")
    (tmp_path / "config.json").write_text(json.dumps(checkpoint().config))
    (tmp_path / "model.safetensors.index.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"metadata\.total_size is missing"):
        read_checkpoint(tmp_path)
