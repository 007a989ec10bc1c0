// Small page helpers, without inline handlers (our CSP allows scripts from our own files only):
// a button with data-print prints the page; a checkbox with data-tick-all="name" ticks or
// unticks every checkbox of that name.
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target.closest("[data-print]") : null;
    if (t) window.print();
  });
  document.addEventListener("change", function (e) {
    var name = e.target.getAttribute && e.target.getAttribute("data-tick-all");
    if (!name) return;
    var boxes = document.querySelectorAll('input[type=checkbox][name="' + name + '"]');
    Array.prototype.forEach.call(boxes, function (b) { b.checked = e.target.checked; });
  });
})();
