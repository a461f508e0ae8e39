"""Every PromQL query Preflight runs against a live deployment, and what it makes of them.

The latency percentiles are `histogram_quantile` over `rate` windows of vLLM's own
histograms (`planner.slo_alerts.HISTOGRAMS`, the same ones the alerts use), summed over
every replica. A query with no data yields no number: a check never fills a gap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests import RequestException

from planner.slo_alerts import HISTOGRAMS

TARGET_OF = {"ttft": "ttft_p90_ms", "tpot": "tpot_p90_ms", "e2e": "e2e_p95_ms"}
"""The specification's SLO field each histogram measures."""


class PrometheusError(RuntimeError):
    """Prometheus could not be asked (unreachable, or it refused a query)."""


@dataclass(frozen=True)
class SloQueries:
    model_name: str
    """vLLM's `model_name` label: the served model name."""
    window: str = "5m"

    @property
    def selector(self) -> str:
        escaped = self.model_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'{{model_name="{escaped}"}}'

    def rate(self, metric: str) -> str:
        return f"sum(rate({metric}{self.selector}[{self.window}]))"

    def queries(self) -> dict[str, str]:
        """Measurement name to PromQL; latencies in milliseconds."""
        found = {
            TARGET_OF[h.key]: (
                f"1000 * histogram_quantile({h.quantile}, sum by (le) "
                f"(rate({h.metric}_bucket{self.selector}[{self.window}])))"
            )
            for h in HISTOGRAMS
        }
        for h in HISTOGRAMS:
            found[f"{h.key}_mean_ms"] = (
                f"1000 * {self.rate(h.metric + '_sum')} / {self.rate(h.metric + '_count')}"
            )
        finished = "vllm:request_success_total"
        found |= {
            "requests_per_s": self.rate(finished),
            "output_tokens_per_s": self.rate("vllm:generation_tokens_total"),
            "prompt_tokens_per_s": self.rate("vllm:prompt_tokens_total"),
            # vLLM counts a request the server gave up on as finished with reason `abort`;
            # that series is absent until the first one: no abort, rather than no data.
            "error_ratio": (
                f'(sum(rate({finished}{{{self.selector[1:-1]},finished_reason="abort"}}'
                f"[{self.window}])) or vector(0)) / {self.rate(finished)}"
            ),
            "queue_depth": f"sum(vllm:num_requests_waiting{self.selector})",
            "running": f"sum(vllm:num_requests_running{self.selector})",
            "replicas": f"count(vllm:num_requests_running{self.selector})",
            "kv_cache_usage": (
                f"max(vllm:kv_cache_usage_perc{self.selector}) "
                f"or max(vllm:gpu_cache_usage_perc{self.selector})"
            ),
            # DCGM's exporter labels by pod, not by model: present only where both run.
            "gpu_utilization": (
                "avg(DCGM_FI_DEV_GPU_UTIL * on (pod) group_left "
                f"max by (pod) (vllm:num_requests_running{self.selector})) / 100"
            ),
        }
        return found


def measure(prometheus: PrometheusConnect, queries: SloQueries) -> dict[str, float]:
    """The measurements Prometheus has data for (absent ones are left out, not zero)."""
    measured: dict[str, float] = {}
    for name, promql in queries.queries().items():
        try:
            result = prometheus.custom_query(promql)
        except (RequestException, PrometheusApiClientException) as error:
            raise PrometheusError(f"{name}: {type(error).__name__}: {error}") from None
        if result:
            value = float(result[0]["value"][1])
            if math.isfinite(value):
                measured[name] = value
    return measured


def breached(measurements: Mapping[str, float], targets: Mapping[str, float]) -> list[str]:
    """The SLO targets the measurements exceed (an unmeasured one is not a breach)."""
    return [
        name
        for name, target in targets.items()
        if name in measurements and measurements[name] > target
    ]
