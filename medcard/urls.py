from django.urls import path

from medcard import views

app_name = "medcard"
urlpatterns = [
    path("login/", views.patient_login, name="login"),
    path("staff-login/", views.staff_login, name="staff-login"),
    path("logout/", views.sign_out, name="logout"),
]
