from django.contrib import admin

from ticketproo.crm.models import Company, Contact, Ticket


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "website", "is_active", "contract_ends_on", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "company", "email", "phone"]
    list_filter = ["company"]
    search_fields = ["name", "email"]


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "company", "assignee", "created_at", "resolved_at"]
    list_filter = ["status", "company"]
    search_fields = ["title", "description"]
    date_hierarchy = "created_at"
