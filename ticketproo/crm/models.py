"""The CRM domain: companies, their contacts, and the tickets raised for them."""

from django.conf import settings
from django.db import models


class Company(models.Model):
    name = models.CharField("name", max_length=200, unique=True)
    website = models.URLField("website", blank=True)
    is_active = models.BooleanField(
        "active", default=True, help_text="Inactive companies are kept for history only."
    )
    contract_ends_on = models.DateField(
        "contract ends on",
        null=True,
        blank=True,
        help_text="After this day the company can be disabled by the scheduled job.",
    )
    created_at = models.DateTimeField("created at", auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="contacts", verbose_name="company"
    )
    name = models.CharField("name", max_length=200)
    email = models.EmailField("email", blank=True)
    phone = models.CharField("phone", max_length=50, blank=True)
    created_at = models.DateTimeField("created at", auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Ticket(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    title = models.CharField("title", max_length=200)
    description = models.TextField("description", blank=True)
    status = models.CharField(
        "status", max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    company = models.ForeignKey(
        Company,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name="company",
    )
    contact = models.ForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name="contact",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
        verbose_name="assignee",
    )
    created_at = models.DateTimeField("created at", auto_now_add=True)
    updated_at = models.DateTimeField("updated at", auto_now=True)
    resolved_at = models.DateTimeField(
        "resolved at",
        null=True,
        blank=True,
        help_text="When the ticket was last marked resolved; cleared when it is reopened.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "resolved_at"], name="crm_ticket_status_resolved")
        ]

    def __str__(self) -> str:
        return self.title
