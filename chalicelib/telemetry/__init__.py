"""What an operator sees of the app on AWS: structured logs and CloudWatch metrics.

- :mod:`.logs`: ``configure_logging`` (called by ``boot()``) makes every log line one
  JSON object where Lambda runs the app; ``log_fields`` adds fields such as the
  correlation id to the lines of a block.
- :mod:`.metrics`: the metric names and units (the deployment's alarms import them),
  and ``count``/``maximum``/``observe``, which record into the invocation in progress.
- :mod:`.invocation`: :class:`Telemetry`, whose ``invocation()`` the handler adapters
  wrap each invocation in, writing its metrics as one EMF line at its end.

Only the standard library is imported: this costs the GraphQL function's cold start
nothing measurable.
"""

from chalicelib.telemetry.invocation import Telemetry
from chalicelib.telemetry.logs import add_log_fields, configure_logging, log_fields

__all__ = ["Telemetry", "add_log_fields", "configure_logging", "log_fields"]
