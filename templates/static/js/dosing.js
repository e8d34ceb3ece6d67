// The dose table adds rows without a reload (without JavaScript it offers three empty rows per submit).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-add-row]");
  if (!button) return;
  event.preventDefault();
  var prefix = button.getAttribute("data-add-row");
  var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
  var template = document.getElementById(prefix + "-empty-row");
  var body = document.getElementById(prefix + "-rows");
  var index = parseInt(total.value, 10);
  var row = template.content.firstElementChild.cloneNode(true);
  row.innerHTML = row.innerHTML.replace(/__prefix__/g, String(index));
  body.appendChild(row);
  total.value = String(index + 1);
});
