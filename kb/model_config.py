"""What a Hugging Face `config.json` says of a model: the architecture facts the planner
needs, read the way vLLM reads them, the parameters counted from the shapes, and the weight
precision its quantisation stores.

Families: dense (MHA or GQA), MoE (Mixtral, Qwen-MoE, DeepSeek with shared experts and
leading dense layers), multi-head latent attention (DeepSeek, Kimi), sliding-window layers
(Mistral, Gemma 2/3, gpt-oss) and hybrid linear attention (Qwen3-Next, Qwen3.5), multimodal
configs through their `text_config`. A field it cannot read is named; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kb.records import Precision

DTYPES: dict[str, Precision] = {"bfloat16": "bf16", "float16": "fp16"}


class ConfigError(ValueError):
    """A config.json (or snapshot folder) Preflight cannot read: the message names the field."""


def _positive(config: Mapping[str, Any], *names: str, required: bool = True) -> int | None:
    """The first of `names` the config sets, as a positive integer."""
    for name in names:
        value = config.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"config.json: {name} must be a positive integer, got {value!r}")
        return value
    if required:
        raise ConfigError(f"config.json: {names[0]} is missing")
    return None


def _need(config: Mapping[str, Any], *names: str) -> int:
    value = _positive(config, *names)
    assert value is not None
    return value


def _text_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A multimodal config's language model, with the top-level dtype and quantisation."""
    text = config.get("text_config")
    if text is None:
        return dict(config)
    if not isinstance(text, dict):
        raise ConfigError("config.json: text_config must be an object")
    inherited = ("torch_dtype", "dtype", "quantization_config", "tie_word_embeddings")
    return {k: config[k] for k in inherited if k in config} | text


def _layer_kinds(config: Mapping[str, Any], layers: int) -> list[str]:
    kinds = config.get("layer_types")
    if kinds is None:
        return []
    if not isinstance(kinds, list) or len(kinds) != layers:
        raise ConfigError(f"config.json: layer_types must list all {layers} layers")
    return [str(kind) for kind in kinds]


def _dtype(config: Mapping[str, Any]) -> Precision | None:
    name = config.get("torch_dtype") or config.get("dtype")
    return DTYPES.get(str(name)) if name else None


def _quantised(qc: Mapping[str, Any]) -> Precision:
    """The weight precision a `quantization_config` stores."""
    method = str(qc.get("quant_method", ""))
    if method in ("fp8", "fbgemm_fp8"):
        return "fp8"
    if method == "mxfp4":
        return "fp4"
    if method in ("awq", "gptq"):
        return {4: "int4", 8: "int8"}.get(int(qc.get("bits", 0)), "int4")  # type: ignore[return-value]
    if method == "modelopt":
        algorithm = str(qc.get("quant_algo", "")).upper()
        if algorithm in ("FP8", "NVFP4"):
            return "fp8" if algorithm == "FP8" else "fp4"
    if method == "compressed-tensors":
        for group in (qc.get("config_groups") or {}).values():
            weights = (group or {}).get("weights") or {}
            bits, kind = weights.get("num_bits"), weights.get("type")
            if bits == 4:
                return "fp4" if kind == "float" else "int4"
            if bits == 8:
                return "fp8" if kind == "float" else "int8"
    raise ConfigError(
        f"config.json: quantization_config.quant_method {method!r} is not a layout Preflight "
        "sizes; give --precision"
    )


def _keeps_attention_apart(qc: Mapping[str, Any]) -> bool:
    """Whether the quantisation leaves attention layers in 16 bit."""
    names: list[Any] = []
    for key in ("ignore", "modules_to_not_convert", "exclude_modules"):
        names += qc.get(key) or []
    return any("attn" in str(name) for name in names)


def _attention_params(c: Mapping[str, Any], hidden: int, heads: int, head_dim: int) -> int:
    if c.get("kv_lora_rank"):
        rope, nope = _need(c, "qk_rope_head_dim"), _need(c, "qk_nope_head_dim")
        value_dim = _need(c, "v_head_dim")
        q_rank = _positive(c, "q_lora_rank", required=False)
        query = (
            hidden * q_rank + q_rank * heads * (nope + rope)
            if q_rank
            else hidden * heads * (nope + rope)
        )
        latent = _need(c, "kv_lora_rank")
        return (
            query
            + hidden * (latent + rope)
            + latent * heads * (nope + value_dim)
            + heads * value_dim * hidden
        )
    kv_heads = _positive(c, "num_key_value_heads", required=False) or heads
    return 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim


def _linear_attention_params(c: Mapping[str, Any], hidden: int) -> int:
    key_heads, value_heads = _need(c, "linear_num_key_heads"), _need(c, "linear_num_value_heads")
    key_dim, value_dim = _need(c, "linear_key_head_dim"), _need(c, "linear_value_head_dim")
    kernel = _positive(c, "linear_conv_kernel_dim", required=False) or 4
    keys, values = key_heads * key_dim, value_heads * value_dim
    return (
        hidden * (2 * keys + 2 * values + 2 * value_heads)  # q, k, v, gate; beta and decay
        + (2 * keys + values) * kernel  # short convolution
        + values * hidden  # output projection
    )


def architecture(config: Mapping[str, Any]) -> dict[str, Any]:
    """The `ModelBase` architecture fields of a config.json, parameters counted from the
    shapes (biases and norms, a fraction of a percent, left out)."""
    c = _text_config(config)
    layers, hidden = _need(c, "num_hidden_layers"), _need(c, "hidden_size")
    heads, vocab = _need(c, "num_attention_heads"), _need(c, "vocab_size")
    context = _need(c, "max_position_embeddings", "max_sequence_length", "seq_length")
    head_dim = _positive(c, "head_dim", required=False) or hidden // heads
    kv_heads = _positive(c, "num_key_value_heads", required=False) or heads
    fields: dict[str, Any] = {
        "num_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_kv_heads": kv_heads,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "max_context_tokens": context,
        "attention": "gqa" if kv_heads < heads else "mha",
    }
    kinds = _layer_kinds(c, layers)
    linear = sum(kind == "linear_attention" for kind in kinds)
    if not kinds and c.get("full_attention_interval"):
        linear = layers - layers // _need(c, "full_attention_interval")
    window = _positive(c, "sliding_window", required=False)
    if c.get("kv_lora_rank"):
        fields |= {
            "attention": "mla",
            "num_kv_heads": 1,
            "head_dim": _need(c, "qk_nope_head_dim") + _need(c, "qk_rope_head_dim"),
            "kv_lora_rank": _need(c, "kv_lora_rank"),
            "qk_rope_head_dim": _need(c, "qk_rope_head_dim"),
        }
    elif linear:
        ssm_dtype = str(c.get("mamba_ssm_dtype") or "")
        fields |= {
            "attention": "hybrid_linear",
            "full_attention_layers": layers - linear,
            "linear_num_key_heads": _need(c, "linear_num_key_heads"),
            "linear_num_value_heads": _need(c, "linear_num_value_heads"),
            "linear_key_head_dim": _need(c, "linear_key_head_dim"),
            "linear_value_head_dim": _need(c, "linear_value_head_dim"),
            "linear_conv_kernel_dim": _positive(c, "linear_conv_kernel_dim", required=False) or 4,
            "linear_state_bytes_per_element": 4.0 if ssm_dtype == "float32" else None,
        }
    elif window and window < context and c.get("use_sliding_window", True):
        sliding = sum(kind == "sliding_attention" for kind in kinds)
        if not kinds:
            pattern = _positive(c, "sliding_window_pattern", required=False)
            if pattern:  # Gemma 3: every pattern-th layer is global
                sliding = layers - layers // pattern
            elif c.get("model_type") == "gemma2":  # alternating local and global
                sliding = layers // 2
            else:  # Mistral 7B v0.1: every layer slides
                sliding = layers
        if sliding:
            fields |= {
                "attention": "hybrid_sliding",
                "sliding_window_tokens": window,
                "sliding_window_layers": sliding,
            }

    experts = _positive(c, "num_local_experts", "num_experts", "n_routed_experts", required=False)
    intermediate = _positive(c, "intermediate_size", required=False)
    dense_mlp = 3 * hidden * (intermediate or 0)
    attention = _attention_params(c, hidden, heads, head_dim)
    linear_attention = _linear_attention_params(c, hidden) if linear else 0
    # transformers ties the output layer to the embeddings unless the config says otherwise.
    embeddings = vocab * hidden * (1 if c.get("tie_word_embeddings", True) else 2)
    mixers = (layers - linear) * attention + linear * linear_attention
    if experts:
        per_token = _need(c, "num_experts_per_tok", "experts_per_token", "moe_topk")
        width = _positive(c, "moe_intermediate_size", required=False) or intermediate
        if width is None:
            raise ConfigError("config.json: moe_intermediate_size is missing")
        shared_count = _positive(c, "n_shared_experts", required=False)
        shared_width = _positive(c, "shared_expert_intermediate_size", required=False)
        shared = 3 * hidden * (shared_width or width * (shared_count or 0))
        dense_layers = _positive(c, "first_k_dense_replace", required=False) or len(
            c.get("mlp_only_layers") or []
        )
        moe_layers = layers - dense_layers
        expert = 3 * hidden * width
        router = hidden * experts
        common = embeddings + mixers + dense_layers * dense_mlp + moe_layers * (shared + router)
        fields |= {
            "params_total_b": (common + moe_layers * experts * expert) / 1e9,
            "params_active_b": (common + moe_layers * per_token * expert) / 1e9,
            "intermediate_size": intermediate if dense_layers else None,
            "moe_num_experts": experts,
            "moe_experts_per_token": per_token,
            "moe_shared_experts": (shared_count or 1) if shared else None,
            "moe_intermediate_size": width,
            "moe_dense_layers": dense_layers or None,
        }
    else:
        if intermediate is None:
            raise ConfigError("config.json: intermediate_size is missing")
        total = (embeddings + mixers + layers * dense_mlp) / 1e9
        fields |= {"params_total_b": total, "params_active_b": total}
        fields["intermediate_size"] = intermediate
    return fields


def read_config(config: Mapping[str, Any], precision: Precision | None = None) -> dict[str, Any]:
    """Every `ModelBase` field a config.json states: the architecture, the family and the
    weight precision (`precision` overrides what the config stores)."""
    c = _text_config(config)
    qc = c.get("quantization_config")
    if qc is not None and not isinstance(qc, dict):
        raise ConfigError("config.json: quantization_config must be an object")
    served = precision or (_quantised(qc) if qc else _dtype(c))
    if served is None:
        raise ConfigError(
            f"config.json: torch_dtype {c.get('torch_dtype')!r} is not bfloat16 or float16 and "
            "the config states no quantization; give --precision"
        )
    fields = architecture(config)
    kept_apart = bool(fields.get("moe_num_experts")) and _keeps_attention_apart(qc or {})
    return fields | {
        "family": str(c.get("model_type") or "unknown"),
        "precision": served,
        "non_expert_precision": (_dtype(c) or "bf16") if kept_apart else None,
        "quantization_method": str(qc.get("quant_method")) if qc else None,
    }
