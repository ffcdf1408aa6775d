"""The built-in default set, `lob_shared_v1`, as a declaration embedded in the package.

`examples/feature-sets/lob_shared_v1.toml` is the same declaration as a file (a test keeps the
two equal). Its plan is the built-in plan (`features.plan.builtin_plan`):
`FeaturePlan.feature_set` gives the registered
`LOB_SHARED_V1` for it, with the schema hash that set was published with, and the engines pick
their specialised lob_shared_v1 kernels for it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BUILTIN_DECLARATION"]

BUILTIN_DECLARATION: dict[str, Any] = {
    "feature_set": {"id": "lob_shared_v1", "version": 1},
    "features": [
        {"id": "bid_px", "family": "bid_px", "description": "best bid price B_1 (ticks)"},
        {"id": "ask_px", "family": "ask_px", "description": "best ask price A_1 (ticks)"},
        {"id": "bid_qty", "family": "bid_qty", "description": "best bid size QB_1 (lots)"},
        {"id": "ask_qty", "family": "ask_qty", "description": "best ask size QA_1 (lots)"},
        {"id": "spread", "family": "spread", "description": "A_1 - B_1 (ticks)"},
        {"id": "mid", "family": "mid", "description": "(A_1 + B_1) / 2 exactly, in half ticks"},
        {
            "id": "microprice",
            "family": "microprice",
            "description": "(B_1 QA_1 + A_1 QB_1) / (QB_1 + QA_1)",
        },
        {
            "id": "imbalance_l1",
            "family": "depth_imbalance",
            "params": {"levels": 1},
            "description": "(QB_1 - QA_1) / (QB_1 + QA_1)",
        },
        {
            "id": "imbalance_l5",
            "family": "depth_imbalance",
            "params": {"levels": 5},
            "description": "size imbalance of the best 5 levels",
        },
        {
            "id": "ofi_l1",
            "family": "ofi",
            "params": {"levels": 1},
            "description": "level-1 order-flow imbalance (lots)",
        },
        {
            "id": "ofi_l1_cum",
            "family": "cum",
            "input": "ofi_l1",
            "description": "sum of ofi_l1 since reset",
        },
        {
            "id": "ofi_l1_ema8",
            "family": "ema",
            "input": "ofi_l1",
            "params": {"span": 8},
            "description": "EMA span 8 of ofi_l1",
        },
        {
            "id": "ofi_l5",
            "family": "ofi",
            "params": {"levels": 5},
            "description": "multi-level OFI, levels 1..5 (lots)",
        },
        {
            "id": "ofi_l1_decay_1s",
            "family": "decayed_sum",
            "input": "ofi_l1",
            "params": {"half_life_ns": 1000000000},
            "description": "ofi_l1 decayed, half-life 1 s",
        },
        {
            "id": "spread_ema8",
            "family": "ema",
            "input": "spread",
            "params": {"span": 8},
            "description": "EMA span 8 of spread",
        },
        {
            "id": "imbalance_l1_ema8",
            "family": "ema",
            "input": "imbalance_l1",
            "params": {"span": 8},
            "description": "EMA span 8 of imbalance_l1",
        },
        {"id": "mid_ret", "family": "diff", "input": "mid", "output": False},
        {
            "id": "mid_ret_std_32",
            "family": "rolling_std",
            "input": "mid_ret",
            "params": {"window": 32},
            "description": "std of the last 32 mid changes",
        },
        {
            "id": "mid_zscore_64",
            "family": "zscore",
            "input": "mid",
            "params": {"window": 64},
            "description": "z-score of mid over 64 mids",
        },
        {
            "id": "last_trade_px",
            "family": "last_trade_px",
            "description": "price of the last trade (ticks)",
        },
        {"id": "trade_signed_qty", "family": "trade_signed_qty", "output": False},
        {
            "id": "trade_signed_qty_cum",
            "family": "cum",
            "input": "trade_signed_qty",
            "description": "signed trade size",
        },
        {
            "id": "tfi_decay_1s",
            "family": "decayed_sum",
            "input": "trade_signed_qty",
            "params": {"half_life_ns": 1000000000},
            "description": "signed trade size, half-life 1 s",
        },
        {
            "id": "book_regime",
            "family": "book_regime",
            "input": "spread_ema8",
            "params": {"wide_spread_factor": 4.0},
            "description": (
                "bit 0 crossed/locked, bit 1 one side empty, bit 2 spread > 4 x spread_ema8"
            ),
        },
    ],
}
