"""The compiled part of the distribution (everything else is in pyproject.toml).

``journeylens.domain._rumscan`` reads raw RUM messages straight into the worker's batch cells,
holds the sketches' bucket counts (``Bins``) and hashes session ids for ``SessionSet``.
It is optional: where it cannot be built (no C compiler), the worker runs the same aggregation
in Python, slower, with the same results.

``journeylens.storage._rumnative`` encodes raw RUM messages as ClickHouse Native blocks of
``rum_events_input``. Also optional: without it every message goes to ClickHouse as JSON.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "journeylens.domain._rumscan",
            [
                "services/journeylens/domain/_rumscan.c",
                "services/journeylens/domain/_bins.c",
                "services/journeylens/domain/_sessions.c",
            ],
            depends=[
                "services/journeylens/domain/_bins.h",
                "services/journeylens/domain/_sessions.h",
            ],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
            optional=True,
        ),
        Extension(
            "journeylens.storage._rumnative",
            ["services/journeylens/storage/_rumnative.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
            optional=True,
        ),
    ]
)
