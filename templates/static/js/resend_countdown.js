// "Send a new code": keep the button disabled and count down until the 60-second rule allows a new code.
(function () {
  document.querySelectorAll("form.resend").forEach(function (form) {
    var left = parseInt(form.dataset.wait || "0", 10);
    var button = form.querySelector("button"), wait = form.querySelector(".countdown-wait");
    var seconds = wait.querySelector(".seconds");
    if (!(left > 0)) { return; }
    button.disabled = true;
    var timer = setInterval(function () {
      left -= 1;
      seconds.textContent = String(left);
      if (left <= 0) { clearInterval(timer); button.disabled = false; wait.hidden = true; }
    }, 1000);
  });
})();
