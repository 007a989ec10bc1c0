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

  // Signing out forgets the counter's offline list kept in this browser (households' names,
  // card hashes, allowances: offline.js), so the next person at this browser cannot read it;
  // the queue of confirmed redemptions stays, to be sent at the counter's next sign-in. A
  // browser that never opened the counter gets no database (its creation is aborted).
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.hasAttribute("data-forget-offline") || !window.indexedDB) return;
    e.preventDefault();
    // offline.js stores no list fetched after this (one on its way would bring it back).
    document.documentElement.setAttribute("data-signing-out", "");
    var gone = false;
    function go() { if (!gone) { gone = true; form.submit(); } }
    setTimeout(go, 2000); // never keep the clerk from signing out
    var req;
    try { req = indexedDB.open(form.getAttribute("data-forget-offline")); } catch (err) { go(); return; }
    req.onupgradeneeded = function () { req.transaction.abort(); };
    req.onerror = req.onblocked = function () { go(); };
    req.onsuccess = function () {
      var db = req.result;
      if (!db.objectStoreNames.contains("meta")) { db.close(); go(); return; }
      var tx = db.transaction("meta", "readwrite");
      tx.objectStore("meta").delete("list");
      tx.oncomplete = tx.onerror = tx.onabort = function () {
        db.close();
        // The counter's other tabs drop the copy they hold (offline.js reads the store again).
        if (window.BroadcastChannel) new BroadcastChannel(db.name).postMessage("changed");
        go();
      };
    };
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
