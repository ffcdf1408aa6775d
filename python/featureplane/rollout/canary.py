"""The canary gate: PROMOTE, HOLD or ROLLBACK from written criteria and exported metrics.

Inputs are the Prometheus text exposition of a canary (a live runtime's `/metrics`, or a file
of it) and, for latency and lag, of a **baseline**: a process on the incumbent backend run in
the same window (started together, scraped together), so both saw the same market. Rules, in
order:

1. **ROLLBACK at once** when the canary's shadow found a mismatched frame
   (`featureplane_parity_mismatched_frames_total > parity.max_mismatched_frames`, 0 by default)
   or its decision parity a differing decision (`featureplane_decision_parity_mismatches_total`
   summed over strategies `> parity.max_decision_mismatches`). No amount of other evidence
   outweighs a wrong frame.
2. **ROLLBACK** when, with enough samples on both sides, the canary's latency quantile of a
   stage exceeds `latency.max_ratio` x the baseline's, or its lag exceeds the baseline's by
   more than `lag.max_ratio` x baseline + `lag.slack_seconds`.
3. **HOLD** when evidence is short: fewer than `parity.min_frames_compared` frames compared by
   the shadow, fewer than `latency.min_samples` latency samples on either side, fewer than
   `lag.min_frames` frames on either side, or no baseline at all. Too little evidence is never
   a promotion.
4. **PROMOTE** otherwise.

Exit codes of `featureplane canary evaluate`: 0 PROMOTE, 10 HOLD, 20 ROLLBACK (a bad criteria
file or an unreadable metrics source: 1, as every other command's error).
"""

from __future__ import annotations

import enum
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from featureplane.errors import ConfigError, MetricsSourceError


class Decision(enum.IntEnum):
    """A gate decision; the value is the `featureplane_canary_decision` gauge's."""

    PROMOTE = 0
    HOLD = 1
    ROLLBACK = 2


EXIT_CODES = {Decision.PROMOTE: 0, Decision.HOLD: 10, Decision.ROLLBACK: 20}
NOT_EVALUATED = -1
"""The decision gauge before the first evaluation."""


@dataclass(frozen=True)
class ParityCriteria:
    max_mismatched_frames: int = 0
    max_decision_mismatches: int = 0
    min_frames_compared: int = 1000


@dataclass(frozen=True)
class LatencyCriteria:
    stage: str = "features"
    quantile: float = 0.99
    max_ratio: float = 1.5
    min_samples: int = 1000


@dataclass(frozen=True)
class LagCriteria:
    max_ratio: float = 2.0
    slack_seconds: float = 0.05
    min_frames: int = 1000


@dataclass(frozen=True)
class Criteria:
    """The written criteria (`deploy/canary/criteria.toml` is the example)."""

    parity: ParityCriteria = ParityCriteria()
    latency: LatencyCriteria = LatencyCriteria()
    lag: LagCriteria = LagCriteria()


_SECTIONS: dict[str, type] = {
    "parity": ParityCriteria,
    "latency": LatencyCriteria,
    "lag": LagCriteria,
}


def parse_criteria(data: Mapping[str, Any], source: str = "<criteria>") -> Criteria:
    """Criteria from parsed TOML; every problem reported at once (`ConfigError`)."""
    problems: list[str] = []
    built: dict[str, Any] = {}
    problems.extend(
        f"{key}: unknown section (known: {', '.join(_SECTIONS)})"
        for key in data
        if key not in _SECTIONS
    )
    for name, cls in _SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, Mapping):
            problems.append(f"{name}: expected a table")
            continue
        defaults = cls()
        values: dict[str, Any] = {}
        for key, value in table.items():
            if not hasattr(defaults, key):
                problems.append(f"{name}.{key}: unknown key")
                continue
            want = type(getattr(defaults, key))
            ok = (
                isinstance(value, want) and not isinstance(value, bool)
                if want is not float
                else isinstance(value, int | float) and not isinstance(value, bool)
            )
            if not ok:
                problems.append(f"{name}.{key}: expected {want.__name__}, got {value!r}")
                continue
            if want is not str and (value < 0 or (want is float and not math.isfinite(value))):
                problems.append(f"{name}.{key}: must be a finite number >= 0")
                continue
            values[key] = float(value) if want is float else value
        built[name] = cls(**values)
    if not problems:
        lat, lag = built["latency"], built["lag"]
        if not 0 < lat.quantile < 1:
            problems.append("latency.quantile: between 0 and 1, exclusive")
        if lat.max_ratio < 1 or lag.max_ratio < 1:
            problems.append("latency.max_ratio, lag.max_ratio: at least 1")
    if problems:
        raise ConfigError(source, problems)
    return Criteria(**built)


def load_criteria(path: str | PathLike[str]) -> Criteria:
    """Read a criteria TOML file.

    Raises
    ------
    ConfigError
        Not TOML, unknown keys, wrong types or values (all at once).
    FileNotFoundError
        No such file.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [f"not valid TOML: {exc}"]) from None
    return parse_criteria(data, str(p))


# ----- metrics ------------------------------------------------------------------------------

Sample = tuple[str, dict[str, str], float]


@dataclass
class Metrics:
    """Samples by name (a counter's `_total`, a histogram's `_bucket`/`_count`, a gauge's
    own name), from a text exposition or from metric families."""

    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)

    @classmethod
    def from_families(cls, families: Iterable[Any]) -> Metrics:
        """From `prometheus_client` metric families (a component's `collect_metrics`)."""
        out = cls()
        for fam in families:
            for s in fam.samples:
                out.samples.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
        return out

    @classmethod
    def from_text(cls, text: str, source: str = "<text>") -> Metrics:
        """From the Prometheus text exposition format.

        Raises
        ------
        MetricsSourceError
            The text does not parse.
        """
        from prometheus_client.parser import text_string_to_metric_families

        try:
            return cls.from_families(list(text_string_to_metric_families(text)))
        except ValueError as exc:
            raise MetricsSourceError(f"{source}: not a Prometheus text exposition: {exc}") from None

    def has(self, name: str) -> bool:
        return name in self.samples

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 when absent)."""
        return sum(
            v
            for lab, v in self.samples.get(name, [])
            if all(lab.get(k) == want for k, want in labels.items())
        )

    def quantile(self, histogram: str, q: float, **labels: str) -> tuple[float, float]:
        """(the `q` quantile, the sample count) of a histogram's cumulative buckets, as
        Prometheus' `histogram_quantile` estimates it (linear within the bucket; the highest
        finite bound when it falls in `+Inf`); (nan, 0) without samples."""
        buckets: dict[float, float] = {}
        for lab, v in self.samples.get(f"{histogram}_bucket", []):
            if all(lab.get(k) == want for k, want in labels.items()):
                le = float(lab["le"])
                buckets[le] = buckets.get(le, 0.0) + v
        bounds = sorted(buckets)
        if not bounds or buckets[bounds[-1]] <= 0:
            return math.nan, 0.0
        total = buckets[bounds[-1]]
        rank = q * total
        lower, below = 0.0, 0.0
        for le in bounds:
            count = buckets[le]
            if count >= rank:
                if math.isinf(le):
                    finite = [b for b in bounds if not math.isinf(b)]
                    return (finite[-1] if finite else math.nan), total
                if count == below:
                    return le, total
                return lower + (le - lower) * (rank - below) / (count - below), total
            lower, below = le, count
        return bounds[-1], total


def read_metrics(source: str, timeout_s: float = 5.0) -> Metrics:
    """A text exposition from an http(s) URL (GET, bounded timeout, one request) or a file.

    Raises
    ------
    MetricsSourceError
        The URL does not answer 200 within `timeout_s`, the file cannot be read, or the text
        does not parse.
    """
    if source.startswith(("http://", "https://")):
        import httpx

        try:
            resp = httpx.get(source, timeout=timeout_s, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise MetricsSourceError(f"{source}: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise MetricsSourceError(f"{source}: HTTP {resp.status_code}")
        return Metrics.from_text(resp.text, source)
    try:
        text = Path(source).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise MetricsSourceError(f"{source}: {exc}") from None
    return Metrics.from_text(text, source)


# ----- the decision -------------------------------------------------------------------------


@dataclass
class Verdict:
    """A decision and every reason behind it (each a line a person can act on)."""

    decision: Decision
    reasons: list[str]
    evidence: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def format(self) -> str:
        lines = [self.decision.name]
        lines.extend(f"  {r}" for r in self.reasons)
        return "\n".join(lines)


COMPARED = "featureplane_parity_frames_compared_total"
MISMATCHED = "featureplane_parity_mismatched_frames_total"
DECISION_MISMATCHES = "featureplane_decision_parity_mismatches_total"
DECISIONS_COMPARED = "featureplane_decision_parity_compared_total"
LATENCY = "featureplane_stage_latency_seconds"
LAG = "featureplane_lag_seconds"
FRAMES = "featureplane_frames_total"


def evaluate(criteria: Criteria, canary: Metrics, baseline: Metrics | None = None) -> Verdict:
    """The gate's decision (rules in the module doc)."""
    rollback: list[str] = []
    hold: list[str] = []
    ok: list[str] = []
    ev: dict[str, float] = {}
    p = criteria.parity
    compared, mismatched = canary.total(COMPARED), canary.total(MISMATCHED)
    dec_mismatch, dec_compared = canary.total(DECISION_MISMATCHES), canary.total(DECISIONS_COMPARED)
    ev.update(frames_compared=compared, mismatched_frames=mismatched,
              decision_mismatches=dec_mismatch, decisions_compared=dec_compared)  # fmt: skip
    if mismatched > p.max_mismatched_frames:
        rollback.append(
            f"parity: {mismatched:.0f} mismatched frames of {compared:.0f} compared "
            f"(allowed {p.max_mismatched_frames})"
        )
    if dec_mismatch > p.max_decision_mismatches:
        rollback.append(
            f"decision parity: {dec_mismatch:.0f} differing decisions of {dec_compared:.0f} "
            f"(allowed {p.max_decision_mismatches})"
        )
    if rollback:  # at once: nothing else is weighed against a wrong frame
        return Verdict(Decision.ROLLBACK, rollback, ev)
    if not canary.has(COMPARED):
        hold.append("parity: the canary exports no shadow parity (no [shadow] running)")
    elif compared < p.min_frames_compared:
        hold.append(f"parity: {compared:.0f} frames compared, need {p.min_frames_compared}")
    else:
        ok.append(f"parity: {compared:.0f} frames compared, 0 mismatched")
    if baseline is None:
        hold.append("latency, lag: no baseline measured in the same window")
    else:
        _latency(criteria.latency, canary, baseline, rollback, hold, ok, ev)
        _lag(criteria.lag, canary, baseline, rollback, hold, ok, ev)
    if rollback:
        return Verdict(Decision.ROLLBACK, rollback + hold, ev)
    if hold:
        return Verdict(Decision.HOLD, hold + ok, ev)
    return Verdict(Decision.PROMOTE, ok, ev)


def _latency(
    c: LatencyCriteria, canary: Metrics, base: Metrics, rollback: list[str], hold: list[str],
    ok: list[str], ev: dict[str, float],
) -> None:  # fmt: skip
    qc, nc = canary.quantile(LATENCY, c.quantile, stage=c.stage)
    qb, nb = base.quantile(LATENCY, c.quantile, stage=c.stage)
    ev.update(latency_canary_s=qc, latency_baseline_s=qb, latency_samples=min(nc, nb))
    name = f"latency {c.stage} p{c.quantile * 100:g}"
    if min(nc, nb) < c.min_samples:
        hold.append(f"{name}: {nc:.0f} canary / {nb:.0f} baseline samples, need {c.min_samples}")
    elif qc > c.max_ratio * qb:
        rollback.append(f"{name}: {qc:.6g} s against baseline {qb:.6g} s (max x{c.max_ratio:g})")
    else:
        ok.append(f"{name}: {qc:.6g} s against baseline {qb:.6g} s")


def _lag(
    c: LagCriteria, canary: Metrics, base: Metrics, rollback: list[str], hold: list[str],
    ok: list[str], ev: dict[str, float],
) -> None:  # fmt: skip
    fc, fb = canary.total(FRAMES), base.total(FRAMES)
    if not (canary.has(LAG) and base.has(LAG)) or min(fc, fb) < c.min_frames:
        hold.append(f"lag: {fc:.0f} canary / {fb:.0f} baseline frames, need {c.min_frames}")
        return
    lc, lb = canary.total(LAG), base.total(LAG)
    ev.update(lag_canary_s=lc, lag_baseline_s=lb)
    if lc > c.max_ratio * lb + c.slack_seconds:
        rollback.append(f"lag: {lc:.6g} s against baseline {lb:.6g} s "
                        f"(max x{c.max_ratio:g} + {c.slack_seconds:g} s)")  # fmt: skip
    else:
        ok.append(f"lag: {lc:.6g} s against baseline {lb:.6g} s")
