/* Screening status, kept current without reloading the page.

   The status card carries data-poll-url while the pipeline is reading the report. Every few seconds this asks
   that URL for the card's fresh HTML and swaps it in; it stops once the answer has no data-poll-url (a
   decision arrived). Pages work without it: the card's "check again" link reloads the page (no timed
   meta refresh: axe counts one as a critical barrier). */
(function () {
  "use strict";
  var INTERVAL_MS = 3000, GIVE_UP_MS = 15 * 60 * 1000, started = Date.now(), busy = false;

  function tick() {
    var card = document.querySelector("[data-poll-url]");
    if (!card || busy || Date.now() - started > GIVE_UP_MS || document.hidden) { return; }
    busy = true;
    fetch(card.getAttribute("data-poll-url"), {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").body.firstElementChild;
        if (fresh && card.isConnected) {
          card.replaceWith(fresh);
          if (!fresh.hasAttribute("data-poll-url")) {
            var heading = fresh.querySelector("h2");
            if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
          }
        }
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ })
      .then(function () { busy = false; });
  }

  if (window.fetch && window.DOMParser) { window.setInterval(tick, INTERVAL_MS); }
})();
