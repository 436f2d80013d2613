"""Backtests (``/v1/programs/{id}/backtests``): a proposed rule set replayed over recorded events (docs/backtest.md).

A run is a job: ``POST .../backtests`` answers 202 with the job (``RUNNING``) and the client polls
``GET .../backtests/{id}``. ``POST .../backtest`` (singular) is the same job awaited for at most
``backtests.inline_wait_s``: 200 with the finished report, or 202 with the job still running.
"""

from __future__ import annotations

from typing import Any

from scrip_actor.backtest_model import Backtest, BacktestCreate
from scrip_actor.http.routing import Call, Endpoint, ListOf, Reply, listing
from scrip_actor.http.schemas import PageQuery

__all__ = ["ENDPOINTS"]

_PROGRAM = "/v1/programs/{program_id}"
_ALL = _PROGRAM + "/backtests"
_ONE = _ALL + "/{backtest_id}"
_TAG = "Backtests"


def _ids(call: Call) -> tuple[str, str]:
    return call.path["program_id"], call.path["backtest_id"]


async def create_backtest(call: Call) -> Backtest:
    """Start a backtest job (202): the window and the proposed rules are checked now, the replay runs after."""
    backtest: Backtest = await call.engine.backtests.start(call.path["program_id"], call.body)
    return backtest


async def run_backtest(call: Call) -> Reply:
    """Start a backtest and wait for it up to ``backtests.inline_wait_s``: 200 finished, else 202 running."""
    backtests = call.engine.backtests
    started = await backtests.start(call.path["program_id"], call.body)
    wait_s = call.engine.config.backtests.inline_wait_s
    backtest: Backtest = await backtests.wait(started.program_id, started.id, wait_s)
    return Reply(202 if backtest.status == "RUNNING" else 200, backtest)


async def list_backtests(call: Call) -> ListOf[Any]:
    """The program's backtests kept in memory, newest first."""
    query: PageQuery = call.query
    return listing(call.engine.backtests.list(call.path["program_id"], limit=query.limit, cursor=query.cursor))


async def get_backtest(call: Call) -> Backtest:
    """One backtest: its status, counts and report (so far, while RUNNING)."""
    backtest: Backtest = call.engine.backtests.get(*_ids(call))
    return backtest


async def cancel_backtest(call: Call) -> Backtest:
    """Ask a running backtest to stop at its next chunk of events (it ends CANCELLED); 409 once finished."""
    backtest: Backtest = call.engine.backtests.cancel(*_ids(call))
    return backtest


ENDPOINTS = [
    Endpoint(
        "POST", _ALL, create_backtest, "Start a backtest", _TAG, body=BacktestCreate, response=Backtest, status=202
    ),
    Endpoint(
        "POST",
        _PROGRAM + "/backtest",
        run_backtest,
        "Run a backtest and wait briefly for it",
        _TAG,
        body=BacktestCreate,
        response=Backtest,
        status=200,
        also=(202,),
    ),
    Endpoint("GET", _ALL, list_backtests, "A program's backtests", _TAG, query=PageQuery, response=ListOf[Backtest]),
    Endpoint("GET", _ONE, get_backtest, "Get a backtest", _TAG, response=Backtest),
    Endpoint("POST", _ONE + "/cancel", cancel_backtest, "Cancel a running backtest", _TAG, response=Backtest),
]
