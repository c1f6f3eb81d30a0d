"""Names of the generated GraphQL API (DESIGN §2), derived from the user's names.

The SDL generator and the resolver bindings both call these, so a field is always
resolved under the name it is published with.
"""

from __future__ import annotations


def capitalized(name: str) -> str:
    return name[:1].upper() + name[1:]


def read_field(entity: str) -> str:
    return f"read{entity}"


def create_field(entity: str) -> str:
    return f"create{entity}"


def update_field(entity: str) -> str:
    return f"update{entity}"


def delete_field(entity: str) -> str:
    return f"delete{entity}"


def list_field(entity: str) -> str:
    return f"list{entity}"


def create_input(entity: str) -> str:
    return f"Create{entity}Input"


def update_input(entity: str) -> str:
    return f"Update{entity}Input"


def connection_type(entity: str) -> str:
    return f"{entity}Connection"


def trigger_task_field(task: str) -> str:
    return f"triggerTask{capitalized(task)}"


def task_result_field(task: str) -> str:
    return f"taskResult{capitalized(task)}"


def task_result_type(task: str) -> str:
    return f"TaskResult{capitalized(task)}"


def on_create_field(entity: str) -> str:
    return f"onCreate{entity}"


def on_update_field(entity: str) -> str:
    return f"onUpdate{entity}"


def on_delete_field(entity: str) -> str:
    return f"onDelete{entity}"


def on_task_result_field(task: str) -> str:
    return f"onTaskResult{capitalized(task)}"


# listT pages: the default page size of the SDL and the cap the store applies.
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100

DELETE_RESULT = "DeleteResult"
SORT_ORDER = "SortOrder"
TASK_STATUS = "TaskStatus"
TASK_TRIGGER_RESULT = "TaskTriggerResult"
DELETION_TASK_RESULT = "DeletionTaskResult"
TASK_STATISTICS = "TaskStatistics"
