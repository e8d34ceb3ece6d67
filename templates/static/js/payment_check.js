// The "checking your payment" state of an appointment, after the patient came back from the cashier: asks
// the server every 2 s (which asks the gateway itself once the notification is late) and reloads the page
// as soon as the payment is settled, either way. Without JavaScript the page refreshes itself (meta refresh).
(function () {
  "use strict";
  var holder = document.getElementById("payment-checking");
  if (!holder) {
    return;
  }
  var url = holder.dataset.statusUrl;
  var detail = window.location.pathname;
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) {
        return answer.ok ? answer.json() : { state: "checking" };
      })
      .then(function (body) {
        if (body.state === "booked" || body.state === "not_held") {
          window.location.replace(detail);
        } else if (body.state === "not_paid") {
          window.location.replace(detail + "?checking=1");
        } else {
          window.setTimeout(poll, 2000);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 2000);
      });
  }
  window.setTimeout(poll, 2000);
})();
