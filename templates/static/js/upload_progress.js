// Upload progress for the same POST the form makes without JavaScript; the answer page replaces this one's
// main. The messages come translated in the form's data attributes (no inline script: see the CSP).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "upload-form" || !window.XMLHttpRequest || !window.FormData || !window.DOMParser) { return; }
    event.preventDefault();
    var bar = document.getElementById("upload-progress"), status = document.getElementById("upload-status");
    var request = new XMLHttpRequest();
    request.open("POST", form.action || window.location.href);
    request.upload.onprogress = function (e) {
      if (!e.lengthComputable) { return; }
      bar.hidden = false;
      bar.value = Math.round(100 * e.loaded / e.total);
      status.textContent = bar.value + "%";
    };
    request.upload.onload = function () { status.textContent = form.dataset.checking; };
    request.onload = function () {
      var page = new DOMParser().parseFromString(request.responseText, "text/html");
      var fresh = page.getElementById("main");
      if (request.status === 200 && fresh) {
        document.getElementById("main").innerHTML = fresh.innerHTML;
        if (request.responseURL) { window.history.replaceState(null, "", request.responseURL); }
      } else {
        status.textContent = form.dataset.failed;
      }
    };
    request.onerror = function () { status.textContent = form.dataset.offline; };
    request.send(new FormData(form));
  });
})();
