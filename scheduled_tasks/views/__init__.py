"""The scheduler's pages. Thin: parse the request, call the domain, render. The clock is read
here (``timezone.now()``) and handed down, never read deeper.

``tasks``: the task list, form, detail page and schedule preview; ``runs``: "Run now", "Test
run" and the page of one run; ``access``: the permissions and the decorator of task actions.
``scheduled_tasks/urls.py`` maps the URLs onto the pages.
"""
