"""Read plans on a schedule, and the dispatcher that runs read jobs within the limits."""
