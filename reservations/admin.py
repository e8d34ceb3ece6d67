from django.contrib import admin

from reservations.models import Department, Doctor


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin[Department]):
    list_display = ("code", "name_zh", "name_en", "kind", "sort_order")
    list_filter = ("kind",)
    search_fields = ("code", "name_zh", "name_en")


@admin.register(Doctor)
class DoctorAdmin(admin.ModelAdmin[Doctor]):
    list_display = ("code", "name_zh", "name_en", "title", "department")
    list_filter = ("title", "department")
    search_fields = ("code", "name_zh", "name_en")
