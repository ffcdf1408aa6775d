"""Live strategy runner (placeholder while the data path is built)."""

from __future__ import annotations

from typing import Any

from featureplane.live.config import LiveConfig, StrategyConfig


def build_strategy(config: StrategyConfig) -> Any:
    raise NotImplementedError


def build_runners(config: LiveConfig, registry: Any) -> None:
    if config.strategies:
        raise NotImplementedError("strategies")
