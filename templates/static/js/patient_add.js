// Show at once what the server will derive from a resident ID number (the server checks it again). Only a
// number whose GB 11643 check character is right is read: a refused number must not look accepted. The
// labels come translated in #derived's data attributes (no inline script: see the CSP).
(function () {
  "use strict";
  var type = document.getElementById("id_id_type"), number = document.getElementById("id_id_number");
  var sex = document.getElementById("id_sex"), birth = document.getElementById("id_birth_date");
  var out = document.getElementById("derived");
  if (!type || !number || !out) { return; }
  var labels = {F: out.dataset.female, M: out.dataset.male};
  var weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  // The server refused what is in the field now: show nothing derived until the patient changes it.
  var refused = number.parentNode.querySelector(".error") !== null;
  function checkCharacter(first17) {
    var sum = 0;
    for (var i = 0; i < 17; i += 1) { sum += parseInt(first17.charAt(i), 10) * weights[i]; }
    return "10X98765432".charAt(sum % 11);
  }
  function derive() {
    var value = number.value.replace(/\s/g, "").toUpperCase();
    if (refused || type.value !== "resident_id" || !/^\d{17}[\dX]$/.test(value)
        || checkCharacter(value.slice(0, 17)) !== value.charAt(17)) { out.hidden = true; return; }
    var date = value.slice(6, 10) + "-" + value.slice(10, 12) + "-" + value.slice(12, 14);
    var s = parseInt(value.charAt(16), 10) % 2 === 1 ? "M" : "F";
    if (sex) { sex.value = s; }
    if (birth) { birth.value = date; }
    out.textContent = out.dataset.format.replace("%(sex)s", labels[s]).replace("%(date)s", date);
    out.hidden = false;
  }
  number.addEventListener("input", function () { refused = false; derive(); });
  type.addEventListener("change", function () { refused = false; derive(); });
  derive();
})();
