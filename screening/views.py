"""Patient pages for uploading test results, and the one view that serves an upload's file.

The upload form is a plain multipart POST that works without JavaScript; a small script on the page sends the
same form with XMLHttpRequest to show progress.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from medcard.models import User
from medcard.views import patient_required
from reservations.services import booking_for_account
from screening import selectors, services, uploads
from screening.models import Upload


@patient_required
@never_cache
@require_http_methods(["GET", "POST"])
def booking_uploads(request: HttpRequest, booking_id: int) -> HttpResponse:
    """List a booking's uploads; POST ``file`` (one or several) to add to them."""
    account: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        files = request.FILES.getlist("file")
        if not files:
            booking_for_account(account=account, booking_id=booking_id)  # 404 before saying anything else
            messages.error(request, _("Please choose a photo or PDF of your report first."))
        for uploaded in files:
            name = services.clean_filename(uploaded.name or "")
            try:
                services.upload_accept(
                    account=account, booking_id=booking_id, filename=name, data=uploads.read_capped(uploaded)
                )
            except services.UploadRefused as exc:
                messages.error(request, f"{name}: {exc.message}" if name else exc.message)
            else:
                messages.success(request, _("Received %(name)s.") % {"name": name or _("your file")})
        return redirect("screening:booking-uploads", booking_id=booking_id)
    booking = booking_for_account(account=account, booking_id=booking_id)
    rows = selectors.uploads_for_booking(account=account, booking_id=booking_id)
    context = {
        "booking": booking,
        "uploads": rows,
        "max_mb": max(1, uploads.max_upload_bytes() // (1024 * 1024)),
        "max_uploads": services.max_uploads_per_booking(),
    }
    return render(request, "screening/booking_uploads.html", context)


def _file_response(upload: Upload) -> HttpResponse:
    data = selectors.upload_derivative_bytes(upload=upload)
    response = HttpResponse(data, content_type=upload.content_type)
    extension = upload.derivative_name.rsplit(".", 1)[-1]
    # Images are shown inline. PDFs are downloaded rather than rendered in our origin, even though the
    # derivative has no scripts or annotations left (reference §2: never render uploaded PDFs inline).
    disposition = "inline" if upload.is_image else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="upload-{upload.pk}.{extension}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def upload_file(request: HttpRequest, upload_id: int) -> HttpResponse:
    """The upload's derivative, for the patient account that owns the booking or for front-desk staff.

    Everyone else gets 404. The original is never served. Staff reads are audited.
    """
    user = request.user
    if not user.is_authenticated:
        return redirect(f"{reverse('medcard:login')}?next={request.path}")
    account: User = user
    if account.kind == User.Kind.PATIENT:
        return _file_response(selectors.upload_for_account(account=account, upload_id=upload_id))
    upload = selectors.upload_for_staff(staff=account, upload_id=upload_id)
    services.upload_staff_read_record(staff=account, upload=upload)
    return _file_response(upload)
