"""Two failures moto 5.2.5 lets pass and AWS does not, so a workflow that relies on them fails here.

A Choice rule on a path the input does not have fails the execution, as on AWS.

AWS evaluates a JSONPath Choice rule's `Variable` first; when the path does not exist in
the state's input, every comparison but `IsPresent` fails the state with `States.Runtime`:
"Invalid path '$.x': The choice state's condition path references an invalid value."
(A Choice has no Catch, so the execution fails; in a Map, the iteration does.) moto 5.2.5
evaluates the comparison to false instead and takes the `Default`, so a rule on a field
some step's result lacks (`$.audit.repairable` of a cluster that is not READY) passed
here and failed the audit's child on AWS. The emulator fails it as AWS does.

A Distributed Map fails when its failed children exceed its tolerated failures
(`ToleratedFailurePercentage` / `ToleratedFailureCount`, 0 when absent: one failed child
fails the Map Run) with `States.ExceedToleratedFailureThreshold`. moto counts the failed
item, puts `null` in the Map's results and succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.choice.comparison import comparison_variable
from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_operator_type import (
    ComparisonOperatorType,
)
from moto.stepfunctions.parser.asl.component.state.choice.comparison.variable import NoSuchVariable
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import distributed_iteration_component
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

THRESHOLD_CAUSE = "The specified tolerated failure threshold was exceeded"


def _failure(env: Any, error: StatesErrorNameType, cause: str) -> FailureEventException:
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=error),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                taskFailedEventDetails=TaskFailedEventDetails(error=error.to_name(), cause=cause)
            ),
        )
    )


def invalid_path_cause(path: str) -> str:
    return f"Invalid path '{path}': The choice state's condition path references an invalid value."


@contextmanager
def enforced() -> Iterator[None]:
    cls = comparison_variable.ComparisonVariable
    original = cls._eval_body

    def eval_body(self: Any, env: Any) -> None:
        self.variable.eval(env)
        value = env.stack.pop()
        operator = getattr(self.comparison_function, "operator_type", None)
        if isinstance(value, NoSuchVariable) and operator != ComparisonOperatorType.IsPresent:
            path = str(self.variable.string_sampler.literal_value)
            raise _failure(env, StatesErrorNameType.StatesRuntime, invalid_path_cause(path))
        env.stack.append(value)
        self.comparison_function.eval(env)

    component = distributed_iteration_component.DistributedIterationComponent
    original_map_run = component._map_run

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original_map_run(self, env, eval_input)
        counts = eval_input.map_run_record.item_counter
        failed = counts.failed.get() + counts.timed_out.get()
        total = max(counts.total.get(), 1)
        if failed > eval_input.tolerated_failure_count and 100 * failed / total > (
            eval_input.tolerated_failure_percentage or 0
        ):
            raise _failure(env, StatesErrorNameType.StatesExceedToleratedFailureThreshold, THRESHOLD_CAUSE)

    cls._eval_body = eval_body  # type: ignore[method-assign]
    component._map_run = map_run  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls._eval_body = original  # type: ignore[method-assign]
        component._map_run = original_map_run  # type: ignore[method-assign]
