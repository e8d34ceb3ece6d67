from django.contrib import admin

from medcard.models import Patient, User


@admin.register(User)
class UserAdmin(admin.ModelAdmin[User]):
    list_display = ("__str__", "kind", "display_name", "is_active", "locked_until")
    list_filter = ("kind", "is_active", "groups")
    search_fields = ("username", "display_name")
    exclude = ("password", "mobile_ciphertext")
    readonly_fields = ("last_login", "date_joined", "failed_login_count")


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin[Patient]):
    list_display = ("__str__", "relationship", "sex", "birth_date")
    list_filter = ("relationship", "sex")
