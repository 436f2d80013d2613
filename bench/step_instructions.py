"""Benchmark: instructions per ``Engine._step``, counted by callgrind (deterministic where timing is not).

Run under valgrind, with instrumentation off at start::

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
        python -m bench.step_instructions [--budgets]

It sets up the ``bench.costs`` workload at 1,000 participants (the 10 rules of ``bench.embedded``; with
``--budgets`` two of them budgeted), runs one warm-up round of 2,000 events (admission, then the steps), admits a
second round, and switches callgrind's instrumentation on (``callgrind_control -i on``) around that round's 2,000
``_step`` calls only (``--stage admission``: around the 2,000 ``_accept`` calls before them instead). valgrind's
closing ``I refs`` line is then the instructions of those steps: divide by 2,000.
The same code varies by about ±0.5 % between runs (ids are random, so dict orders differ), so compare several runs
(docs/benchmarks.md, "Rule budgets"). Drives private engine methods on purpose, like ``bench.costs``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from bench._common import bench_config, tune_gc
from bench.embedded import create_program, create_rules, create_tier, make_events, sign_up
from scrip_actor import open_engine

PARTICIPANTS = 1000
STEPS = 2000


def _instrumentation(flag: str) -> None:
    """Switch callgrind's instrumentation of this process on or off (a no-op outside valgrind, but for the wait)."""
    subprocess.run(["callgrind_control", "-i", flag, str(os.getpid())], check=False, capture_output=True)
    time.sleep(0.5)  # callgrind picks the command up at its next check


async def count(budgets: bool, stage: str = "step") -> None:
    """The warm-up round, then the counted round (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="scrip-instructions-") as scratch:
        config = bench_config(Path(scratch) / "store", sync=False)
        async with open_engine(config=config) as engine:
            program_id, pts_id, cash_id = await create_program(engine)
            await sign_up(engine, program_id, PARTICIPANTS)
            await create_rules(engine, program_id, pts_id, cash_id, budgets=budgets)
            if budgets:  # the --mechanics variant: the tier definition too
                await create_tier(engine, program_id)
            tune_gc()
            for number in range(2):
                requests = make_events(program_id, PARTICIPANTS, STEPS, seed=number, key_prefix=f"cg{number}")
                held: list[tuple[str, Any]] = []
                registry = engine._registry
                deliver = registry.deliver
                registry.deliver = lambda key, message, held=held: held.append((key, message))
                counted = number == 1
                if counted and stage == "admission":
                    _instrumentation("on")
                try:
                    for request in requests:
                        engine._accept(request)
                finally:
                    registry.deliver = deliver
                if counted:
                    _instrumentation("off" if stage == "admission" else "on")
                for key, message in held:
                    engine._step(key, message)
                if counted and stage == "step":
                    _instrumentation("off")
                await engine.wait_idle()


def main(argv: list[str] | None = None) -> None:
    """Parse ``--budgets`` and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mechanics",
        "--budgets",
        dest="budgets",
        action="store_true",
        help="bench.embedded --mechanics: budgets and a tier",
    )
    parser.add_argument(
        "--stage",
        choices=["step", "admission"],
        default="step",
        help="count the 2,000 steps (default) or the 2,000 admissions (Engine._accept) before them",
    )
    args = parser.parse_args(argv)
    trio.run(count, args.budgets, args.stage)


if __name__ == "__main__":
    main()
