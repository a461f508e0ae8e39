"""Names people type resolve to catalog ids; unknown names say what is close."""

from __future__ import annotations

import pytest

from kb.db import session_scope
from kb.names import NameIndex, UnknownNameError
from kb.repository import gpu_names, model_names


@pytest.mark.parametrize(
    ("name", "gpu_id"),
    [
        ("H100", "H100-SXM-80GB"),
        ("h100_sxm", "H100-SXM-80GB"),
        ("NVIDIA-H100-80GB-HBM3", "H100-SXM-80GB"),
        ("nvidia h100 80gb hbm3", "H100-SXM-80GB"),
        ("H100-SXM-80GB", "H100-SXM-80GB"),
        ("a100", "A100-SXM-80GB"),
        ("L4", "L4-PCIE-24GB"),
        ("mi300x", "MI300X-OAM-192GB"),
    ],
)
def test_gpu_aliases(seeded_sqlite_url: str, name: str, gpu_id: str) -> None:
    with session_scope(seeded_sqlite_url) as session:
        assert gpu_names(session=session).resolve(name) == gpu_id


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct"),
        ("Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("meta-llama/llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("qwen3-32b", "Qwen/Qwen3-32B"),
        ("gpt-oss-120b", "openai/gpt-oss-120b"),
        ("llama-3.1-8b-fp8", "nvidia/Llama-3.1-8B-Instruct-FP8"),
    ],
)
def test_model_aliases(seeded_sqlite_url: str, name: str, model_id: str) -> None:
    with session_scope(seeded_sqlite_url) as session:
        assert model_names(session=session).resolve(name) == model_id


def test_unknown_name_lists_closest_matches(seeded_sqlite_url: str) -> None:
    with session_scope(seeded_sqlite_url) as session:
        index = gpu_names(session=session)
    with pytest.raises(UnknownNameError) as raised:
        index.resolve("H1000")
    assert "unknown GPU 'H1000'; closest matches:" in str(raised.value)
    assert "H100-SXM-80GB" in raised.value.suggestions


def test_name_shared_by_two_records_is_ambiguous_not_guessed() -> None:
    index = NameIndex.build("model", [("a/Same-Name", []), ("b/Same-Name", [])])
    with pytest.raises(UnknownNameError, match="ambiguous: it could be a/Same-Name, b/Same-Name"):
        index.resolve("same-name")
    assert index.resolve("b/same_name") == "b/Same-Name"
