"""Task registry: name -> Task class. A task's constructor takes the trial's task keyword arguments."""
from __future__ import annotations

from ..registry import lookup
from .base import Task
from .teacher_student import TeacherStudent

TASKS: dict[str, type[Task]] = {
    "teacher_student": TeacherStudent,
}


def task_class(name: str) -> type[Task]:
    return lookup(TASKS, "task", name)


__all__ = ["TASKS", "Task", "task_class"]
