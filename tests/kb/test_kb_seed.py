"""Seeding the knowledge base: complete, sourced, idempotent, and all-or-nothing."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from kb.db import session_scope
from kb.migrate import downgrade, upgrade
from kb.repository import load, stats
from kb.seed import DATA_DIR, SeedError
from kb.tables import Hardware, Price
from tests.conftest import MEASURED_DIR


def measured_row_count() -> int:
    """The shared sample's rows and the public measurements Preflight sourced."""
    total = 0
    for path in [*MEASURED_DIR.glob("*.csv"), *(DATA_DIR / "measurements").glob("*.csv")]:
        with path.open(newline="") as handle:
            total += sum(1 for _ in csv.DictReader(handle))
    return total


def counts(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        return {name: c.count for name, c in stats(session=session).collections.items()}


def test_full_seed_meets_the_floor_and_every_record_has_a_source(database_url: str) -> None:
    report = load(url=database_url, measured_dir=MEASURED_DIR)

    with session_scope(database_url) as session:
        result = stats(session=session)
    collections = result.collections
    assert collections["models"].count >= 40
    assert collections["hardware"].count >= 12
    assert collections["prices"].count >= 30
    assert collections["use_cases"].count >= 8
    assert collections["benchmarks"].count == measured_row_count() == 2567 + 99
    assert result.benchmarks_by_kind == {"measured": collections["benchmarks"].count}
    assert set(result.benchmarks_by_engine) == {"vllm", "sglang", "trtllm"}
    assert result.without_source == 0
    assert sum(report.inserted.values()) == sum(c.count for c in collections.values())

    again = load(url=database_url, measured_dir=MEASURED_DIR)
    assert sum(again.inserted.values()) == sum(again.updated.values()) == 0
    assert counts(database_url) == {name: c.count for name, c in collections.items()}


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def edit(path: Path, change: object) -> None:
    records = yaml.safe_load(path.read_text())
    change(records)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(records, sort_keys=False))


def test_changed_record_is_updated_in_place(database_url: str, data_copy: Path) -> None:
    load(url=database_url, data_dir=data_copy)
    prices = data_copy / "prices.yaml"
    edit(prices, lambda records: records[0].update(usd_per_gpu_hour=123.45))

    report = load(url=database_url, data_dir=data_copy)

    assert report.updated == {"prices": 1}
    assert sum(report.inserted.values()) == 0


BAD_SEEDS = {
    "price for an unknown GPU": (
        "prices.yaml",
        lambda r: r[0].update(gpu_id="TPU-v5e-16GB"),
        "prices.yaml: record '{id}': unknown GPU 'TPU-v5e-16GB' in gpu_id",
    ),
    "negative number": (
        "hardware.yaml",
        lambda r: r[0].update(memory_bandwidth_gb_s=-3350),
        "hardware.yaml: record '{id}': memory_bandwidth_gb_s must be > 0, got -3350",
    ),
    "zero price": (
        "prices.yaml",
        lambda r: r[0].update(usd_per_gpu_hour=0),
        "prices.yaml: record '{id}': usd_per_gpu_hour must be > 0, got 0",
    ),
    "duplicate id": (
        "use_cases.yaml",
        lambda r: r.append(dict(r[0])),
        "use_cases.yaml: record '{id}': duplicate id, first defined in use_cases.yaml",
    ),
    "missing source": (
        "hardware.yaml",
        lambda r: r[0].pop("source"),
        "hardware.yaml: record '{id}': source: Field required",
    ),
    "device memory without its source": (
        "hardware.yaml",
        lambda r: r[0].pop("memory_source"),
        "hardware.yaml: record '{id}': memory_source: Field required",
    ),
    "negative checkpoint size": (
        "models/dense.yaml",
        lambda r: r[0].update(weights_bytes=-16060522496),
        "models/dense.yaml: record '{id}': weights_bytes must be > 0, got -16060522496",
    ),
    "checkpoint size without its source": (
        "models/dense.yaml",
        lambda r: r[0].pop("weights_source"),
        "models/dense.yaml: record '{id}': set both weights_bytes and weights_source",
    ),
    "price without its instance": (
        "prices.yaml",
        lambda r: r[0].pop("gpus_per_instance"),
        "prices.yaml: record '{id}': gpus_per_instance: Field required",
    ),
}


@pytest.mark.parametrize("case", BAD_SEEDS, ids=list(BAD_SEEDS))
def test_bad_seed_names_file_and_record_and_changes_nothing(
    case: str, database_url: str, data_copy: Path
) -> None:
    load(url=database_url, data_dir=data_copy)
    before = counts(database_url)
    file_name, change, expected = BAD_SEEDS[case]
    first_id = yaml.safe_load((data_copy / file_name).read_text())[0]["id"]
    edit(data_copy / file_name, change)
    # A valid change elsewhere must not be written either: all or nothing.
    edit(data_copy / "prices.yaml", lambda r: r.append(dict(r[-1], id="new-valid-price")))

    with pytest.raises(SeedError) as raised:
        load(url=database_url, data_dir=data_copy)

    assert expected.format(id=first_id) in str(raised.value)
    assert counts(database_url) == before


def test_invalid_yaml_is_named(data_copy: Path, database_url: str) -> None:
    (data_copy / "use_cases.yaml").write_text("- id: chatbot\n  description: [unclosed\n")
    with pytest.raises(SeedError, match=r"use_cases.yaml: not valid YAML"):
        load(url=database_url, data_dir=data_copy)
    assert counts(database_url)["use_cases"] == 0


def test_migrations_go_down_and_up_again(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    load(url=empty_database_url)
    downgrade(empty_database_url)
    upgrade(empty_database_url)
    assert counts(empty_database_url)["models"] == 0


def test_an_older_knowledge_base_upgrades_and_reloads(empty_database_url: str) -> None:
    """A knowledge base of revision 0004 (device memory in decimal GB, prices without their
    instance) upgrades without losing a record; `kb load` then writes the true values and
    removes a quote the seed withdrew, keeping the user's own price."""
    url = empty_database_url
    upgrade(url, "0004")
    with session_scope(url) as session:
        session.execute(
            text(
                "INSERT INTO hardware (source, retrieved, id, display_name, vendor, architecture,"
                " memory_gb, memory_bandwidth_gb_s, bf16_tflops, interconnect,"
                " interconnect_bandwidth_gb_s, gpus_per_node, k8s_resource, k8s_node_labels,"
                " aliases) VALUES ('datasheet', '2026-11-28', 'H100-SXM-80GB', 'H100', 'nvidia',"
                " 'hopper', 80, 3350, 989, 'NVLink', 900, 8, 'nvidia.com/gpu', '{}', '[]')"
            )
        )
        for price_id in ("user-on_prem-on_prem-H100-SXM-80GB", "withdrawn-quote"):
            session.execute(
                text(
                    "INSERT INTO price (source, retrieved, id, gpu_id, provider, pricing,"
                    " usd_per_gpu_hour) VALUES ('set by the user', '2026-11-28', :id,"
                    " 'H100-SXM-80GB', 'on_prem', 'on_prem', 1.5)"
                ),
                {"id": price_id},
            )
    upgrade(url)
    with session_scope(url) as session:
        h100 = session.get(Hardware, "H100-SXM-80GB")
        assert h100 is not None and h100.memory_mib == pytest.approx(80e9 / 2**20, abs=1)
        price = session.get(Price, "withdrawn-quote")
        assert price is not None and (price.instance_type, price.gpus_per_instance) == (
            "unstated",
            8,
        )
    report = load(url=url)
    assert report.updated["hardware"] == 1 and report.removed == {"prices": 1}
    with session_scope(url) as session:
        h100 = session.get(Hardware, "H100-SXM-80GB")
        assert h100 is not None and h100.memory_mib == 81559
        assert session.get(Price, "withdrawn-quote") is None
        assert session.get(Price, "user-on_prem-on_prem-H100-SXM-80GB") is not None


def test_measured_rows_withdrawn_upstream_leave_the_knowledge_base(
    database_url: str, tmp_path: Path
) -> None:
    measured = tmp_path / "measured"
    shutil.copytree(MEASURED_DIR, measured)
    load(url=database_url, measured_dir=measured)
    vllm = measured / "vllm_aggregated.csv"
    lines = vllm.read_text().splitlines(keepends=True)
    vllm.write_text("".join(lines[:-10]))
    report = load(url=database_url, measured_dir=measured)
    assert report.removed == {"benchmarks": 10}
    assert counts(database_url)["benchmarks"] == measured_row_count() - 10
