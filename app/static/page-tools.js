// Small page helpers, without inline handlers (our CSP allows scripts from our own files only):
// a button with data-print prints the page; a checkbox with data-tick-all="name" ticks or
// unticks every checkbox of that name; a page that comes back with an error shows it where the
// eye is: the first error is scrolled to the middle of the screen and focused (a field's error
// focuses the field, whose aria-describedby reads the message), so no refusal looks like a
// button that did nothing.
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

  function showFirstError() {
    var e = document.querySelector("main [role=alert]:not([hidden]), main .has-error");
    if (!e || !e.textContent.trim()) return;
    var details = e.closest("details");
    if (details) details.open = true;
    var target = e;
    if (e.classList.contains("has-error")) {
      target = e.querySelector("input:not([type=hidden]), select, textarea") || e;
    }
    if (!/^(INPUT|SELECT|TEXTAREA|BUTTON|A)$/.test(target.tagName)) target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: "center" });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showFirstError);
  else showFirstError();
})();
