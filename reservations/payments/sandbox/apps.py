from django.apps import AppConfig


class PaymentSandboxConfig(AppConfig):
    name = "reservations.payments.sandbox"
    label = "payment_sandbox"
    verbose_name = "Payment sandbox gateway"
