"""Scheduled tasks: staff-written Python snippets run on a schedule, safely and exactly once."""
