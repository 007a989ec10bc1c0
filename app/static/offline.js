// The counter when the network drops (loaded before store-counter.js, which calls it).
// - registers the counter's service worker (the page and its files open with no network);
// - keeps the venue's offline list (items, prices, card hashes, allowances) in IndexedDB;
// - offline, a card scan is checked against that list (the scanned token hashed with
//   SHA-256: crypto.subtle needs a secure context - HTTPS, or 127.0.0.1/localhost), a pay
//   code is refused, and a confirmed redemption gets its request id and receipt number at
//   once and is stored in IndexedDB before the receipt shows (a reload, a closed browser or a
//   power cut loses nothing confirmed);
// - online again, the queue is sent in order, each with its request id, one tab at a time
//   (navigator.locks; the server records a request id once whatever happens);
// - the state is always shown in words: online, offline, syncing, N waiting, conflicts.
(function () {
  "use strict";
  var textEl = document.getElementById("offline-text");
  if (!textEl) return;
  var T = JSON.parse(textEl.textContent);
  var DB_NAME = "village-points-counter", LIST_PATH = "/api/v1/counter/offline";
  var SYNC_PATH = "/api/v1/counter/offline/redemptions";
  var dbPromise = null, syncing = false, networkDown = false, lastList = null;
  var stateEl = null;
  // Tabs of this counter tell each other when the queue or the list changed.
  var channel = "BroadcastChannel" in window ? new BroadcastChannel(DB_NAME) : null;
  function changed() { if (channel) channel.postMessage("changed"); }

  // ------------------------------------------------------------ IndexedDB

  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () {
        var db = req.result;
        var q = db.createObjectStore("queue", { keyPath: "request_id" });
        q.createIndex("seq", "seq");
        db.createObjectStore("meta");
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
    return dbPromise;
  }

  function done(tx) {
    return new Promise(function (resolve, reject) {
      tx.oncomplete = function () { resolve(); };
      tx.onerror = tx.onabort = function () { reject(tx.error || new Error("IndexedDB")); };
    });
  }

  function get(store, key) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var r = db.transaction(store).objectStore(store).get(key);
        r.onsuccess = function () { resolve(r.result); };
        r.onerror = function () { reject(r.error); };
      });
    });
  }

  function put(store, value, key) {
    return openDb().then(function (db) {
      var tx = db.transaction(store, "readwrite");
      tx.objectStore(store).put(value, key);
      return done(tx);
    });
  }

  function allRecords() {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var r = db.transaction("queue").objectStore("queue").index("seq").getAll();
        r.onsuccess = function () { resolve(r.result); };
        r.onerror = function () { reject(r.error); };
      });
    });
  }

  // ------------------------------------------------------------ network

  function csrf() {
    var m = document.querySelector("meta[name=csrf-token]");
    return m ? m.content : "";
  }

  function online() { return navigator.onLine && !networkDown; }

  function request(method, path, body) {
    var headers = { "Accept": "application/json", "X-CSRFToken": csrf() };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method: method, headers: headers, credentials: "same-origin", cache: "no-store",
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      networkDown = false;
      return r.json().catch(function () { return {}; }).then(function (data) {
        return { status: r.status, data: data };
      });
    }, function (e) { networkDown = true; show(); throw e; });
  }

  function refreshList() {
    return request("GET", LIST_PATH).then(function (r) {
      if (r.status !== 200) return null;
      // Signing out (page-tools.js) forgets the list: one arriving now is not kept.
      if (document.documentElement.hasAttribute("data-signing-out")) return null;
      var m = document.querySelector("meta[name=csrf-token]");
      if (m && r.data.csrf) m.content = r.data.csrf;
      delete r.data.csrf;
      lastList = r.data;
      return put("meta", r.data, "list").then(function () { show(); changed(); return r.data; });
    });
  }

  function theList() {
    if (lastList) return Promise.resolve(lastList);
    return get("meta", "list").then(function (l) { lastList = l || null; return lastList; });
  }

  // ------------------------------------------------------------ offline scan and redemption

  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function failure(message) { var e = new Error(message); e.offline = true; return e; }

  function tokenOf(text) {
    text = (text || "").trim().normalize("NFKC");
    if (/^[\d\s\u3000-]+$/.test(text)) return null; // a typed pay code number
    var m = /\/q\/([A-Za-z0-9_.\-]+)/.exec(text);
    var token = m ? m[1] : text;
    try { // the token's first part is its payload: ["p", number] for a pay code
      var b64 = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
      var payload = JSON.parse(atob(b64 + "===".slice((b64.length + 3) % 4)));
      if (payload[0] === "p") return null;
    } catch (e) { /* not ours: the hash will not be found either */ }
    return token;
  }

  function pendingFor(records, publicId) {
    var sum = 0;
    records.forEach(function (r) {
      if (r.state === "pending" && r.public_id === publicId) sum += r.view.total;
    });
    return sum;
  }

  function lookup(text) {
    return theList().then(function (list) {
      if (!list) throw failure(T.no_list);
      if (!list.enabled) throw failure(T.off);
      var token = tokenOf(text);
      if (token === null) throw failure(T.paycode);
      if (!window.crypto || !crypto.subtle) throw failure(T.insecure);
      return crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)).then(function (d) {
        var digest = hex(d), h = null;
        for (var i = 0; i < list.households.length; i++) {
          if (list.households[i].card === digest) { h = list.households[i]; break; }
        }
        if (!h) throw failure(T.unknown_card);
        return allRecords().then(function (records) {
          var left = Math.max(0, h.allowance - pendingFor(records, h.public_id));
          return {
            offline: true,
            household: { public_id: h.public_id, number: h.number, head: h.head, balance: left, stars: 0 },
            resident: null,
            residents: h.residents,
            source: "card",
            pin_required: false,
            code: token,
            note: T.allowance.replace("%(a)s", left).replace("%(b)s", h.balance)
          };
        });
      });
    });
  }

  // The village's day of a moment (ms), as the server counts it, whatever the device's zone.
  function villageDay(list, ms) {
    return new Date(ms + list.utc_offset * 60000).toISOString().slice(0, 10);
  }

  // A meal's daily limit per resident per slot, as online: the meals the list knew of (when it
  // was made today), those this counter recorded that the list did not know of (waiting, sent
  // after it, or refused by the server: served all the same), and this batch's.
  function mealRefusal(list, h, residentId, lines, records) {
    // A list kept from before this check (no day) knows no meals: the sync still checks them.
    if (!list.day || typeof list.utc_offset !== "number") return null;
    var items = {}, batch = {}, had = {}, today = villageDay(list, Date.now());
    list.items.forEach(function (it) { items[it.id] = it; });
    lines.forEach(function (l) {
      var it = items[l.item_id];
      if (!it || !it.slot) return;
      var b = batch[it.slot] || { count: 0, limit: it.limit || 1 };
      b.count += l.qty;
      b.limit = Math.min(b.limit, it.limit || 1);
      batch[it.slot] = b;
    });
    var slots = Object.keys(batch);
    if (!slots.length) return null;
    var person = null;
    h.residents.forEach(function (x) { if (x.id === residentId) person = x; });
    if (person && person.meals && list.day === today) {
      Object.keys(person.meals).forEach(function (s) { had[s] = person.meals[s]; });
    }
    var listed = Date.parse(list.issued_at);
    records.forEach(function (rec) {
      if (rec.body.resident_id !== residentId) return;
      if (villageDay(list, Date.parse(rec.made_at)) !== today) return;
      // Sent and recorded before the list was made: the list counts it. (One the online
      // counter had recorded already - its answer lost - has no sync time: it was recorded when
      // it was made.)
      var result = rec.result || {};
      var recorded = Date.parse(result.synced_at || rec.made_at);
      if (rec.state === "done" && recorded <= listed) return;
      rec.body.lines.forEach(function (l) {
        var it = items[l.item_id];
        if (it && it.slot) had[it.slot] = (had[it.slot] || 0) + l.qty;
      });
    });
    for (var i = 0; i < slots.length; i++) {
      var slot = slots[i], count = had[slot] || 0;
      if (count + batch[slot].count > batch[slot].limit) {
        return T.meal_limit.replace("%(name)s", person ? person.name : "")
          .replace("%(count)s", count).replace("%(slot)s", T.slots[slot] || slot)
          .replace("%(limit)s", batch[slot].limit);
      }
    }
    return null;
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16); crypto.getRandomValues(a); return hex(a);
  }

  // One readwrite transaction checks the allowance left (against every tab's queue) and adds
  // the redemption: two tabs cannot both spend the same allowance.
  function redeem(scan, lines, resident, total, requestId) {
    return Promise.all([theList(), openDb()]).then(function (got) {
      var list = got[0], db = got[1];
      var tx = db.transaction(["queue", "meta"], "readwrite");
      var queue = tx.objectStore("queue"), meta = tx.objectStore("meta");
      var record = null, refused = null;
      // Requests of one transaction answer in order: when `seq` answers, the others have.
      var all = queue.getAll(), device = meta.get("device"), kept = meta.get("list");
      var seq = meta.get("seq");
      var finish = new Promise(function (resolve, reject) {
        tx.oncomplete = function () { refused ? reject(refused) : resolve(record); };
        tx.onerror = tx.onabort = function () { reject(refused || tx.error || failure(T.failed)); };
      });
      seq.onsuccess = function () {
        list = kept.result || list; // the newest list, whichever tab fetched it
        if (!list) { // forgotten meanwhile: signed out in another tab
          refused = failure(T.no_list);
          return;
        }
        lastList = list;
        var h = null;
        list.households.forEach(function (x) { if (x.public_id === scan.household.public_id) h = x; });
        var meal = h ? mealRefusal(list, h, resident.id, lines, all.result || []) : null;
        if (meal) {
          refused = failure(meal);
          return;
        }
        var left = h ? h.allowance - pendingFor(all.result || [], h.public_id) : 0;
        if (!h || total > left) {
          refused = failure(T.over.replace("%(a)s", Math.max(0, left)));
          return;
        }
        var dev = device.result || newId().replace(/-/g, "").slice(0, 4).toUpperCase();
        var n = (seq.result || 0) + 1;
        meta.put(dev, "device");
        meta.put(n, "seq");
        var names = {};
        list.items.forEach(function (it) { names[it.id] = it; });
        record = {
          request_id: requestId || newId(),
          seq: Date.now() * 1000 + (n % 1000),
          receipt_no: list.venue.id + "-" + dev + "-" + ("000" + n).slice(-4),
          public_id: h.public_id,
          state: "pending",
          made_at: new Date().toISOString(),
          body: {
            code: scan.code,
            lines: lines,
            resident_id: resident.id,
            list: list.list
          },
          view: {
            total: total,
            balance_after: left - total,
            household: { number: h.number, head: h.head },
            resident: { name: resident.name },
            venue: list.venue.name,
            lines: lines.map(function (l) {
              var it = names[l.item_id] || { name: "#" + l.item_id, points: 0 };
              var price = it.slot && resident.prices[it.id] !== undefined ? resident.prices[it.id] : it.points;
              return { name: it.name, qty: l.qty, subtotal: price * l.qty };
            })
          }
        };
        queue.add(record);
        // The goods are gone from this counter's shelf too.
        list.items.forEach(function (it) {
          lines.forEach(function (l) {
            if (l.item_id === it.id && it.stock !== null) it.stock = Math.max(0, it.stock - l.qty);
          });
        });
        meta.put(list, "list");
      };
      return finish;
    }).then(function (record) {
      show();
      changed();
      setTimeout(sync, 0);
      var v = record.view;
      return {
        id: record.receipt_no, offline: true, total: v.total, balance_after: v.balance_after,
        lines: v.lines, household: v.household, resident: v.resident, venue: v.venue,
        note: T.receipt
      };
    });
  }

  function items() {
    return theList().then(function (list) {
      if (!list) throw failure(T.no_list);
      return list.items;
    });
  }

  // ------------------------------------------------------------ sync

  function update(record) {
    return openDb().then(function (db) {
      var tx = db.transaction("queue", "readwrite");
      tx.objectStore("queue").put(record);
      return done(tx);
    });
  }

  function sendAll() {
    return allRecords().then(function (records) {
      var pending = records.filter(function (r) { return r.state === "pending"; });
      var chain = Promise.resolve(true);
      pending.forEach(function (record) {
        chain = chain.then(function (go) {
          if (!go) return false;
          // Another tab may have sent it meanwhile: read it again under the lock.
          return get("queue", record.request_id).then(function (now) {
            if (!now || now.state !== "pending") return true;
            return send(now);
          });
        });
      });
      return chain;
    });
  }

  function send(record) {
    var body = {
      request_id: record.request_id, receipt_no: record.receipt_no, occurred_at: record.made_at,
      code: record.body.code, lines: record.body.lines, resident_id: record.body.resident_id,
      list: record.body.list
    };
    return request("POST", SYNC_PATH, body).then(function (r) {
      if (r.status === 400) { // an old form token (the page came from the cache): a new one
        return refreshList().then(function () { return request("POST", SYNC_PATH, body); });
      }
      return r;
    }).then(function (r) {
      if (r.status === 201 || r.status === 200) {
        record.state = r.data.status === "conflict" ? "conflict" : "done";
        record.result = r.data;
      } else if (r.status === 409 && r.data.error === "request_id_reused") {
        // Its request id was recorded by the online counter: the try that seemed lost when
        // the network dropped did arrive. Recorded once, as it should be.
        record.state = "done";
        record.result = r.data;
      } else if (r.status === 401 || r.status === 403 || r.status >= 500 || r.status === 429) {
        record.error = r.data.message || "";
        show(r.status === 401 ? T.signin : record.error);
        return false; // try again later, in the same order
      } else {
        record.state = "failed";
        record.result = r.data;
      }
      return update(record).then(function () { show(); changed(); return true; });
    });
  }

  function prune() {
    // Sent records are kept a day; conflicts (the admin decides them on the server) a week.
    var day = Date.now() - 24 * 3600 * 1000, week = Date.now() - 7 * 24 * 3600 * 1000;
    return openDb().then(function (db) {
      var tx = db.transaction("queue", "readwrite");
      var store = tx.objectStore("queue");
      var r = store.getAll();
      r.onsuccess = function () {
        r.result.forEach(function (rec) {
          var at = Date.parse(rec.made_at);
          if ((rec.state === "done" && at < day) || (rec.state !== "pending" && at < week)) {
            store.delete(rec.request_id);
          }
        });
      };
      return done(tx);
    });
  }

  function sync() {
    if (syncing || !navigator.onLine) return Promise.resolve();
    syncing = true;
    show();
    var run = function () {
      return sendAll().then(function () { return refreshList(); });
    };
    var p = navigator.locks ? navigator.locks.request("village-points-counter-sync", run) : run();
    return p.catch(function () { /* the network dropped again: the next attempt resumes */ })
      .then(function () { syncing = false; return prune(); })
      .then(function () { show(); document.dispatchEvent(new Event("counter-synced")); });
  }

  // ------------------------------------------------------------ the state, in words

  function show(extra) {
    if (!stateEl) return;
    allRecords().then(function (records) {
      var waiting = 0, conflicts = 0;
      records.forEach(function (r) {
        if (r.state === "pending") waiting++;
        else if (r.state === "conflict" || r.state === "failed") conflicts++;
      });
      var parts = [syncing ? T.syncing : online() ? T.online : T.offline];
      if (!online() && lastList && !lastList.enabled) parts.push(T.off);
      if (waiting) parts.push(T.waiting.replace("%(n)s", waiting));
      if (conflicts) parts.push(T.conflicts.replace("%(n)s", conflicts));
      if (typeof extra === "string" && extra) parts.push(extra);
      stateEl.textContent = parts.join(" · ");
      stateEl.className = "net-state " + (syncing ? "syncing" : online() ? "online" : "offline") +
        (conflicts ? " has-conflicts" : "") + (waiting ? " has-waiting" : "");
      stateEl.setAttribute("data-waiting", waiting);
      stateEl.setAttribute("data-list", lastList ? lastList.issued_at : "");
      stateEl.setAttribute("data-syncing", syncing ? "1" : "");
      stateEl.setAttribute("data-conflicts", conflicts);
    }).catch(function () {});
  }

  function start() {
    stateEl = document.getElementById("net-state");
    if (channel) channel.onmessage = function () { lastList = null; theList().then(show); };
    if ("serviceWorker" in navigator && window.isSecureContext) {
      navigator.serviceWorker.register(T.sw, { scope: T.scope }).catch(function () {});
    }
    window.addEventListener("online", function () { networkDown = false; show(); sync(); });
    window.addEventListener("offline", function () { show(); });
    setInterval(function () { if (navigator.onLine) sync(); }, 15000);
    show();
    if (navigator.onLine) sync(); else theList().then(show);
  }

  window.CounterOffline = {
    isOffline: function () { return !online(); },
    lookup: lookup,
    redeem: redeem,
    items: items,
    sync: sync,
    networkFailed: function () { networkDown = true; show(); }
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
