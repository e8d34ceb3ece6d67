// A camera scan fills the same field a USB scanner types into. BarcodeDetector exists in Chromium-based
// browsers; elsewhere the button stays hidden and the USB scanner or typing still works.
(function () {
  "use strict";
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) { return; }
  var button = document.getElementById("camera"), video = document.getElementById("preview");
  var field = document.getElementById("id_code"), form = document.getElementById("scan-form");
  if (!button || !video || !field || !form) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    var detector = new window.BarcodeDetector({formats: ["qr_code"]});
    navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}}).then(function (stream) {
      video.srcObject = stream; video.hidden = false; video.play();
      var timer = setInterval(function () {
        detector.detect(video).then(function (codes) {
          if (!codes.length) { return; }
          clearInterval(timer); stream.getTracks().forEach(function (t) { t.stop(); });
          field.value = codes[0].rawValue; form.submit();
        });
      }, 300);
    });
  });
})();
