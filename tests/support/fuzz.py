"""Settings of the property (fuzz) tests of the sources: bounded in the suite, long on demand.

`FEATUREPLANE_FUZZ_EXAMPLES` sets the generated inputs per test (default `DEFAULT_EXAMPLES`);
the long run of docs/sources/README.md sets it to a million. Every input is small (a few kB),
so each call takes milliseconds; a call that does not return is a hang the run reports.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

DEFAULT_EXAMPLES = 60
EXAMPLES = int(os.environ.get("FEATUREPLANE_FUZZ_EXAMPLES", str(DEFAULT_EXAMPLES)))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def flip(data: bytes, at: int, byte: int) -> bytes:
    """`data` with the byte at `at` (modulo its length) replaced."""
    if not data:
        return bytes([byte])
    at %= len(data)
    return data[:at] + bytes([byte]) + data[at + 1 :]
