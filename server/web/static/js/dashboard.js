// The dashboard without reloads where it helps: filters apply as they change, and the
// bulk bar counts the selection. Every control also works without this file.
(function () {
  "use strict";

  var filters = document.querySelector("form.filters");
  if (filters) {
    filters.querySelectorAll("[data-autosubmit]").forEach(function (control) {
      control.addEventListener("change", function () { filters.requestSubmit(); });
    });
  }

  var bulk = document.getElementById("bulk-form");
  if (!bulk) return;
  var boxes = Array.prototype.slice.call(bulk.querySelectorAll('input[name="ids"]'));
  var all = document.getElementById("select-all");
  var allLabel = document.getElementById("select-all-label");
  var count = document.getElementById("selection-count");
  var shownText = count.textContent;
  var actions = bulk.querySelectorAll('button[name="action"]');

  function update() {
    var chosen = boxes.filter(function (box) { return box.checked; }).length;
    count.textContent = chosen ? chosen + " selected" : shownText;
    all.checked = chosen > 0 && chosen === boxes.length;
    all.indeterminate = chosen > 0 && chosen < boxes.length;
    actions.forEach(function (button) { button.disabled = chosen === 0; });
  }

  all.hidden = false;
  allLabel.hidden = false;
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
    update();
  });
  boxes.forEach(function (box) { box.addEventListener("change", update); });
  update();
})();
