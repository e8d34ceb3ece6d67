// Show at once what the server will derive from a resident ID number (the server checks it again). The
// labels come translated in #derived's data attributes (no inline script: see the CSP).
(function () {
  "use strict";
  var type = document.getElementById("id_id_type"), number = document.getElementById("id_id_number");
  var sex = document.getElementById("id_sex"), birth = document.getElementById("id_birth_date");
  var out = document.getElementById("derived");
  if (!type || !number || !out) { return; }
  var labels = {F: out.dataset.female, M: out.dataset.male};
  function derive() {
    var value = number.value.replace(/\s/g, "").toUpperCase();
    if (type.value !== "resident_id" || !/^\d{17}[\dX]$/.test(value)) { out.hidden = true; return; }
    var date = value.slice(6, 10) + "-" + value.slice(10, 12) + "-" + value.slice(12, 14);
    var s = parseInt(value.charAt(16), 10) % 2 === 1 ? "M" : "F";
    if (sex) { sex.value = s; }
    if (birth) { birth.value = date; }
    out.textContent = out.dataset.label + " " + labels[s] + ", " + date;
    out.hidden = false;
  }
  number.addEventListener("input", derive); type.addEventListener("change", derive); derive();
})();
