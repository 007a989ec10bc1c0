// The counter: scan (USB scanner, camera, photo) -> household -> items -> confirm -> receipt.
// Works from the keyboard alone: the code input keeps the focus. Talks to /api/v1/counter/*.
(function () {
  "use strict";
  var $ = function (s) { return document.querySelector(s); };
  var T = JSON.parse($("#counter-text").textContent);
  var csrf = document.querySelector("meta[name=csrf-token]").content;
  var input = $("#code"), msg = $("#msg"), pin = $("#pin");
  var items = [], scan = null, code = "", cart = {}, residentId = null;
  var requestId = null, busy = false, receipt = null, lastTouch = false, pendingCode = null;
  var OFF = window.CounterOffline || null; // offline.js: the list, the queue, the sync

  function api(method, path, body, isForm) {
    var headers = { "X-CSRFToken": csrf, "Accept": "application/json" };
    if (body && !isForm) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method: method, headers: headers, credentials: "same-origin",
      body: body ? (isForm ? body : JSON.stringify(body)) : undefined
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var e = new Error(data.message || T.failed);
          e.status = r.status; e.code = data.error;
          throw e;
        }
        return data;
      });
    });
  }

  function say(text, ok) {
    msg.textContent = text || "";
    msg.hidden = !text;
    msg.className = "flash" + (ok ? "" : " error");
    // A refusal is read out (role=alert) and brought to where the eye is; the focus stays in
    // the code box, so the keyboard flow goes on.
    if (text && !ok && msg.scrollIntoView) msg.scrollIntoView({ block: "nearest" });
  }

  function fail(e) {
    // The request id stays until a receipt: a refused attempt recorded nothing, and a retry
    // after a lost answer must not record twice.
    say(e.status || e.offline ? e.message : T.network);
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function loadItems() {
    var offline = function () { return OFF.items().then(function (l) { items = l; render(); }); };
    if (OFF && OFF.isOffline()) return offline();
    return api("GET", "/api/v1/counter/items").then(function (d) { items = d.items; render(); })
      .catch(function (e) { if (!e.status && OFF) return offline(); throw e; });
  }

  function resident() {
    if (!scan) return null;
    if (scan.resident) return scan.resident;
    for (var i = 0; i < scan.residents.length; i++) if (scan.residents[i].id === residentId) return scan.residents[i];
    return null;
  }

  function price(item) {
    var r = resident();
    if (item.slot && r && r.prices[item.id] !== undefined) return r.prices[item.id];
    return item.points;
  }

  function total() {
    var t = 0;
    items.forEach(function (it) { t += (cart[it.id] || 0) * price(it); });
    return t;
  }

  function text(el, value) { el.textContent = value; return el; }

  function render() {
    $("#customer").hidden = !scan;
    $("#receipt").hidden = !receipt;
    if (!scan) return;
    var h = scan.household;
    text($("#h-number"), h.number);
    text($("#h-head"), h.head);
    text($("#h-stars"), "★".repeat(h.stars || 0));
    text($("#h-source"), T[scan.source]);
    text($("#h-balance"), h.balance);
    var r = resident();
    $("#resident-line").hidden = !r;
    if (r) text($("#resident-name"), r.name);
    $("#residents").hidden = !!scan.resident || scan.residents.length < 2;
    var list = $("#resident-list");
    list.textContent = "";
    scan.residents.forEach(function (p, i) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "chip" + (p.id === residentId ? " on" : "");
      b.textContent = String.fromCharCode(65 + i) + " " + p.name;
      b.addEventListener("click", function () { residentId = p.id; render(); refocus(); });
      list.appendChild(b);
    });
    $("#pin-box").hidden = !scan.pin_required;
    var ol = $("#items");
    ol.textContent = "";
    items.forEach(function (it, i) {
      var li = document.createElement("li");
      var qty = cart[it.id] || 0;
      li.className = qty ? "on" : "";
      var n = text(document.createElement("span"), String(i + 1)); n.className = "key";
      var name = document.createElement("span"); name.className = "name";
      name.textContent = it.name + (it.slot ? " · " + T.meal[it.slot] : "");
      var sub = document.createElement("small");
      sub.textContent = price(it) + (it.unit ? "/" + it.unit : "") +
        (it.stock === null ? "" : " · " + (it.stock > 0 ? T.stock + " " + it.stock : T.out));
      if (it.low) sub.className = "low";
      name.appendChild(sub);
      var minus = button("−", function () { add(it, -1); });
      var q = text(document.createElement("b"), String(qty)); q.className = "qty";
      var plus = button("+", function () { add(it, 1); });
      minus.setAttribute("aria-label", "− " + it.name);
      plus.setAttribute("aria-label", "+ " + it.name);
      [n, name, minus, q, plus].forEach(function (el) { li.appendChild(el); });
      ol.appendChild(li);
    });
    var t = total();
    text($("#total"), t);
    text($("#after"), h.balance - t);
    $("#after").className = h.balance - t < 0 ? "error" : "";
    $("#confirm").disabled = busy || t > h.balance || !Object.keys(cart).length;
  }

  function button(label, fn) {
    var b = document.createElement("button");
    b.type = "button"; b.textContent = label; b.className = "qbtn";
    b.addEventListener("click", function () { fn(); refocus(); });
    return b;
  }

  function add(it, d) {
    var q = Math.max(0, Math.min(99, (cart[it.id] || 0) + d));
    if (it.stock !== null && q > it.stock) q = it.stock;
    if (q) cart[it.id] = q; else delete cart[it.id];
    say("");
    render();
  }

  function clear() {
    askReplace(null);
    scan = null; code = ""; cart = {}; residentId = null; requestId = null; receipt = null;
    pin.value = ""; say(""); render();
  }

  function lookup(value) {
    if (busy) { input.value = value; return say(T.busy); } // kept, never dropped silently
    // A basket with items is never replaced without asking: the same code again (or the
    // button) replaces it, Esc or the other button keeps it.
    if (scan && Object.keys(cart).length && value !== pendingCode) return askReplace(value);
    askReplace(null);
    busy = true;
    say("");
    var found = function (d) {
      clear();
      scan = d; code = d.code || value; requestId = newId(); // the signed form of a typed number
      if (!d.resident && d.residents.length === 1) residentId = d.residents[0].id;
      busy = false;
      render();
      if (d.note) say(d.note, true);
      if (d.pin_required) pin.focus(); else refocus();
    };
    var failed = function (e) { busy = false; clear(); fail(e); refocus(); };
    // No network: the card is checked against this counter's offline list.
    var offline = function () { return OFF.lookup(value).then(found); };
    if (OFF && OFF.isOffline()) return offline().catch(failed);
    api("POST", "/api/v1/counter/lookup", { code: value }).then(found, function (e) {
      if (!e.status && OFF) { OFF.networkFailed(); return offline(); }
      throw e;
    }).catch(failed);
  }

  function askReplace(value) {
    pendingCode = value;
    $("#replace").hidden = value === null;
    if (value !== null) {
      text($("#replace-text"), T.replace.replace("%(n)s", scan.household.number));
      $("#replace").scrollIntoView({ block: "nearest" });
    }
  }

  function confirm() {
    if (busy || !scan) return;
    if (!Object.keys(cart).length) return say(T.empty);
    if (!resident()) return say(T.choose_resident);
    if (scan.pin_required && pin.value.length !== 4) { say(T.enter_pin); pin.focus(); return; }
    if (total() > scan.household.balance) return say(T.too_much);
    busy = true; render();
    requestId = requestId || newId();
    var lines = Object.keys(cart).map(function (id) { return { item_id: +id, qty: cart[id] }; });
    var body = { code: code, lines: lines, request_id: requestId, resident_id: resident().id };
    if (scan.pin_required) body.pin = pin.value;
    var sent = scan.offline ? OFF.redeem(scan, lines, resident(), total(), requestId)
      : api("POST", "/api/v1/counter/redemptions", body).catch(function (e) {
        // The network dropped between the scan and the confirm: a card's redemption is kept
        // offline under the same request id (if the first try did arrive, it counts once).
        if (e.status || !OFF || scan.source !== "card") throw e;
        OFF.networkFailed();
        return OFF.lookup(code).then(function (s) {
          return OFF.redeem(s, lines, resident(), total(), requestId);
        });
      });
    sent.then(function (r) {
      busy = false; scan = null; cart = {}; requestId = null; pin.value = "";
      receipt = r; showReceipt(r); loadItems().catch(function () {}); refocus();
    }).catch(function (e) {
      busy = false;
      if (e.code === "wrong_pin") { pin.value = ""; pin.focus(); }
      fail(e); render();
      if (e.code !== "wrong_pin") refocus();
    });
  }

  function showReceipt(r) {
    say("");
    text($("#r-id"), "#" + r.id);
    text($("#r-who"), r.household.number + " · " + r.household.head + " · " + r.resident.name + " · " + r.venue);
    var ul = $("#r-lines"); ul.textContent = "";
    r.lines.forEach(function (l) {
      ul.appendChild(text(document.createElement("li"), l.name + " × " + l.qty + " = " + l.subtotal));
    });
    text($("#r-total"), r.total);
    text($("#r-balance"), r.balance_after);
    var note = $("#r-void-note");
    note.hidden = !r.note; // an offline receipt says it waits for the network
    note.textContent = r.note || "";
    $("#void").hidden = !!r.offline;
    render();
  }

  function voidIt() {
    if (!receipt || busy || !window.confirm(T.confirm_void)) return refocus();
    busy = true;
    api("POST", "/api/v1/counter/redemptions/" + receipt.id + "/void", {}).then(function (d) {
      busy = false;
      var note = $("#r-void-note");
      note.textContent = T.voided.replace("%(b)s", d.reversal.balance_after);
      note.hidden = false;
      $("#void").hidden = true;
      loadItems(); refocus();
    }).catch(function (e) { busy = false; fail(e); refocus(); });
  }

  function command(v) {
    // While serving a household, short numbers pick items; anything else is a new code.
    var m = /^(-?)(\d{1,3})(?:[*xX×](\d{1,2}))?$/.exec(v);
    if (scan && m) {
      var it = items[+m[2] - 1];
      if (!it) return say(T.unknown_key);
      if (m[3] !== undefined) { cart[it.id] = 0; add(it, +m[3]); } else add(it, m[1] ? -1 : 1);
      return;
    }
    if (scan && /^[a-zA-Z]$/.test(v) && !scan.resident) {
      var p = scan.residents[v.toUpperCase().charCodeAt(0) - 65];
      if (p) { residentId = p.id; render(); return; }
    }
    lookup(v);
  }

  function refocus() {
    if (lastTouch) return; // a phone: don't pop the keyboard up over the items
    if (document.activeElement !== pin || pin.closest("[hidden]")) input.focus();
  }

  $("#scan").addEventListener("submit", function (e) {
    e.preventDefault();
    var v = input.value.trim();
    input.value = "";
    if (!v) {
      if (receipt) return clear(), refocus();
      return confirm();
    }
    command(v);
  });
  // Some scanners end a code with Tab instead of Enter: with text in the box, Tab is Enter.
  input.addEventListener("keydown", function (e) {
    if (e.key === "Tab" && !e.shiftKey && input.value.trim()) {
      e.preventDefault();
      $("#scan").requestSubmit ? $("#scan").requestSubmit() : $("#scan-go").click();
    }
  });
  $("#replace-yes").addEventListener("click", function () { var v = pendingCode; askReplace(null); pendingCode = v; lookup(v); refocus(); });
  $("#replace-no").addEventListener("click", function () { askReplace(null); refocus(); });
  pin.addEventListener("keydown", function (e) {
    if (e.key === "Enter") { e.preventDefault(); confirm(); }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    if (pendingCode !== null) askReplace(null); else clear();
    lastTouch = false; refocus();
  });
  document.addEventListener("pointerdown", function (e) { lastTouch = e.pointerType === "touch"; });
  input.addEventListener("blur", function () {
    setTimeout(function () {
      var a = document.activeElement;
      if (!lastTouch && (!a || a === document.body)) input.focus();
    }, 0);
  });
  $("#confirm").addEventListener("click", function () { confirm(); });
  $("#cancel").addEventListener("click", function () { clear(); refocus(); });
  $("#next").addEventListener("click", function () { clear(); refocus(); });
  $("#void").addEventListener("click", voidIt);
  // After offline.js synced, the stock on screen may be old: read it again between customers.
  document.addEventListener("counter-synced", function () {
    if (!scan && !busy) loadItems().catch(function () {});
  });

  $("#photo").addEventListener("change", function () {
    var f = this.files[0];
    if (!f) return;
    var form = new FormData();
    form.append("photo", f);
    this.value = "";
    api("POST", "/api/v1/counter/decode", form, true)
      .then(function (d) { lookup(d.code); })
      .catch(function (e) { fail(e); });
  });

  // The camera: the browser's BarcodeDetector where it has one, else jsQR from our own static
  // files (desktop Chromium, WeChat's browser), loaded on first use. Where the page may not use
  // a camera (no https, no permission, none attached) the clerk is told so.
  var cam = $("#camera"), video = $("#video"), stream = null, decoder = null;
  cam.hidden = false;
  function stop() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null; video.hidden = true;
  }
  function loadDecoder() {
    if (decoder) return Promise.resolve(decoder);
    if ("BarcodeDetector" in window) {
      var bd = new window.BarcodeDetector({ formats: ["qr_code"] });
      decoder = function (v) { return bd.detect(v).then(function (c) { return c.length ? c[0].rawValue : null; }); };
      return Promise.resolve(decoder);
    }
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = cam.getAttribute("data-decoder");
      s.onload = function () {
        var canvas = document.createElement("canvas"), ctx = canvas.getContext("2d", { willReadFrequently: true });
        decoder = function (v) {
          var scale = Math.min(1, 640 / (v.videoWidth || 640));
          canvas.width = Math.round(v.videoWidth * scale); canvas.height = Math.round(v.videoHeight * scale);
          if (!canvas.width || !canvas.height) return Promise.resolve(null);
          ctx.drawImage(v, 0, 0, canvas.width, canvas.height);
          var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
          var found = window.jsQR(img.data, img.width, img.height, { inversionAttempts: "attemptBoth" });
          return Promise.resolve(found ? found.data : null);
        };
        resolve(decoder);
      };
      s.onerror = function () { reject(new Error(T.failed)); };
      document.head.appendChild(s);
    });
  }
  cam.addEventListener("click", function () {
    if (stream) return stop();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return say(T.no_camera);
    say("");
    loadDecoder().then(function (decode) {
      return navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (s) {
        stream = s; video.srcObject = s; video.hidden = false; video.play();
        (function tick() {
          if (!stream) return;
          decode(video).then(function (value) {
            if (value) { stop(); lookup(value); } else setTimeout(tick, 200);
          }).catch(function () { setTimeout(tick, 500); });
        })();
      }, function (e) {
        say(e && (e.name === "NotAllowedError" || e.name === "SecurityError") ? T.camera_denied : T.no_camera);
      });
    }).catch(fail);
  });

  // Only the code this page was opened with (/q/<token>) is looked up by itself: what a
  // scanner types while the items load is the clerk's, and goes through the form as usual.
  var prefill = input.getAttribute("data-prefill");
  loadItems().then(function () { if (prefill) lookup(prefill); }).catch(fail);
})();
