"""Task registry: name -> Task class. A task's constructor takes the trial's task keyword arguments."""
from __future__ import annotations

from ..registry import lookup
from .ar1 import AR1
from .base import Task
from .digits import Digits, PermutedDigits
from .sine import Sine
from .symbols import Symbols
from .teacher_student import TeacherStudent
from .temporal_order import TemporalOrder

TASKS: dict[str, type[Task]] = {
    "ar1": AR1,
    "digits": Digits,
    "pdigits": PermutedDigits,
    "sine": Sine,
    "symbols": Symbols,
    "teacher_student": TeacherStudent,
    "temporal_order": TemporalOrder,
}


def task_class(name: str) -> type[Task]:
    return lookup(TASKS, "task", name)


__all__ = ["TASKS", "Task", "task_class"]
