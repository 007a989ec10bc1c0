// The pay code refreshes itself: the server issues a new QR and number about every 20 s; a
// code is accepted for about 60 s at the counter (longer once the clerk has scanned it), once.
(function () {
  "use strict";
  var box = document.getElementById("paycode");
  var qr = document.getElementById("qr"), number = document.getElementById("number");
  var status = document.getElementById("status");
  var T = JSON.parse(document.getElementById("paycode-text").textContent);
  document.getElementById("how").textContent = T.how; // it does refresh now
  function schedule(seconds) {
    setTimeout(refresh, Math.max(1, seconds) * 1000 + 300);
  }
  function refresh() {
    fetch(box.dataset.url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        qr.innerHTML = d.svg; // made by the server from our own URL
        number.textContent = d.number;
        status.textContent = "";
        schedule(d.refresh_in);
      })
      .catch(function () { status.textContent = T.offline; schedule(5); });
  }
  schedule(parseFloat(box.dataset.refresh));
})();
