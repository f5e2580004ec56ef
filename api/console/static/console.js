// Rongxin console: the live view. Served by the node; no other script, no CDN.
//
// LIVE SOURCE: a WebSocket subscription to the node's status ({"subscribe": "status"} on
// /v1/ws, docs/api.md §11), one item per committed block; while the socket is closed (node
// restarting, proxy without WebSocket support) GET /v1/status is polled every POLL_MS and a
// new socket is tried every RETRY_MS.
"use strict";
(function () {
  var POLL_MS = 2000;
  var el = document.getElementById("live-height");
  if (!el) { return; }
  var shown = parseInt(el.getAttribute("data-height"), 10) || 0;

  function onHeight(height, headHash, mempool) {
    if (typeof height !== "number" || height <= shown) { return; }
    shown = height;
    el.textContent = String(height);
    el.setAttribute("data-height", String(height));
    el.className = "bump";
    var oh = document.getElementById("overview-height");
    if (oh) { oh.textContent = String(height); }
    var head = document.getElementById("overview-head");
    if (head && typeof headHash === "string") {
      head.setAttribute("href", "/blocks/" + height);
      head.textContent = headHash.slice(0, 16) + "\u2026";
    }
    var mp = document.getElementById("overview-mempool");
    if (mp && typeof mempool === "number") { mp.textContent = String(mempool); }
  }

  var RETRY_MS = 10000;
  var socketOpen = false;

  function poll() {
    if (socketOpen) { return; }  // the socket delivers; polling resumes when it closes
    fetch("/v1/status", {headers: {"Accept": "application/json"}, cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) { onHeight(s.height, s.head_hash, s.mempool); } })
      .catch(function () { /* node unreachable for a moment: the next poll tries again */ })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  function subscribe() {
    if (!("WebSocket" in window)) { return; }
    var ws;
    try {
      ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws");
    } catch (e) {
      return;
    }
    ws.onopen = function () {
      socketOpen = true;
      ws.send(JSON.stringify({subscribe: "status"}));
    };
    ws.onmessage = function (m) {
      var item;
      try { item = JSON.parse(m.data); } catch (e) { return; }
      if (item && item.kind === "status") { onHeight(item.height, item.head_hash, item.mempool); }
    };
    ws.onclose = function () {
      if (socketOpen) { socketOpen = false; window.setTimeout(poll, 0); }
      window.setTimeout(subscribe, RETRY_MS);
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function startLiveSource() {
    window.setTimeout(poll, POLL_MS);
    subscribe();
  }

  window.rongxinConsole = {onHeight: onHeight};
  startLiveSource();
})();
