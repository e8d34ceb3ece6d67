// The patient's place in the queue, updated on every call pushed by the server (SSE); no inline script.
(function () {
  var number = document.getElementById("place-number"), status = document.getElementById("place-status");
  var soon = document.getElementById("place-soon");
  var data = document.getElementById("my-place").dataset;
  var words = {
    number: data.wNumber + " ", called: data.wCalled + " ", ahead: data.wAhead, about: data.wAbout,
    minutes: data.wMinutes, seen: data.wSeen, absent: data.wAbsent
  };
  var source = new EventSource(data.stream);
  source.addEventListener("place", function (e) {
    var p = JSON.parse(e.data);
    if (!p.checked_in) { return; }
    number.textContent = words.number + p.number;
    if (p.state === "called") { status.textContent = words.called + p.room; }
    else if (p.state === "waiting") { status.textContent = p.ahead + " " + words.ahead + " · " + words.about + " " + p.wait_minutes + " " + words.minutes; }
    else { status.textContent = p.state === "completed" ? words.seen : words.absent; }
    soon.hidden = !p.two_ahead;
    document.body.dataset.placeUpdated = String(Date.now());
  });
})();
