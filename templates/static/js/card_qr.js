// Refresh the card's QR code before its token expires, counting down on the page (no inline script: CSP).
(function () {
  "use strict";
  var box = document.getElementById("qr"), label = document.getElementById("countdown");
  if (!box || !label) { return; }
  var period = parseInt(box.dataset.refresh, 10), left = period;
  var line = document.getElementById("countdown-line");
  if (line) { line.hidden = false; }  // the countdown is shown only where this script runs
  function refresh() {
    fetch(box.dataset.url, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) { box.innerHTML = data.svg; box.dataset.refreshed = String(Date.now()); left = period; })
      .catch(function () { left = 5; });
  }
  setInterval(function () { left -= 1; if (left <= 0) { refresh(); left = period; } label.textContent = String(left); }, 1000);
})();
