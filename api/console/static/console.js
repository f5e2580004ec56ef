// Rongxin console: the live view. Served by the node; no other script, no CDN.
//
// LIVE SOURCE HOOK: today the live height comes from polling GET /v1/status every POLL_MS.
// When the node serves /v1/ws (WebSocket subscriptions), replace startLiveSource() with a
// subscription ({"subscribe": "blocks"}) that calls onHeight(block.height, block.hash) for
// each block it receives; keep the poll as the fallback when the socket closes.
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

  function poll() {
    fetch("/v1/status", {headers: {"Accept": "application/json"}, cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) { onHeight(s.height, s.head_hash, s.mempool); } })
      .catch(function () { /* node unreachable for a moment: the next poll tries again */ })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  function startLiveSource() {
    window.setTimeout(poll, POLL_MS);
  }

  window.rongxinConsole = {onHeight: onHeight};
  startLiveSource();
})();
