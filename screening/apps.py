from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    """Uploaded test results, the screening pipeline and the staff review queue."""

    name = "screening"
    verbose_name = "Screening"

    def ready(self) -> None:
        # Registering needs the models loaded, so it happens here and not at import time.
        from reservations.gates import gate_register
        from screening.gate import ScreeningGate

        gate_register(ScreeningGate())
