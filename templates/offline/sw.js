// The counter's service worker: keeps the counter page and its files so the page opens with no
// network once it has been opened online. Rendered by the server: the list below holds the
// content-hashed addresses the page uses, so a new release is a new cache.
"use strict";
var CACHE = "counter-{{ version }}";
var PAGE = {{ urls[0] | tojson }};
var PRECACHE = {{ urls | tojson }};
var SCOPE = {{ scope | tojson }};

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(PRECACHE.map(function (url) {
      return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (resp) {
        // A signed-out page is a redirect to the sign-in page: not something to keep.
        if (resp.ok && !resp.redirected) return cache.put(url, resp);
      }).catch(function () {});
    }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) {
      return n.indexOf("counter-") === 0 && n !== CACHE;
    }).map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

function isPage(url) {
  return url.pathname === PAGE;
}

self.addEventListener("fetch", function (event) {
  var req = event.request;
  if (req.method !== "GET") return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === "navigate" && isPage(url)) {
    // The page: the network first (it carries the signed-in clerk and a fresh form token),
    // the kept copy when the network is down.
    event.respondWith(fetch(req).then(function (resp) {
      if (resp.ok && !resp.redirected) {
        var copy = resp.clone();
        caches.open(CACHE).then(function (cache) { cache.put(PAGE, copy); });
      }
      return resp;
    }).catch(function () {
      return caches.open(CACHE).then(function (cache) {
        return cache.match(PAGE).then(function (hit) { return hit || Response.error(); });
      });
    }));
    return;
  }
  if (url.pathname.indexOf("/static/") === 0) {
    // Our files under hashed names never change: the kept copy first, else the network (kept).
    event.respondWith(caches.open(CACHE).then(function (cache) {
      return cache.match(req, { ignoreVary: true }).then(function (hit) {
        return hit || fetch(req).then(function (resp) {
          if (resp.ok) cache.put(req, resp.clone());
          return resp;
        });
      });
    }));
  }
});
