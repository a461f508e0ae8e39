"""vLLM's Prometheus metrics, as the emulator exports them (text exposition format 0.0.4).

Names, types, the `model_name` label and the histogram buckets follow vLLM's V1 engine
(vllm/v1/metrics/loggers.py), so dashboards, alert rules and SLO queries written for vLLM
work unchanged. Written here rather than with `prometheus_client`, which is not a
dependency: the emulator needs only a handful of series in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from planner.slo_alerts import E2E_BUCKETS_S, TPOT_BUCKETS_S, TTFT_BUCKETS_S

FINISHED_REASONS = ("stop", "length", "abort")

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels) + "}"


def _header(name: str, help_text: str, kind: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Iterable[float]) -> None:
        self.name, self.help = name, help_text
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.sum += value
        index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
        self.counts[index] += 1

    def render(self, labels: Labels) -> list[str]:
        lines = _header(self.name, self.help, "histogram")
        cumulative = 0
        for bound, count in zip([*map(repr, self.buckets), "+Inf"], self.counts, strict=True):
            cumulative += count
            lines.append(f"{self.name}_bucket{_labels((('le', bound), *labels))} {cumulative}.0")
        lines.append(f"{self.name}_count{_labels(labels)} {cumulative}.0")
        lines.append(f"{self.name}_sum{_labels(labels)} {self.sum!r}")
        return lines


class Counter:
    """A counter, one series per value of an optional extra label."""

    def __init__(
        self, name: str, help_text: str, label: str | None = None, values: Iterable[str] = ()
    ) -> None:
        self.name, self.help, self.label = name, help_text, label
        self.values: dict[str, float] = dict.fromkeys(values, 0.0) if label else {"": 0.0}

    def inc(self, amount: float = 1.0, value: str = "") -> None:
        self.values[value] = self.values.get(value, 0.0) + amount

    def render(self, labels: Labels) -> list[str]:
        lines = _header(self.name, self.help, "counter")
        for value, total in self.values.items():
            extra: Labels = ((self.label, value),) if self.label else ()
            lines.append(f"{self.name}{_labels((*extra, *labels))} {total!r}")
        return lines


class Gauge:
    """A gauge read at scrape time."""

    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.name, self.help, self.read = name, help_text, read

    def render(self, labels: Labels) -> list[str]:
        return [
            *_header(self.name, self.help, "gauge"),
            f"{self.name}{_labels(labels)} {self.read()!r}",
        ]


class VllmMetrics:
    """The vLLM series an SLO check or dashboard reads, labelled with the served model name."""

    def __init__(
        self,
        model_name: str,
        running: Callable[[], float],
        waiting: Callable[[], float],
        kv_usage: Callable[[], float],
    ) -> None:
        self.labels: Labels = (("model_name", model_name),)
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
            TTFT_BUCKETS_S,
        )  # fmt: skip
        # Per request, its mean time per output token: what the planner calls TPOT.
        self.tpot = Histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            TPOT_BUCKETS_S,
        )
        # Per token: vLLM's older name for the inter-token latency, kept beside the new one.
        self.tpot_per_token = Histogram(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            TPOT_BUCKETS_S,
        )
        self.itl = Histogram(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
            TPOT_BUCKETS_S,
        )  # fmt: skip
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            E2E_BUCKETS_S,
        )
        self.queue = Histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            E2E_BUCKETS_S,
        )
        self.prompt_tokens = Counter(
            "vllm:prompt_tokens_total", "Number of prefill tokens processed."
        )
        self.generation_tokens = Counter(
            "vllm:generation_tokens_total", "Number of generation tokens processed."
        )
        self.success = Counter(
            "vllm:request_success_total",
            "Count of successfully processed requests.",
            "finished_reason",
            FINISHED_REASONS,
        )
        usage = "KV-cache usage. 1 means 100 percent usage."
        self.gauges = (
            Gauge("vllm:num_requests_running", "Requests in model execution batches.", running),
            Gauge("vllm:num_requests_waiting", "Requests waiting to be processed.", waiting),
            Gauge("vllm:gpu_cache_usage_perc", usage, kv_usage),
            # vLLM 0.10+ renamed it; both names keep old and new dashboards working.
            Gauge("vllm:kv_cache_usage_perc", usage, kv_usage),
        )  # fmt: skip

    def render(self) -> str:
        series = (
            *self.gauges,
            self.prompt_tokens,
            self.generation_tokens,
            self.success,
            self.ttft,
            self.tpot,
            self.tpot_per_token,
            self.itl,
            self.e2e,
            self.queue,
        )
        return "\n".join(line for s in series for line in s.render(self.labels)) + "\n"
