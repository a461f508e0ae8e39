"""The selected manifests against what runs: object by object, and as a YAML diff."""

from __future__ import annotations

from manifests.diff import compare, summary
from manifests.render import to_yaml
from tests.k8s_manifests import serving_manifests


def test_nothing_running_makes_every_object_new_and_every_line_an_addition() -> None:
    new = serving_manifests("support-bot")
    changes = compare(None, new, "running (nothing)", "selected")
    assert changes.summary == f"{len(new)} objects new"
    assert set(changes.objects.values()) == {"new"}
    assert "InferenceService ml/support-bot" in changes.objects
    lines = changes.diff.splitlines()
    assert lines[:2] == ["--- running (nothing)", "+++ selected"]
    body = [line for line in lines[2:] if not line.startswith("@@")]
    assert body and all(line.startswith("+") for line in body)
    assert "".join(line[1:] + "\n" for line in body) == to_yaml(new)


def test_a_changed_object_is_counted_and_shown_against_the_revision() -> None:
    running = serving_manifests("support-bot", max_num_seqs=128)
    new = serving_manifests("support-bot", max_num_seqs=256, alerts=True)
    changes = compare(running, new, "running (revision 1)", "selected")
    assert changes.objects["ServingRuntime ml/support-bot-vllm"] == "changed"
    assert changes.objects["InferenceService ml/support-bot"] == "unchanged"
    assert [r for r, c in changes.objects.items() if c == "new"] == [
        r for r in changes.objects if r.startswith("PrometheusRule")
    ]
    unchanged = len(running) - 1
    assert changes.summary == f"1 object new, 1 changed, {unchanged} unchanged"
    assert "--- running (revision 1)\n+++ selected\n" in changes.diff
    removed = [line for line in changes.diff.splitlines() if line.startswith("-")]
    assert any("--max-num-seqs=128" in line for line in removed)
    added = [line for line in changes.diff.splitlines() if line.startswith("+")]
    assert any("--max-num-seqs=256" in line for line in added)
    assert any("kind: PrometheusRule" in line for line in added)


def test_the_same_manifests_change_nothing_and_dropped_ones_are_removed() -> None:
    running = serving_manifests("support-bot", alerts=True)
    same = compare(running, serving_manifests("support-bot", alerts=True))
    assert same.diff == "" and same.summary == f"{len(running)} objects unchanged"
    fewer = compare(running, serving_manifests("support-bot"))
    assert fewer.summary == f"{len(running) - 1} objects unchanged, 1 removed"
    assert list(fewer.objects.values()).count("removed") == 1


def test_the_summary_reads_as_words() -> None:
    assert summary({}) == "no objects"
    assert summary({"a": "changed"}) == "1 object changed"
    assert summary({"a": "new", "b": "new", "c": "unchanged"}) == "2 objects new, 1 unchanged"
