"""The one way a stored event enters the live picture: state, then estimator, each isolated.

The live ingest path (after the store commit) and the start-up replay (after the snapshot) both
call `Pipeline.process`. The state says what it did with the event (`state.Outcome`); only an
applied event goes on to the estimator stage, so an event the state refused (a stale day, a late
report, over a cap) can never reach the estimator's learning or the alerts built on it.

Every stage isolates its faults per event: an exception is counted in
`hallwatch_state_errors_total{stage}`, logged with a rate limit (one line per stage per 10 s,
saying how many were suppressed), and the event is skipped. The event itself stays in the store.
So no single stored event can stop ingestion or start-up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

from hallwatch.daemon.base.ratelog import RateLimitedLog
from hallwatch.daemon.core.state import HallsState, Outcome
from hallwatch.daemon.estimate.model import ErrorOut, EstimateOut, Estimator
from hallwatch.daemon.pipeline.schedule import Changes
from hallwatch.sensors.events import Event

log = logging.getLogger("hallwatch.pipeline")


class Stage(StrEnum):
    """Where an event failed; the label of `hallwatch_state_errors_total`."""

    PARSE = "parse"  # a stored event no longer parses (another topic root, a stricter parser)
    STATE = "state"
    ESTIMATOR = "estimator"


class Faults:
    """Per-event fault isolation: count by stage, log with a rate limit, go on."""

    def __init__(
        self,
        clock: Callable[[], float],
        count: Callable[[Stage], None] | None = None,
        every_s: float = 10.0,
    ) -> None:
        self._clock = clock
        self._count = count
        self._log = RateLimitedLog(log, every_s)
        self.failed: dict[Stage, int] = dict.fromkeys(Stage, 0)

    def record(self, stage: Stage, event: str, detail: str, err: BaseException | None) -> None:
        self.failed[stage] += 1
        if self._count is not None:
            self._count(stage)
        self._log.log(
            logging.ERROR if err is not None else logging.WARNING,
            stage.value,
            self._clock(),
            "%s stage failed on %s: %s",
            stage.value,
            event,
            detail,
            exc_info=err,
        )


def estimate(
    estimator: Estimator, event: Event, state: HallsState, faults: Faults
) -> list[EstimateOut | ErrorOut]:
    """The estimator stage for one applied event, isolated: [] if it raised."""
    try:
        return estimator.on_event(event, state)
    except Exception as err:
        faults.record(Stage.ESTIMATOR, f"{event.hall}/{event.id}", repr(err), err)
        return []


class Pipeline:
    """`process(event)`: the state applies it; an applied one goes `to_estimator` (the estimator
    lane, which runs `estimate()` above on the events in order). `changes` says which halls
    an event reached since a reader last looked (the alert tick, the /metrics cache)."""

    def __init__(
        self,
        state: Callable[[], HallsState],
        to_estimator: Callable[[Event], None],
        faults: Faults,
        changes: Changes | None = None,
    ) -> None:
        self._state = state
        self._to_estimator = to_estimator
        self.faults = faults
        self.changes = changes if changes is not None else Changes()

    def process(self, event: Event) -> Outcome | None:
        """None when the state stage raised (counted and logged; the event is skipped)."""
        state = self._state()
        try:
            outcome = state.apply(event)
        except Exception as err:
            self.faults.record(Stage.STATE, f"{event.hall}/{event.id}", repr(err), err)
            return None
        finally:
            # Whatever the outcome: a refused event still counts (stale_events), and one that
            # raised may have changed the hall half-way. Only halls the state holds (a flood of
            # new names past the cap must not grow this).
            if event.hall in state.halls:
                self.changes.touch(event.hall)
        if outcome is Outcome.APPLIED:
            self._to_estimator(event)
        return outcome

    def unparsable(self, seq: int, detail: str) -> None:
        """A stored event that no longer parses: counted and logged, then skipped."""
        self.faults.record(Stage.PARSE, f"stored event {seq}", detail, None)


def offline(
    state: HallsState, estimator: Estimator, faults: Faults | None = None
) -> Callable[[Event], list[EstimateOut | ErrorOut]]:
    """The pipeline for offline replays (reports, scoring, recorded days): a function that takes
    one event through the state and, if applied, the estimator at once, returning its outputs."""
    faults = faults or Faults(time.monotonic)
    outs: list[EstimateOut | ErrorOut] = []
    pipe = Pipeline(
        lambda: state, lambda ev: outs.extend(estimate(estimator, ev, state, faults)), faults
    )

    def step(event: Event) -> list[EstimateOut | ErrorOut]:
        outs.clear()
        pipe.process(event)
        return list(outs)

    return step
