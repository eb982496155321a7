"""A task's Celery queue (the ``celery`` backend sends its runs there)."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scheduled_tasks", "0009_pages_at_scale"),
    ]

    operations = [
        migrations.AddField(
            model_name="scheduledtask",
            name="queue",
            field=models.CharField(
                blank=True,
                help_text="With Celery workers: the queue this task's runs are sent to (workers started with --queues=<name> take them); empty: the default queue. Ignored when the scheduler runs tasks itself.",
                max_length=100,
                validators=[
                    django.core.validators.RegexValidator(
                        "^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
                        "A queue name: letters, digits and _ . : - (starting with a letter or digit).",
                    )
                ],
                verbose_name="queue",
            ),
        ),
    ]
